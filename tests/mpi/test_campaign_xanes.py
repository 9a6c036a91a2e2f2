"""XANES campaigns with the real FDMNES under mpirun -n 2: bulk discrimination against the
real CdS/CdO spectra, and three O-terminated clusters on the dynamic queue."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from xasmpi.testing import xaslib_dir

pytestmark = [pytest.mark.mpi, pytest.mark.fdmnes]

BULK = """
[job]
name = "bulk-xanes"
output = "bulk.h5"
[[spectra]]
name = "CdS"
file = "{lib}/CdS_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdO"
file = "{lib}/CdO_10K_01.xdi"
role = "reference"
[xanes]
mode = "green"
radius = 3.0
emin = -20
emax = 100
estep = 2.0
measured = ["CdS", "CdO"]
[[xanes.candidates]]
name = "CdS-zincblende"
crystal = true
build = {{lattice = "zincblende", a = 5.818}}
[[xanes.candidates]]
name = "CdO-rocksalt"
crystal = true
build = {{lattice = "rocksalt", a = 4.695, anion = "O"}}
"""

CLUSTERS = """
[job]
name = "clusters"
output = "clusters.h5"
[xanes]
radius = 3.5
emin = -20
emax = 100
estep = 2.0
[[xanes.candidates]]
name = "zb"
build = {lattice = "zincblende", atoms = 14, terminate = "O"}
[[xanes.candidates]]
name = "rs"
build = {lattice = "rocksalt", atoms = 14, terminate = "O"}
[[xanes.candidates]]
name = "betasn"
build = {lattice = "betasn", atoms = 20, terminate = "O"}
[analysis]
models = ["zb", "rs", "betasn"]
"""


def test_bulk_green_mode_matches_each_reference_with_its_own_structure(tmp_path):
    job = tmp_path / "bulk.toml"
    job.write_text(BULK.format(lib=xaslib_dir()))
    run_cli(["run", job], n=2, cwd=tmp_path, check=True, timeout=600)
    with h5py.File(tmp_path / "bulk.h5", "r") as f:
        ranking = json.loads(f["xanes/comparison"].attrs["ranking"])
        for c in ("CdS-zincblende", "CdO-rocksalt"):
            assert f[f"xanes/{c}/absorbers/status"][:].tolist() == [1]  # one unique site in a crystal
            assert "Crystal" in f[f"xanes/{c}/absorbers/input_text"].asstr()[0]
        e_cds = f["xanes/measured/CdS"].attrs["edge"]
    assert ranking["CdS"][0]["candidate"] == "CdS-zincblende"
    assert ranking["CdO"][0]["candidate"] == "CdO-rocksalt"
    assert ranking["CdS"][0]["r_factor"] < 0.5 * ranking["CdS"][1]["r_factor"]
    assert ranking["CdO"][0]["r_factor"] < 0.5 * ranking["CdO"][1]["r_factor"]
    assert 26700 < e_cds < 26720  # edge = max of the derivative, Cd K


def test_three_cluster_campaign_spreads_uneven_tasks_over_two_ranks(tmp_path):
    job = tmp_path / "clusters.toml"
    job.write_text(CLUSTERS)
    p = run_cli(["run", job], n=2, cwd=tmp_path, check=True, timeout=900)
    assert "(dynamic)" in p.stderr
    with h5py.File(tmp_path / "clusters.h5", "r") as f:
        ranks, times = [], []
        for c in ("zb", "rs", "betasn"):
            a = f[f"xanes/{c}/absorbers"]
            assert (a["status"][:] == 1).all()
            w = a["weight"][:]
            assert w.sum() == pytest.approx(1.0)
            mu = a["mu"][:]
            avg = f[f"xanes/{c}/mu"][:]
            assert np.allclose(avg, (w[:, None] * mu).sum(0))  # weighted average of the absorbers
            assert "O" in f[f"xanes/{c}"].attrs["formula"]
            ranks += a["rank"][:].tolist()
            times += a["elapsed"][:].tolist()
            assert f[f"analysis/angles/{c}/core"].size + f[f"analysis/angles/{c}/surface"].size > 0
    assert set(ranks) == {0, 1}  # both ranks worked, rank 0 included
    busy = [sum(t for t, r in zip(times, ranks) if r == k) for k in (0, 1)]
    print(f"task times (s): {np.round(times, 1).tolist()}; busy per rank {np.round(busy, 1).tolist()}; "
          f"sum/2 = {sum(times) / 2:.1f} s, longest {max(times):.1f} s")
