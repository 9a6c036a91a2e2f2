"""Stage rank under mpirun -n 2 on the real bulk spectra: FEFF tasks per unique absorber on the
dynamic queue over both ranks; zinc blende ranks first for CdS and rock salt for CdO (EXAFS
evidence in the model-free fit space); the /ranking layout, the table and the figure."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from xasmpi.testing import xaslib_dir

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

JOB = """
[job]
name = "rank-bulk"
output = "rank.h5"
seed = 3
[[spectra]]
name = "CdS_10K_01"
file = "{lib}/CdS_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdO_10K_01"
file = "{lib}/CdO_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdS_10K_02"
file = "{lib}/CdS_10K_02.xdi"
role = "sample"
[[spectra]]
name = "CdO_10K_02"
file = "{lib}/CdO_10K_02.xdi"
role = "sample"
[[paths]]
name = "Cd-S"
reference = "CdS_10K_01"
rmin = 1.2
rmax = 3.5
n = 4
r = 2.53
sigma2 = 0.003
[[paths]]
name = "Cd-O"
reference = "CdO_10K_01"
rmin = 1.2
rmax = 2.45
n = 6
r = 2.348
sigma2 = 0.004
[[paths]]
name = "Cd-Cd"
reference = "CdO_10K_01"
rmin = 2.45
rmax = 3.5
n = 12
r = 3.32
sigma2 = 0.006
[fit]
rmin = 1.2
rmax = 3.5
replicates = 20
chunk = 10
[fit.systematics]
enabled = false
[xanes]
measured = []
[[xanes.candidates]]
name = "CdS-zincblende"
crystal = true
build = {{lattice = "zincblende"}}
[[xanes.candidates]]
name = "CdS-betasn"
crystal = true
build = {{lattice = "betasn"}}
[[xanes.candidates]]
name = "CdO-rocksalt"
crystal = true
build = {{lattice = "rocksalt", a = 4.695, anion = "O"}}
[rank]
feff_radius = 5.0
rmax_path = 4.3
compare = [["CdS_10K_02", "CdO_10K_02"]]
joint = ["CdS_10K_01.de0", "CdO_10K_01.de0"]     # the report's joint fit: one ΔE0 per reference for both
"""


def test_rank_real_bulk_spectra_two_ranks(tmp_path):
    job = tmp_path / "rank.toml"
    job.write_text(JOB.format(lib=xaslib_dir()))
    p = run_cli(["run", job, "--stages", "reduce,fit,rank"], n=2, cwd=tmp_path, check=True, timeout=900)
    assert "stage rank: 3 tasks" in p.stderr and "(dynamic)" in p.stderr
    assert "rank CdS_10K_02: winner CdS-zincblende" in p.stderr
    assert "rank CdO_10K_02: winner CdO-rocksalt" in p.stderr
    with h5py.File(tmp_path / "rank.h5", "r") as f:
        winners = json.loads(f["ranking"].attrs["winners"])
        ranks = []
        for c in ("CdS-zincblende", "CdS-betasn", "CdO-rocksalt"):
            g = f[f"ranking/feff/{c}"]
            assert g["status"][:].tolist() == [1] and g["weight"][:].tolist() == [1.0]
            ranks += g["rank"][:].tolist()
            z = g["z"][0]
            assert set(z[z > 0].tolist()) <= {8, 16, 48}
        assert set(ranks) == {0, 1}  # the FEFF tasks ran on both ranks
        d = f["ranking/CdS_10K_02"]
        assert d["candidate"].asstr()[0] == "CdS-zincblende"
        post = d["posterior"][:]
        assert post[0] >= 0.9 and post.sum() == pytest.approx(1.0)
        assert "exafs_empirical" in d and np.all(np.isfinite(d["exafs_empirical/log_evidence"][:]))
        assert not np.allclose(d["exafs_empirical/log_evidence"][:], d["exafs/log_evidence"][:])
        lz = d["exafs/log_likelihood"][:] + d["exafs/log_prior"][:] + d["exafs/log_occam"][:]
        assert np.allclose(lz, d["exafs/log_evidence"][:]) and np.allclose(lz, d["log_evidence"][:])
        fz = d["fits/CdS-zincblende"]
        names = fz["names"].asstr()[:].tolist()
        assert names == ["s02", "sigma2_Cd-S", "sigma2_Cd-Cd", "de0"]
        s02 = fz["params"][0]
        assert 0.7 < s02 < 1.3  # S0² of FEFF paths against a real spectrum
        shells = json.loads(fz.attrs["shells"])
        assert shells[0]["group"] == "Cd-S" and shells[0]["n"] == 4.0
        quantities = fz["consistency_quantity"].asstr()[:].tolist()
        assert "Cd-S.n" in quantities
        assert winners["CdO_10K_02"]["winner"] == "CdO-rocksalt" and winners["CdO_10K_02"]["margin"] > 2.2
    out = tmp_path / "rep"
    p = run_cli(["rank", tmp_path / "rank.h5", "--out", out, "--formats", "png"], check=True)
    assert "**CdS-zincblende**" in p.stdout and "**CdO-rocksalt**" in p.stdout
    assert (out / "ranking.png").stat().st_size > 10000
    header = (out / "ranking.csv").read_text().splitlines()[0]
    assert header.startswith("dataset,rank,candidate,formula,posterior,ln_Z,exafs_ln_Z")
    rep = tmp_path / "report"
    run_cli(["report", tmp_path / "rank.h5", "--out", rep, "--formats", "png"], check=True)
    html = (rep / "report.html").read_text()
    md = (rep / "report.md").read_text()
    assert "Candidate ranking" in md and "![ranking](ranking.png)" in md
    assert "Two samples compared: CdS_10K_02 vs CdO_10K_02" in md and "| Cd-S.n |" in md
    assert html.count("data:image/png;base64,") == len(list(rep.glob("*.png")))
    assert (rep / "ranking.csv").is_file() and (rep / "compare_CdS_10K_02_CdO_10K_02.png").is_file()
    # the fit models rebuilt from the file reproduce each sample's best-fit SSR; joint fit with one
    # ΔE0 per reference shared by both samples, per-sample R-factors in one table
    from xasmpi.commands.compare import model_from_file

    with h5py.File(tmp_path / "rank.h5", "r") as f:
        for s in ("CdS_10K_02", "CdO_10K_02"):
            model, chi = model_from_file(f, s)
            ssr = model.ssr(f[f"exafs/{s}/fit/params"][()][None], chi)[0]
            assert ssr == pytest.approx(f[f"exafs/{s}/fit"].attrs["ssr"], rel=1e-9)
    p = run_cli(["compare", tmp_path / "rank.h5", "CdS_10K_02", "CdO_10K_02", "--joint",
                 "CdS_10K_01.de0,CdO_10K_01.de0", "--out", tmp_path / "cmp"], check=True)
    assert "Joint fit of CdS_10K_02, CdO_10K_02 (shared: CdS_10K_01.de0, CdO_10K_01.de0" in p.stdout
    rows = (tmp_path / "cmp" / "joint.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,rfactor,ssr,CdS_10K_01.de0") and len(rows) == 3
    a, b = rows[1].split(","), rows[2].split(",")
    assert a[3] == b[3] and a[5] == b[5]  # shared ΔE0: one value for both samples
    assert float(a[1]) < 0.05 and float(b[1]) < 0.05
    # the job's [rank] joint put the same joint fit into the report
    assert "## Joint fit across samples" in md and "[joint.csv](joint.csv)" in md
    assert (rep / "joint.csv").read_text() == (tmp_path / "cmp" / "joint.csv").read_text()
