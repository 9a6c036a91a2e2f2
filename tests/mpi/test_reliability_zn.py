"""Issue 13, other elements than Cd: a Zn K-edge campaign (jobs/examples/zn_sphalerite.toml)
on ZnS spectra simulated with the project's FEFF route, under ``mpirun -n 2``.

Covers: element/edge from the XDI header (stored in /exafs/<s> attrs), the FEFF absorber from
it (the structure file read on one rank while the other waits in a collective: ASE's
``parallel_function`` must be off), the analysis defaults derived from the job's paths, and
recovered N of the simulated nanocrystal close to its true value.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.mpi

#: Zn K edge (eV) used as E0 of the simulated spectra
ZN_E0 = 9659.0
EXAMPLES = REPO / "jobs" / "examples"
#: true shells: (path, scatterer, bulk distance Å, N, R Å, σ² Å²)
SHELLS = {
    "ZnS_ref": [("Zn-S", "S", 2.342, 4.0, 2.342, 0.004), ("Zn-Zn", "Zn", 3.825, 12.0, 3.825, 0.008)],
    "ZnS_nano": [("Zn-S", "S", 2.342, 3.1, 2.335, 0.006), ("Zn-Zn", "Zn", 3.825, 7.0, 3.80, 0.012)],
}


def write_zn_data(folder: str | Path, *, seed: int = 5) -> dict:
    """Simulated Zn K-edge μ(E) of bulk ZnS and a ZnS 'nanocrystal' (XDI files in ``folder``).

    χ(k) is larch ``path2chi`` of the single-scattering FEFF6 paths of zinc-blende ZnS
    of ``jobs/examples/zn_sphalerite.cif`` (:func:`xasmpi.exafs.feff.run_feff`, absorber Zn), each shell scaled to its N and shifted
    to its R and σ²; μ(E) by :func:`xasmpi.demo.generate.mu_from_chi` on its scan grid, with
    Gaussian noise of 3e-4 edge steps.  Returns the true shells by spectrum name.
    """
    from larch.xafs import feffpath, path2chi

    from xasmpi.demo import generate as demo
    from xasmpi.exafs.feff import run_feff
    from xasmpi.xanes.clusters import read_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atoms = read_model(EXAMPLES / "zn_sphalerite.cif")
    assert atoms.get_chemical_symbols() == ["Zn", "S"]
    run = run_feff(atoms, absorber_index=0, radius=6.0, workdir=folder / "feff", rmax_path=4.0)
    energy = demo.energy_grid(e0=ZN_E0, kmax=15.5)
    rng = np.random.default_rng(seed)
    truth = {}
    for name, shells in SHELLS.items():
        def chi_of_k(k, shells=shells):
            out = np.zeros_like(k)
            for _, scat, rb, n, r, s2 in shells:
                match = [p for p in run.paths if p.nleg == 2 and p.scatterer == scat and abs(p.reff - rb) < 0.05]
                nb = sum(p.degen for p in match)
                for p in match:
                    fp = feffpath(p.file, s02=n / nb, deltar=r - p.reff, sigma2=s2, e0=0.0)
                    path2chi(fp, k=k)
                    out += fp.chi
            return out * demo.turn_on(k)

        mu = demo.mu_from_chi(energy, chi_of_k, e0=ZN_E0, edge_step=0.8, pre_edge=(0.4, -8e-5))
        mu = mu + 3e-4 * 0.8 * rng.standard_normal(mu.size)
        t = {p: {"n": n, "r": r, "sigma2": s2} for p, _, _, n, r, s2 in shells}
        truth[name] = t
        f = folder / f"{name}.xdi"
        demo.write_xdi(f, energy, mu, name=name, truth=t, info={"element": "Zn", "structure": "ZnS zinc blende"},
                       comment="Zn K edge of ZnS, FEFF6 single scattering (tests/mpi/test_reliability_zn.py)")
        # write_xdi writes a Cd K header; this is a Zn K spectrum
        text = f.read_text().replace("# Element.symbol: Cd", "# Element.symbol: Zn")
        f.write_text(text.replace("# XDI/1.0", "#XDI/1.1", 1))  # the no-space form of real Zn files
    return truth


@pytest.fixture(scope="module")
def zn_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zn")
    truth = write_zn_data(tmp / "zn-data")
    job = tmp / "zn_sphalerite.toml"
    shutil.copyfile(EXAMPLES / "zn_sphalerite.toml", job)
    shutil.copyfile(EXAMPLES / "zn_sphalerite.cif", tmp / "zn_sphalerite.cif")
    p = run_cli(["run", job], n=2, cwd=tmp, timeout=900)
    return tmp, truth, p


def test_zn_campaign_runs_under_mpirun_with_feff_structure_file(zn_run):
    tmp, truth, p = zn_run
    assert p.returncode == 0, p.stdout + p.stderr
    assert "no Cd absorber" not in p.stderr and "Traceback" not in p.stderr
    with h5py.File(tmp / "zn_results.h5", "r") as f:
        for s in ("ZnS_ref", "ZnS_nano"):
            g = f[f"/exafs/{s}"]
            assert (g.attrs["element"], g.attrs["edge"]) == ("Zn", "K")
            assert abs(g.attrs["e0"] - ZN_E0) < 5.0
        assert "feff" in f["/exafs/ZnS_nano"]
        prov = json.loads(f["/paths/Zn-S"].attrs["provenance"])
        assert prov  # the empirical path from ZnS_ref
        st = f["/analysis/stoichiometry/ZnS_nano"]
        sg = f["/analysis/stoichiometry"]
        assert list(sg.attrs["elements"]) == ["Zn", "S"] and sg.attrs["cn_path"] == "Zn-S"
        best = st["formula"].asstr()[0]
        assert best.startswith("Zn") and "Cd" not in best
        assert f["/analysis/angle"].attrs["r1_path"] == "Zn-S"
        assert f["/analysis/angle"].attrs["r2_path"] == "Zn-Zn"


def test_zn_nanocrystal_coordination_recovered(zn_run):
    tmp, truth, p = zn_run
    assert p.returncode == 0, p.stderr
    out = run_cli(["summary", tmp / "zn_results.h5", "--json"], check=True)
    s = json.loads(out.stdout)["samples"]["ZnS_nano"]["paths"]
    n_true = truth["ZnS_nano"]["Zn-S"]["n"]
    assert abs(s["Zn-S"]["N_mean"] - n_true) < 0.1 * n_true
