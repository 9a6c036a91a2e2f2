"""Issue 15's done-when for ``xasmpi rank``: on simulated data where the truth is one of the
candidates, the rank stage puts the true candidate first with posterior >= 0.9, for three truths.

The candidates are the candidate stage's own structures (the demo's O-terminated zinc-blende,
rock-salt and beta-Sn-like cuts, the zinc-blende one relaxed by the relax stage with CHGNet), as
``xasmpi.stages.rank.candidates`` hands them to the rank stage.  Each truth's μ(E) is simulated
independently of the ranker: FEFF (feff6l, paths of up to three legs, i.e. with the
multiple-scattering triangles the ranker's single-scattering model does not have) for *every*
Cd atom of the structure (the ranker uses the unique absorbers and their weights), summed by
larch ``path2chi`` with S0² 0.9, σ² per scatterer element and an E0 offset of its own (+2.5,
−1.5, +4.0 eV from the edge).  Its XANES is the truth's FDMNES spectrum from the campaign's own
xanes stage (run first, with no measured spectrum; Green, 3 Å as the demo), broadened by the
beamline resolution (1.4e-4 · E) and placed 1 eV above the edge.  One μ(E) holds both: the
XANES up to E0 + 80 eV (most of the +30 … +90 eV post-edge range both XANES are normalised on), a
smooth crossover to the EXAFS (χ on the XANES' post-edge trend) by E0 + 92 eV (k = 4.9 Å⁻¹;
the EXAFS fit starts at k = 5.5), a pre-edge line and the noise of the
real CdS_10K_01 scan (:mod:`xasmpi.demo.generate`).  The campaign then reduces it like measured
data (E0 found by larch, autobk), fits it model-free, compares the XANES (physical rule, each
candidate its best shift: no calibration pair) and ranks.  The references are the demo's
simulated bulk CdS and CdO.
"""
from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

#: truth -> ΔE0 of its simulated EXAFS relative to the spectrum's edge, eV
TRUTHS = {"zincblende": 2.5, "rocksalt": -1.5, "betasn": 4.0}
SIGMA2 = {"S": 0.006, "O": 0.008, "Cd": 0.012}   # Å², by scatterer element
S02 = 0.9
EDGE = 26711.5                                   # eV, the edge of the simulated spectra (demo.generate.E0)

HEAD = """
[job]
name = "rank-truth"
output = "truth.h5"
seed = 15
simulated = true
[reduction]
rbkg = 0.8
kmin = 5.5
kmax = 16.5
kweight = 2
[[spectra]]
name = "CdS_ref"
file = "{data}/CdS_ref.xdi"
role = "reference"
absorbance = "mu"
[[spectra]]
name = "CdO_ref"
file = "{data}/CdO_ref.xdi"
role = "reference"
absorbance = "mu"
{samples}
[[paths]]
name = "Cd-O"
reference = "CdO_ref"
rmin = 1.2
rmax = 2.45
n = 6
r = 2.348
sigma2 = 0.005
[[paths]]
name = "Cd-S"
reference = "CdS_ref"
rmin = 1.2
rmax = 2.9
n = 4
r = 2.519
sigma2 = 0.004
[[paths]]
name = "Cd-Cd"
reference = "CdS_ref"
rmin = 2.9
rmax = 4.4
n = 12
r = 4.114
sigma2 = 0.008
[fit]
{fit_samples}
paths = ["Cd-O", "Cd-S", "Cd-Cd"]
rmin = 1.2
rmax = 4.4
replicates = 20
chunk = 10
[fit.systematics]
enabled = false
[xanes]
edge = "K"
mode = "green"
radius = 3.0
emin = -20.0
emax = 100.0
estep = 1.0
window = [-20.0, 60.0]
{measured}
[[xanes.candidates]]
name = "zincblende"
build = {{ lattice = "zincblende", atoms = 13, terminate = "O" }}
[[xanes.candidates]]
name = "rocksalt"
build = {{ lattice = "rocksalt", atoms = 13, terminate = "O" }}
[[xanes.candidates]]
name = "betasn"
build = {{ lattice = "betasn", atoms = 17, terminate = "O" }}
[relax]
candidates = ["zincblende"]
steps = 100
cap = "H"
[rank]
"""


