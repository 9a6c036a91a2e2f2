"""Simulated demo data (xasmpi.demo.generate): larch path2chi physics, labelling, determinism,
noise of the real scans, round trip through the reduction, job template."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xasmpi.demo.generate import (EDGES, NOISE, REAL_NOISE, REFERENCE_SHELLS, SAMPLE_DE0, SAMPLE_SHELLS,
                                  TEMPLATE, feff_input, generate, read_truth, render_job, turn_on)
from xasmpi.errors import InputError

NAMES = ("CdS_ref", "CdO_ref", "MSC_sim", "MSC_iso")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo") / "data", seed=11)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, demo):
    """The same spectra without noise (FEFF runs reused)."""
    return generate(tmp_path_factory.mktemp("clean"), seed=11, noise={n: 0.0 for n in NAMES},
                    feff_dir=Path(demo.out_dir) / "feff")


def _reduce(path):
    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum

    return reduce_spectrum(read_spectrum(path, absorbance="mu"), ReductionSettings(rbkg=0.8))


def _rfactor(red, spec, kmin=2.0, kmax=16.5):
    """Σ (k²Δχ)² / Σ (k²χ_true)² over [kmin, kmax] (Å⁻¹) of a reduced spectrum vs the truth."""
    k = red.k
    m = (k >= kmin) & (k <= kmax)
    true = np.interp(k, spec.k, spec.chi)
    return float(np.sum((k[m] ** 2 * (red.chi[m] - true[m])) ** 2) / np.sum((k[m] ** 2 * true[m]) ** 2))


def test_chi_is_the_larch_path2chi_sum_of_the_truth(demo):
    """χ(k) of every spectrum = Σ larch path2chi over its FEFF paths (recomputed here from the
    feffNNNN.dat files), the single-scattering paths carry exactly the stored true N, R, σ², ΔE0,
    and FEFF's multiple-scattering paths are included."""
    from larch.xafs import feffpath, path2chi

    for name in NAMES:
        spec = demo.spectra[name]
        info = read_truth_info(spec.file)
        k = spec.k[1:]
        kk = np.concatenate([[0.5 * k[0]], k])
        total = np.zeros_like(k)
        for p in info["feff_paths"]:
            fp = feffpath(str(Path(demo.feff_dirs[p["structure"]]) / p["file"]))
            path2chi(fp, k=kk, s02=p["s02"], e0=p["e0"], deltar=p["deltar"], sigma2=p["sigma2"])
            total += np.asarray(fp.chi)[1:]
        assert np.allclose(total * turn_on(k), spec.chi[1:], rtol=0, atol=1e-12)
        truth = read_truth(spec.file)
        ss = [p for p in info["feff_paths"] if p["nleg"] == 2]
        assert {p["shells"][0] for p in ss} == set(truth)
        for p in ss:
            t = truth[p["shells"][0]]
            assert p["degen"] * p["s02"] == pytest.approx(t["n"], rel=1e-12)
            assert p["reff"] + p["deltar"] == pytest.approx(t["r"], abs=1e-12)
            assert p["sigma2"] == t["sigma2"] and p["e0"] == t["de0"]
        ms = [p for p in info["feff_paths"] if p["nleg"] > 2]
        assert ms, name  # FEFF's triangles (and CdO's collinear paths) are there
        if name == "MSC_sim":  # the sample's Cd–S-like and Cd–O-like parts have their own ΔE0
            assert {p["e0"] for p in info["feff_paths"] if p["structure"] == "CdS"} == {SAMPLE_DE0[name]["CdS"]}
            assert {p["e0"] for p in info["feff_paths"] if p["structure"] == "CdO"} == {SAMPLE_DE0[name]["CdO"]}
            assert all(p["structure"] == "CdS" for p in ms)  # Cd–O: a ligand shell, no rock-salt paths
    # the two CdS triangles of the sample scale as (N(Cd-S)/4)^2 and N(Cd-Cd)/12
    tri = {tuple(sorted(p["shells"])): p["s02"] for p in read_truth_info(demo.files["MSC_sim"])["feff_paths"]
           if p["nleg"] == 3}
    assert tri[("Cd-S", "Cd-S")] == pytest.approx((2.6 / 4) ** 2)
    assert tri[("Cd-Cd", "Cd-S")] == pytest.approx(5.4 / 12)
    # the demo's second sample is an "isomer": only N(Cd-Cd) differs, by +30 %
    a, b = read_truth(demo.files["MSC_sim"]), read_truth(demo.files["MSC_iso"])
    assert b["Cd-Cd"]["n"] == pytest.approx(1.3 * a["Cd-Cd"]["n"])
    assert {**b, "Cd-Cd": {**b["Cd-Cd"], "n": a["Cd-Cd"]["n"]}} == a


