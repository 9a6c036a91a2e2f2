"""Ranking of candidate structures (xasmpi.analysis.ranking, xasmpi.exafs.structure_chi).

Known answers: Laplace evidence of a linear-Gaussian model equals the exact evidence (closed
form); simulated EXAFS computed by larch (``feffpath`` + ``path2chi``, independent of the
project's path kernel) from one candidate's FEFF paths, with an E0 offset and noise, ranks that
candidate first with posterior >= 0.9 for three different truths.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from xasmpi.analysis.ranking import (EvidenceInput, consistency, laplace_evidence, mass_log_likelihood,
                                     noise_scale2, posterior, rank_dataset, spectrum_noise)
from xasmpi.errors import InputError


def test_laplace_is_exact_for_a_linear_gaussian_model():
    # y = a x + b + noise, uniform priors wide enough to hold the posterior: Laplace = exact
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 50)
    sig = 0.1
    y = 0.7 * x + 0.2 + rng.normal(0, sig, x.size)
    a = np.stack([x, np.ones_like(x)], axis=1)
    th, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ th
    bounds = np.array([[-10.0, 10.0], [-5.0, 5.0]])
    ev = laplace_evidence(EvidenceInput(residual=r, jacobian=-a, var=np.full(x.size, sig ** 2), n_eff=x.size,
                                        bounds=bounds))
    # exact: ∫ N(y; Aθ, σ²) dθ / V over an (effectively) unbounded box
    h = a.T @ a / sig ** 2
    exact = (-0.5 * np.sum(r ** 2) / sig ** 2 - 0.5 * x.size * math.log(2 * math.pi * sig ** 2)
             + math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(h)[1] - math.log(20 * 10))
    assert ev.log_evidence == pytest.approx(exact, abs=1e-9)
    assert ev.n_par == 2 and ev.chi2 == pytest.approx(np.sum(r ** 2) / sig ** 2)


def test_occam_penalty_prefers_the_simpler_model_when_both_fit():
    rng = np.random.default_rng(4)
    x = np.linspace(0, 1, 80)
    y = 0.5 + rng.normal(0, 0.05, x.size)
    one = np.ones((x.size, 1))
    two = np.stack([np.ones_like(x), x], axis=1)
    inputs = {}
    for name, a in (("constant", one), ("line", two)):
        th, *_ = np.linalg.lstsq(a, y, rcond=None)
        inputs[name] = {"data": EvidenceInput(residual=y - a @ th, jacobian=-a, var=np.full(x.size, 0.05 ** 2),
                                              n_eff=x.size, bounds=np.tile([-10.0, 10.0], (a.shape[1], 1)))}
    res = rank_dataset("toy", inputs)
    assert res.winner == "constant" and res.posterior["constant"] > 0.9
    assert res.margin == pytest.approx(res.log_evidence["constant"] - res.log_evidence["line"])


def test_noise_scale_posterior_consistency_mass_noise():
    r = np.ones(10)
    good = EvidenceInput(residual=r, jacobian=np.zeros((10, 0)), var=np.full(10, 1.0 / 9.0), n_eff=10,
                         bounds=np.zeros((0, 2)))
    assert noise_scale2([good]) == pytest.approx(9.0)  # χ²/ν = 9 for the best -> inflate
    assert noise_scale2([EvidenceInput(residual=r, jacobian=np.zeros((10, 0)), var=np.full(10, 4.0), n_eff=10,
                                       bounds=np.zeros((0, 2)))]) == 1.0
    p = posterior({"a": 0.0, "b": math.log(3.0)})
    assert p["b"] == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    rep = rng.normal(4.0, 0.2, 20000)
    z, pv = consistency(4.4, rep)
    assert z == pytest.approx(2.0, abs=0.05) and pv == pytest.approx(0.0455, abs=0.006)
    z, pv = consistency(4.4, rep, systematic=0.2)  # total sd 0.283: z = 1.41, p = 0.157
    assert z == pytest.approx(0.4 / math.hypot(0.2, 0.2), abs=0.03) and pv == pytest.approx(0.157, abs=0.01)
    assert mass_log_likelihood(100.0, 100.0, 10.0) - mass_log_likelihood(120.0, 100.0, 10.0) == pytest.approx(2.0)
    y = np.sin(np.linspace(0, 3, 2000)) + rng.normal(0, 0.01, 2000)
    assert spectrum_noise(y) == pytest.approx(0.01, rel=0.1)
    with pytest.raises(InputError):
        EvidenceInput(residual=r, jacobian=np.zeros((10, 1)), var=np.ones(10), n_eff=10, bounds=np.zeros((0, 2)))


# ---------------------------------------------------------------------------- structures
CANDIDATES = {
    "zincblende-CdS": ("zincblende", None, "S"),
    "rocksalt-CdS": ("rocksalt", None, "S"),
    "betasn-CdS": ("betasn", None, "S"),
    "rocksalt-CdO": ("rocksalt", 4.695, "O"),
}


@pytest.fixture(scope="module")
def feff_candidates(tmp_path_factory):
    """One FEFF run per candidate crystal (one unique Cd each): (weight, paths), workdir."""
    from xasmpi.exafs.structure_chi import absorber_paths
    from xasmpi.xanes.clusters import bulk_crystal, unique_absorbers

    out = {}
    for name, (lat, a, anion) in CANDIDATES.items():
        atoms = bulk_crystal(lat, a=a, anion=anion)
        sites = unique_absorbers(atoms, element="Cd", radius=4.5)
        absorbers = []
        for idx, w in sites:
            wd = tmp_path_factory.mktemp(f"{name}-{idx}")
            absorbers.append((w, absorber_paths(atoms, index=idx, radius=4.8, rmax_path=4.3, workdir=wd), wd))
        out[name] = absorbers
    return out


def _larch_chi(absorbers, *, sigma2: dict, s02: float, e0: float, k):
    """χ(k) by larch alone: every feffNNNN.dat of each absorber, weighted by its symmetry weight."""
    from larch.xafs import feffpath, path2chi

    chi = np.zeros(k.size)
    for w, paths, wd in absorbers:
        for p in paths:
            for f in p.provenance["files"]:
                fp = feffpath(f, s02=s02, sigma2=sigma2[p.name], e0=e0)
                path2chi(fp, k=k)
                chi += w * fp.chi
    return chi


@pytest.mark.slow
@pytest.mark.parametrize("truth", ["zincblende-CdS", "rocksalt-CdS", "betasn-CdS"])
def test_simulated_truth_ranks_first(feff_candidates, truth):
    from xasmpi.exafs.fit import estimate_eps_k
    from xasmpi.exafs.model import FitSpace
    from xasmpi.exafs.paths import kgrid
    from xasmpi.exafs.structure_chi import StructureModel, evidence_input, fit_structure

    k = kgrid()
    rng = np.random.default_rng(abs(hash(truth)) % 2 ** 32)
    chi = _larch_chi(feff_candidates[truth], sigma2={"Cd-S": 0.0045, "Cd-O": 0.005, "Cd-Cd": 0.009}, s02=0.95,
                     e0=3.5, k=k)
    chi += rng.normal(0.0, 0.002, k.size) / np.maximum(k, 1.0)  # noise rising as 1/k in χ: flat in kχ
    space = FitSpace(kind="q", kmin=2.5, kmax=13.0, kweight=2, rmin=1.2, rmax=4.2)
    inputs, fits = {}, {}
    for name, absorbers in feff_candidates.items():
        model = StructureModel.build([(w, p) for w, p, _ in absorbers], space=space)
        fit = fit_structure(model, chi)
        eps = estimate_eps_k(model, chi)
        inputs[name] = {"exafs": evidence_input(model, fit, eps_k=eps)}
        fits[name] = fit
    res = rank_dataset("simulated", inputs)
    print(truth, "posterior", res.posterior[truth], "margin", res.margin)
    assert res.winner == truth, {c: round(v, 1) for c, v in res.log_evidence.items()}
    assert res.posterior[truth] >= 0.9
    f = fits[truth]
    assert f.params[0] == pytest.approx(0.95, abs=0.05)          # S0²
    assert f.params[-1] == pytest.approx(3.5, abs=0.7)           # ΔE0 (eV)


@pytest.fixture(scope="module")
def fdmnes_candidates(tmp_path_factory):
    """FDMNES (Green, radius 3.5 Å, crystal block) of every candidate, normalised."""
    from xasmpi.xanes.clusters import bulk_crystal
    from xasmpi.xanes.compare import core_hole_fwhm, normalize
    from xasmpi.xanes.fdmnes import FdmnesSettings, find_fdmnes, run_fdmnes, write_input

    try:
        binary, _ = find_fdmnes(None)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no FDMNES binary: {exc}")
    st = FdmnesSettings(mode="green", radius=3.5, e_min=-30.0, e_max=130.0, e_step=0.5,
                        gamma_hole=core_hole_fwhm("Cd", "K"))
    out = {}
    for name, (lat, a, anion) in CANDIDATES.items():
        atoms = bulk_crystal(lat, a=a, anion=anion)
        res = run_fdmnes(write_input(atoms, 0, st), tmp_path_factory.mktemp(f"fdm-{name}"), binary=binary,
                         timeout=600)
        out[name] = normalize(res.energy + 26711.0, res.mu, name=name)  # Cd K edge on the photon scale
    return out


@pytest.mark.slow
@pytest.mark.fdmnes
@pytest.mark.parametrize("truth", ["zincblende-CdS", "rocksalt-CdS", "betasn-CdS"])
def test_simulated_exafs_and_xanes_truth_ranks_first(feff_candidates, fdmnes_candidates, truth):
    """EXAFS (larch, E0 offset 3.5 eV, noise) and XANES (the truth's FDMNES spectrum with the
    beamline resolution, an energy offset of 4 eV and noise) of one candidate; every candidate is
    compared with both at fixed physical broadening, one shift calibrated on zinc blende."""
    from xasmpi.analysis.ranking import EvidenceInput
    from xasmpi.exafs.fit import estimate_eps_k
    from xasmpi.exafs.model import FitSpace
    from xasmpi.exafs.paths import kgrid
    from xasmpi.exafs.structure_chi import StructureModel, evidence_input, fit_structure
    from xasmpi.xanes.compare import align_fixed, broaden, calibrate_shift, core_hole_fwhm, normalize

    rng = np.random.default_rng(sorted(CANDIDATES).index(truth) + 10)
    k = kgrid()
    chi = _larch_chi(feff_candidates[truth], sigma2={"Cd-S": 0.0045, "Cd-O": 0.005, "Cd-Cd": 0.009}, s02=0.95,
                     e0=3.5, k=k) + rng.normal(0.0, 0.002, k.size) / np.maximum(k, 1.0)
    space = FitSpace(kind="q", kmin=2.5, kmax=13.0, kweight=2, rmin=1.2, rmax=4.2)
    gauss = 1.4e-4 * 26711.0  # the paper's dE/E
    sim = fdmnes_candidates[truth]
    e = np.arange(sim.energy[0] + 4.0, sim.energy[-1] + 4.0, 0.5)
    mu = np.interp(e - 4.0, sim.energy, broaden(sim.energy, sim.norm, gauss_fwhm=gauss))
    meas = normalize(e, mu + rng.normal(0.0, 0.003, e.size), name="simulated")
    window = (-15.0, 90.0)
    shift = calibrate_shift(fdmnes_candidates["zincblende-CdS"], meas, gauss_fwhm=gauss, window=window)
    fwhm = math.hypot(core_hole_fwhm("Cd", "K"), gauss)
    inputs = {}
    for name, absorbers in feff_candidates.items():
        model = StructureModel.build([(w, p) for w, p, _ in absorbers], space=space)
        fit = fit_structure(model, chi)
        al = align_fixed(fdmnes_candidates[name], meas, shift=shift, gauss_fwhm=gauss, window=window)
        sig = spectrum_noise(al.data)
        inputs[name] = {"exafs": evidence_input(model, fit, eps_k=estimate_eps_k(model, chi)),
                        "xanes": EvidenceInput(residual=al.data - al.model, jacobian=np.zeros((al.data.size, 0)),
                                               var=np.full(al.data.size, sig ** 2),
                                               n_eff=min(al.data.size, (al.energy[-1] - al.energy[0]) / fwhm),
                                               bounds=np.zeros((0, 2)))}
    res = rank_dataset("simulated", inputs)
    print(truth, "posterior", round(res.posterior[truth], 4), "margin", round(res.margin, 1), {
        c: {t: round(e.log_evidence, 1) for t, e in res.terms[c].items()} for c in res.candidates})
    assert res.winner == truth and res.posterior[truth] >= 0.9
    xz = {c: res.terms[c]["xanes"].log_evidence for c in res.candidates}
    assert xz[truth] == max(xz.values())  # the XANES term alone also picks the truth


def test_rank_section_is_validated(tmp_path):
    from xasmpi.config import load_job
    from xasmpi.errors import ConfigError

    base = ('[job]\noutput = "r.h5"\n[[spectra]]\nname = "S"\nfile = "s.xdi"\n'
            '[[xanes.candidates]]\nname = "zb"\nbuild = {lattice = "zincblende"}\n'
            '[[xanes.candidates]]\nname = "rs"\nbuild = {lattice = "rocksalt"}\n')
    job = tmp_path / "job.toml"
    job.write_text(base + '[rank]\nsigma2 = ["0.0005 Å^2", 0.02]\ncompare = [["S", "S"]]\njoint = ["S.de0", "global.de0"]\n')
    j = load_job(job)
    assert j.rank.sigma2 == (0.0005, 0.02) and "rank" in j.configured_stages
    assert j.rank.joint == ("S.de0", "global.de0") and not j.resolved()["rank"]["joint_samples"]
    assert j.fingerprint("rank") == load_job(job, ["rank.joint=[]"]).fingerprint("rank")  # report-only
    assert j.fingerprint("rank") == load_job(job, ["rank.shell_halfwidth=0.2"]).fingerprint("rank")  # finalize-only
    assert j.fingerprint("rank") != load_job(job, ["rank.rmax_path=4.0"]).fingerprint("rank")
    for text, key in ((base + '[rank]\ncandidates = ["wz"]\n', "rank.candidates"),
                      (base + '[rank]\nde0 = [5, -5]\n', "rank.de0"),
                      (base + '[rank]\ncompare = [["S", "T"]]\n', "rank.compare"),
                      (base + '[rank]\njoint = ["Cd-S.n"]\n', "rank.joint"),
                      (base + '[rank]\njoint = ["S.N"]\n', "rank.joint"),
                      (base + '[rank]\njoint_samples = ["S", "T"]\n', "rank.joint_samples"),
                      (base + '[rank]\njoint_samples = ["S"]\n', "rank.joint_samples"),
                      (base + '[rank]\nfoo = 1\n', "rank.foo"),
                      ('[job]\noutput = "r.h5"\n[rank]\n', "rank")):
        job.write_text(text)
        with pytest.raises(ConfigError, match=f"key '{key}'"):
            load_job(job)


@pytest.mark.slow
def test_structure_model_matches_larch_path2chi(feff_candidates):
    """The structure model at (S0², σ² per group, ΔE0) equals larch's sum of its FEFF paths."""
    from xasmpi.exafs.model import FitSpace
    from xasmpi.exafs.paths import kgrid
    from xasmpi.exafs.structure_chi import StructureModel

    k = kgrid()
    sig = {"Cd-S": 0.0045, "Cd-O": 0.005, "Cd-Cd": 0.009}
    space = FitSpace(kind="q", kmin=2.5, kmax=13.0, kweight=2, rmin=1.2, rmax=4.2)
    for name, absorbers in feff_candidates.items():
        model = StructureModel.build([(w, p) for w, p, _ in absorbers], space=space)
        theta = np.array([[0.95] + [sig[g] for g in model.groups] + [3.5]])
        ours = model.evaluate(theta)[0]
        ref = _larch_chi(absorbers, sigma2=sig, s02=0.95, e0=3.5, k=k)[: model.nk]
        sel = (k[: model.nk] >= 2.5) & (k[: model.nk] <= 13.0)
        err = np.max(np.abs((ours - ref)[sel] * k[: model.nk][sel] ** 2)) / np.max(np.abs(ref[sel] * k[: model.nk][sel] ** 2))
        assert err < 0.01, (name, err)