def _job(data, samples=()) -> str:
    blocks = "".join(f'[[spectra]]\nname = "{s}"\nfile = "{data}/{s}.xdi"\nrole = "sample"\nabsorbance = "mu"\n'
                     for s in samples)
    fit_samples = f"samples = {json.dumps(list(samples))}" if samples else ""
    return HEAD.format(data=data, samples=blocks, fit_samples=fit_samples,
                       measured=f"measured = {json.dumps(list(samples))}")


def _simulate(atoms, name: str, de0: float, xanes, out, workdir) -> None:
    """μ(E) file of one truth: XANES from its FDMNES spectrum ``xanes`` = (energy, μ), EXAFS from
    feff6l (≤ 3 legs) for every Cd atom through larch path2chi, noise (module docstring)."""
    from larch.xafs import feffpath, path2chi

    from xasmpi.demo import generate as G
    from xasmpi.exafs.feff import run_feff
    from xasmpi.xanes.compare import broaden, edge_energy, normalize

    kk = np.arange(1, int(round(G.KMAX / G.KSTEP)) + 1) * G.KSTEP
    chi = np.zeros(kk.size)
    cds = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "Cd"]
    for i in cds:
        run = run_feff(atoms, absorber_index=i, radius=5.5, workdir=workdir / f"{name}-{i}", rmax_path=4.5, nleg=3)
        for p in run.paths:
            fp = feffpath(p.file)
            scat = [g[0] for g in fp.geom[1:]]
            # single scattering: the scatterer's σ²; a triangle: half the sum of its two atoms' σ²
            # plus the absorber's leg (independent legs, as the demo generator)
            s2 = SIGMA2[scat[0]] if len(scat) == 1 else 0.5 * sum(SIGMA2[s] for s in scat) + 0.25 * SIGMA2["Cd"]
            path2chi(fp, k=kk, s02=S02, sigma2=s2, e0=de0)
            chi += np.asarray(fp.chi) / len(cds)
    e0 = EDGE
    energy = G.energy_grid(e0=e0)
    jump = G.EDGE_STEPS["MSC_sim"]
    c0, c1 = G.PRE_EDGE["MSC_sim"]
    ex, xm = xanes
    xn = normalize(ex, xm, name=name)
    xb = broaden(ex, xn.norm, gauss_fwhm=1.4e-4 * e0)
    shift = e0 + 1.0 - edge_energy(ex, xb)[0]
    near = np.interp(energy - shift, ex, xb, left=0.0, right=float(xb[-1]))
    # the EXAFS sits on the XANES' own post-edge trend (a line through it at E0 + 40 ... 92 eV, a
    # smooth background autobk follows) and takes over across E0 + 80 ... 92 eV; χ is scaled by the
    # trend at the edge, the edge step the reduction will divide by
    c = (energy >= e0 + 40.0) & (energy <= e0 + 92.0)
    coef = np.polyfit(energy[c] - e0, near[c], 1)
    trend = np.polyval(coef, energy - e0)
    k_e = np.sqrt(np.clip(G.ETOK * (energy - e0), 0.0, None))
    exafs = trend + np.polyval(coef, 0.0) * np.interp(k_e, kk, chi) * G.turn_on(k_e)
    w = np.clip((energy - e0 - 80.0) / 12.0, 0.0, 1.0)
    w = 0.5 - 0.5 * np.cos(np.pi * w)
    mu = c0 + c1 * (energy - e0) + jump * ((1.0 - w) * near + w * exafs)
    rng = np.random.default_rng(np.random.SeedSequence(15, spawn_key=(sorted(TRUTHS).index(name),)))
    mu = mu + rng.normal(0.0, G.NOISE["MSC_sim"] * jump, mu.size)
    G.write_xdi(out, energy, mu, name=f"truth_{name}", truth={"candidate": name, "s02": S02, "de0": de0,
                                                              "sigma2": SIGMA2},
                info={"simulated": True, "feff": "feff6l, nleg 3, every Cd atom", "noise": G.NOISE["MSC_sim"],
                      "xanes": "FDMNES of the candidate (xanes stage), resolution 1.4e-4 E, edge at E0 + 1 eV"},
                comment=f"EXAFS of candidate {name} (larch path2chi); S0^2={S02}, dE0={de0:+g} eV")