def read_truth_info(path) -> dict:
    """The ``# Xasmpi.simulation:`` header JSON of a simulated file."""
    for line in Path(path).read_text().splitlines():
        if line.startswith("# Xasmpi.simulation:"):
            return json.loads(line.split(":", 1)[1])
    raise AssertionError(f"{path}: no Xasmpi.simulation field")


def test_files_are_labelled_simulated(demo):
    assert set(demo.files) == set(NAMES)
    for name in NAMES:
        text = Path(demo.files[name]).read_text()
        head = [ln for ln in text.splitlines() if ln.startswith("#")]
        assert head[0].startswith("# XDI/1.0")
        assert "# Element.symbol: Cd" in head and "# Element.edge: K" in head
        assert any(ln.startswith("# SIMULATED by xasmpi") for ln in head)
        assert f"# Sample.name: {name} (SIMULATED)" in head
        assert "# Xasmpi.simulated: true" in head
        assert head[-1].split()[1:] == ["energy", "mu"]
    truth = read_truth(demo.files["MSC_sim"])
    assert truth == {"Cd-O": {"n": 3.2, "r": 2.30, "sigma2": 0.008, "de0": -1.2},
                     "Cd-S": {"n": 2.6, "r": 2.49, "sigma2": 0.006, "de0": 1.5},
                     "Cd-Cd": {"n": 5.4, "r": 3.98, "sigma2": 0.015, "de0": 1.5}}
    assert read_truth(demo.files["CdS_ref"])["Cd-S"] == {"n": 4.0, "r": 2.519, "sigma2": 0.004, "de0": 0.0}
    assert read_truth(demo.files["CdO_ref"])["Cd-Cd"] == {"n": 12.0, "r": 3.320, "sigma2": 0.006, "de0": 0.0}
    on_disk = json.loads(Path(demo.truth_file).read_text())
    assert on_disk == json.loads(json.dumps(demo.truth))
    assert on_disk["simulated"] is True and on_disk["samples"] == ["MSC_sim", "MSC_iso"]
    assert on_disk["MSC_sim"] == truth
    assert on_disk["info"]["MSC_sim"]["noise"] == NOISE["MSC_sim"]
    assert sorted(Path(demo.feff_dirs["CdO"]).glob("feff0*.dat"))[-1].name == "feff0012.dat"
    assert "NLEG 4" in feff_input("CdO") and "SIMULATED" in feff_input("CdS")


def test_readers(demo):
    from larch.io import read_xdi

    from xasmpi.exafs.io import read_spectrum

    g = read_xdi(demo.files["MSC_sim"])
    assert [str(s) for s in g.array_labels] == ["energy", "mu"]
    for name in NAMES:
        s = read_spectrum(demo.files[name], absorbance="mu")
        assert (s.element, s.edge, s.kind) == ("Cd", "K", "mu")
        assert np.all(np.diff(s.energy) > 0)
        assert s.energy[0] < EDGES[name] - 200 and np.sqrt(0.2624683 * (s.energy[-1] - EDGES[name])) > 16.9
        assert np.allclose(s.mu, demo.spectra[name].mu, atol=1e-8)


def test_deterministic(demo, tmp_path):
    feff = Path(demo.out_dir) / "feff"
    again = generate(tmp_path / "again", seed=11, feff_dir=feff)
    for name in NAMES:
        assert Path(again.files[name]).read_bytes() == Path(demo.files[name]).read_bytes()
    other = generate(tmp_path / "other", seed=12, feff_dir=feff)
    assert not np.array_equal(other.spectra["MSC_sim"].mu, demo.spectra["MSC_sim"].mu)
    assert np.array_equal(other.spectra["MSC_sim"].chi, demo.spectra["MSC_sim"].chi)


