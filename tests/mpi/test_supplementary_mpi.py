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