def test_rank_puts_the_simulated_truth_first(tmp_path):
    from xasmpi.config import load_job
    from xasmpi.demo.generate import generate
    from xasmpi.stages.rank import candidates

    data = tmp_path / "data"
    generate(data, samples={})          # the demo's simulated bulk CdS and CdO references
    job = tmp_path / "job.toml"
    # 1. the candidate stage's structures (the zinc-blende cut relaxed by CHGNet) and their FDMNES
    #    spectra, by the campaign itself
    job.write_text(_job(data))
    run_cli(["run", job, "--stages", "relax,xanes"], n=2, cwd=tmp_path, check=True, timeout=1800)
    cands = candidates(load_job(job))
    assert set(cands) == set(TRUTHS)
    with h5py.File(tmp_path / "truth.h5", "r") as f:
        sims = {c: (f[f"xanes/{c}/energy"][()], f[f"xanes/{c}/mu"][()]) for c in TRUTHS}
    for name, de0 in TRUTHS.items():
        _simulate(cands[name][0], name, de0, sims[name], data / f"truth_{name}.xdi", tmp_path / "feff-sim")
    # 2. the campaign on the simulated samples: reduce, model-free fit, the XANES comparison (the
    #    FDMNES runs resume from step 1), rank (FEFF per unique absorber)
    job.write_text(_job(data, [f"truth_{n}" for n in TRUTHS]))
    p = run_cli(["run", job, "--stages", "reduce,fit,xanes,rank"], n=2, cwd=tmp_path, check=True, timeout=1800)
    m = re.search(r"stage xanes: (\d+) tasks, (\d+) already done", p.stderr)
    assert m and m.group(1) == m.group(2), "the FDMNES runs of step 1 are reused"
    post = {}
    with h5py.File(tmp_path / "truth.h5", "r") as f:
        assert f["relax/zincblende/final"].shape == f["relax/zincblende/initial"].shape
        for name, de0 in TRUTHS.items():
            d = f[f"ranking/truth_{name}"]
            order = d["candidate"].asstr()[:].tolist()
            post[name] = dict(zip(order, d["posterior"][:].tolist()))
            fit = d[f"fits/{name}"]
            par = dict(zip(fit["names"].asstr()[:], fit["params"][:]))
            xz = dict(zip(order, d["xanes/log_evidence"][:]))
            ez = dict(zip(order, d["exafs/log_evidence"][:]))
            print(name, "posterior", {c: round(v, 4) for c, v in post[name].items()},
                  "margin", round(float(d.attrs["margin"]), 1), "S0^2", round(par["s02"], 3),
                  "dE0", round(par["de0"], 2), "ln Z exafs", {c: round(v, 1) for c, v in ez.items()},
                  "xanes", {c: round(v, 1) for c, v in xz.items()})
            assert order[0] == name, (name, post[name])
            assert post[name][name] >= 0.9, (name, post[name])
            # S0² and ΔE0 of the truth's own fit: loose, since the fit starts at k = 5.5 (above the XANES
            # crossover) and autobk runs over the simulated XANES; measured 0.75/1.09/0.89 for 0.9 and
            # ΔE0 within 2.2 eV (ΔE0 relative to the E0 the reduction found; the truth's is E_edge + de0)
            assert par["s02"] == pytest.approx(S02, abs=0.25)
            e0_found = float(f[f"exafs/truth_{name}"].attrs["e0"])
            assert par["de0"] == pytest.approx(EDGE + de0 - e0_found, abs=3.0), (e0_found, par["de0"])
            # each technique alone also puts the truth first
            assert max(ez, key=ez.get) == name and max(xz, key=xz.get) == name, (ez, xz)
    assert p.stderr.count("rank truth_") >= 3