def test_noise_level_is_that_of_the_real_scans(demo, clean):
    """The noise in μ is Gaussian with σ = noise × edge step; the noise defaults are larch
    estimate_noise of the real CdS_10K_01 / CdO_10K_01 scans, and the same estimator on the
    simulated spectra gives that level (the estimator itself scatters by ~20 %)."""
    from larch import Group
    from larch.xafs import estimate_noise

    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import reduce_spectrum
    from xasmpi.testing import xaslib_dir

    def eps(red):
        g = Group()
        estimate_noise(red.k, red.chi, group=g)
        return float(g.epsilon_k)

    for scan, level in REAL_NOISE.items():
        real = reduce_spectrum(read_spectrum(xaslib_dir() / f"{scan}.xdi"))
        assert eps(real) == pytest.approx(level, rel=0.02)
    ratios = []
    for name in NAMES:
        s, c = demo.spectra[name], clean.spectra[name]
        resid = (s.mu - c.mu) / s.edge_step
        assert np.std(resid) == pytest.approx(s.noise, rel=0.15)
        assert abs(np.mean(resid)) < 4 * s.noise / np.sqrt(resid.size)
        ratios.append(eps(_reduce(s.file)) / s.noise)
    assert 0.8 < np.mean(ratios) < 1.5  # measured 1.0-1.4 (seed 11)


def test_round_trip_noise_free(clean):
    """larch pre_edge + autobk (Rbkg 0.8, E0 found) returns the generated χ(k)."""
    for name in NAMES:
        red = _reduce(clean.files[name])
        assert abs(red.e0 - EDGES[name]) <= 1.0
        assert red.edge_step == pytest.approx(clean.spectra[name].edge_step, rel=0.06)
        assert _rfactor(red, clean.spectra[name], 3.0, 16.5) < 0.02


def test_round_trip_with_noise(demo):
    """With the default noise the k²-weighted R-factor over k 3–16.5 Å⁻¹ stays small."""
    for name in NAMES:
        red = _reduce(demo.files[name])
        assert abs(red.e0 - EDGES[name]) <= 1.0
        assert _rfactor(red, demo.spectra[name], 3.0, 16.5) < 0.03
        assert _rfactor(red, demo.spectra[name], 3.0, 10.0) < 0.02


def test_job_template_matches_generator(demo, tmp_path):
    from xasmpi.config import load_job

    raw = TEMPLATE.read_text()
    assert "{datadir}" in raw and "{output}" in raw
    job = load_job(render_job(tmp_path / "demo.toml", datadir=demo.out_dir, output="res.h5", seed=5))
    assert job.job.simulated and job.job.seed == 5
    assert job.job.output == str((tmp_path / "res.h5").resolve())
    assert {s.name: s.role for s in job.spectra} == {"CdS_ref": "reference", "CdO_ref": "reference",
                                                      "MSC_sim": "sample", "MSC_iso": "sample"}
    for s in job.spectra:
        assert Path(s.file).is_file() and s.absorbance == "mu"
    for p in job.paths:  # every path's N, R, σ² are the reference's simulated shell
        sh = next(sh for sh in REFERENCE_SHELLS[p.reference] if abs(sh.r - p.r) < 1e-9)
        assert (p.n, p.r, p.sigma2) == (sh.n, sh.r, sh.sigma2)
    sample = {sh.path: sh for sh in SAMPLE_SHELLS["MSC_sim"]}
    assert set(job.fit.paths) == set(sample)
    assert {p: v["r"] for p, v in job.fit.params.items()} == {p: sh.r for p, sh in sample.items()}
    assert job.fit.replicates == 500 and job.fit.mode == "noise" and job.fit.space == "q"
    # not tuned: E0 and ΔE0 handling are the defaults a user gets
    assert "shared_e0" not in raw and "\ne0 =" not in raw
    assert job.xanes.measured == ("MSC_sim",) and len(job.xanes.candidates) == 3
    assert job.analysis.mass == 5160 and job.analysis.cn_path == "Cd-S"
    # relative data folder: resolved against the job file's folder
    rel = load_job(render_job(Path(demo.out_dir) / "job.toml", datadir="."))
    assert rel.spectra[0].file == str(Path(demo.out_dir, "CdS_ref.xdi").resolve())


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="noise"):
        generate(tmp_path, noise={"MSC_sim": -1e-3})
    with pytest.raises(InputError, match="reference"):
        generate(tmp_path, samples={"CdS_ref": SAMPLE_SHELLS["MSC_sim"]})
    with pytest.raises(InputError, match="structure"):
        feff_input("ZnS")
