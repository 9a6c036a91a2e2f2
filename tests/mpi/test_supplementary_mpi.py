"""The supplementary stage's FDMNES runs under mpirun -n 2 (dynamic queue) on the real CdS/CdO
spectra: crystal fragments within 3 Å (Fig. S4–S6) and bulk CdS (Fig. S8), then the report."""
from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from xasmpi.testing import xaslib_dir

pytestmark = [pytest.mark.mpi, pytest.mark.fdmnes, pytest.mark.slow]

JOB = """
[job]
name = "supp-xanes"
output = "supp.h5"
stages = ["reduce", "supplementary"]
[[spectra]]
name = "CdS_01"
file = "{lib}/CdS_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdS_02"
file = "{lib}/CdS_10K_02.xdi"
[[spectra]]
name = "CdO_02"
file = "{lib}/CdO_10K_02.xdi"
[xanes]
mode = "green"
emin = -20
emax = 100
estep = 2.0
[supplementary]
feff_paths = false
fragments = ["zincblende", "rocksalt", "betasn"]
fragment_radius = 3.0
measured = ["CdS_02", "CdO_02"]
bulk = "wurtzite"
bulk_spectrum = "CdS_01"
bulk_radius = 3.0               # small for the test (the example uses 6 Å)
"""


def test_fragments_and_bulk_on_two_ranks(tmp_path):
    """Real-data known answer: every polymorph's CdS + CdO sum gives the measured CdO far more CdO
    than the measured CdS (CdO weight larger by > 0.3), weights sum to 1 with finite errors, and
    the figures and CSVs are written and listed under "Supplementary"."""
    job = tmp_path / "supp.toml"
    job.write_text(JOB.format(lib=xaslib_dir()))
    run_cli(["run", job], n=2, cwd=tmp_path, check=True, timeout=900)
    with h5py.File(tmp_path / "supp.h5", "r") as f:
        calcs = f["supplementary/xanes"]
        assert set(calcs) == {"CdS-zincblende-3A", "CdS-rocksalt-3A", "CdS-betasn-3A", "CdO-rocksalt-3A",
                              "CdS-wurtzite-bulk"}
        assert {calcs[c].attrs["formula_in_radius"] for c in calcs} >= {"CdS4", "CdS6", "CdO6"}
        for c in calcs:
            assert calcs[c]["absorbers/status"][:].tolist() == [1]
        fr = f["supplementary/fragments"]
        assert json.loads(fr.attrs["measured"]) == ["CdS_02", "CdO_02"]
        for lat in ("zincblende", "rocksalt", "betasn"):
            w = {m: dict(zip([n.decode() for n in fr[m][lat]["names"][()]], fr[m][lat]["weights"][:]))
                 for m in ("CdS_02", "CdO_02")}
            for m in w:
                assert sum(w[m].values()) == pytest.approx(1.0, abs=1e-9)
                assert np.all(np.isfinite(fr[m][lat]["errors"][:]))
            assert w["CdO_02"]["CdO-rocksalt-3A"] > w["CdS_02"]["CdO-rocksalt-3A"] + 0.3, (lat, w)
        s8 = f["supplementary/s8"]
        assert 0 < s8.attrs["r_factor"] < 0.05
        assert json.loads(s8.attrs["settings"])["radius"] == 3.0
    out = tmp_path / "report"
    run_cli(["report", tmp_path / "supp.h5", "--out", out], cwd=tmp_path, check=True)
    supp = (out / "report.md").read_text().split("## Supplementary", 1)[1]
    assert "figS4_S6_fragments.png" in supp and "figS8_bulk_fdmnes.png" in supp
    for stem in ("figS4_S6_fragments", "figS8_bulk_fdmnes"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.pdf").is_file()
    rows = list(csv.DictReader(open(out / "figS4_S6_weights.csv")))
    assert len(rows) == 6 and all(0 < float(r["r_factor"]) < 0.1 for r in rows)


S3_JOB = """
[job]
name = "fig-s3"
output = "s3.h5"
[[spectra]]
name = "CdO"
file = "{lib}/CdO_10K_01.xdi"
role = "reference"
[xanes]
mode = "green"
estep = 2.0
[supplementary]
feff_paths = false
fragments = []
cdo_shells = 3                  # 7, 19 and 27 atoms (Green: ~5, 50, 60 s)
cdo_spectrum = "CdO"
"""


def test_fig_s3_cdo_shell_series_converges_and_is_drawn(tmp_path):
    """Fig. S3: rock-salt CdO with 1, 2, 3 shells (6 O, +12 Cd, +8 O) vs the real CdO scan; the
    change from one shell to the next shrinks (radius convergence), and the report draws it."""
    job = tmp_path / "s3.toml"
    job.write_text(S3_JOB.format(lib=xaslib_dir()))
    run_cli(["run", job], n=2, cwd=tmp_path, check=True, timeout=900)
    with h5py.File(tmp_path / "s3.h5", "r") as f:
        g = f["supplementary/s3"]
        names = ["CdO-rocksalt-1shell", "CdO-rocksalt-2shells", "CdO-rocksalt-3shells"]
        assert sorted(g) == names
        a = [g[n].attrs for n in names]
        assert [json.loads(x["elements"]) for x in a] == [{"O": 6}, {"Cd": 12}, {"O": 8}]
        assert [int(x["atoms_within"]) for x in a] == [7, 19, 27]
        # FDMNES saw exactly those atoms
        assert [int(f[f"supplementary/xanes/{n}"].attrs["atoms_in_radius"]) for n in names] == [7, 19, 27]
        r = [float(x["r_factor"]) for x in a]
        conv = [float(x["convergence_r"]) for x in a]
        assert np.isnan(conv[0]) and conv[2] < conv[1]
        assert max(r) < 0.01  # each aligned within 1 % of the data's power (scale 1, fixed broadening)
        assert all(np.ptp(g[n]["model"][:]) > 0.5 for n in names)
    print("Fig. S3 R vs measured:", np.round(r, 5).tolist(), "vs previous shell:", np.round(conv, 5).tolist())
    run_cli(["report", tmp_path / "s3.h5", "--out", tmp_path / "rep", "--formats", "png"], cwd=tmp_path, check=True)
    assert (tmp_path / "rep" / "figS3_cdo_shells.png").is_file()
    rows = list(csv.reader(open(tmp_path / "rep" / "figS3_cdo_shells.csv")))
    assert rows[0] == ["shells", "energy_eV", "measured", "fdmnes"] and {r_[0] for r_ in rows[1:]} == {"1", "2", "3"}
