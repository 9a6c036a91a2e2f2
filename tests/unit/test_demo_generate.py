"""Simulated demo data (xasmpi.demo.generate): labelling, determinism, round trip, job template."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xasmpi.demo.generate import (E0, REFERENCE_SHELLS, SAMPLE_SHELLS, TEMPLATE, generate,
                                  read_truth, render_job)
from xasmpi.errors import InputError

NAMES = ("CdS_ref", "CdO_ref", "MSC_sim")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo") / "data", seed=11)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The same spectra without noise."""
    return generate(tmp_path_factory.mktemp("clean"), seed=11, noise=0.0, reference_noise=0.0)


def _rfactor(red, spec, kmin=2.0, kmax=16.5):
    """Σ (k²Δχ)² / Σ (k²χ_true)² over [kmin, kmax] (Å⁻¹) of a reduced spectrum vs the truth."""
    k = red.k
    m = (k >= kmin) & (k <= kmax)
    true = np.interp(k, spec.k, spec.chi)
    return float(np.sum((k[m] ** 2 * (red.chi[m] - true[m])) ** 2) / np.sum((k[m] ** 2 * true[m]) ** 2))


def test_files_are_labelled_simulated(demo):
    assert set(demo.files) == set(NAMES)
    for name in NAMES:
        text = Path(demo.files[name]).read_text()
        head = [ln for ln in text.splitlines() if ln.startswith("#")]
        assert head[0].startswith("# XDI/1.0")
        assert "# Element.symbol: Cd" in head and "# Element.edge: K" in head
        assert any(ln.startswith("# SIMULATED by xasmpi") for ln in head)
        assert "# Xasmpi.simulated: true" in head
        assert head[-1].split()[1:] == ["energy", "mu"]
    truth = read_truth(demo.files["MSC_sim"])
    assert truth == {"Cd-O": {"n": 3.2, "r": 2.30, "sigma2": 0.008},
                     "Cd-S": {"n": 2.6, "r": 2.49, "sigma2": 0.006},
                     "Cd-Cd": {"n": 5.4, "r": 3.98, "sigma2": 0.015}}
    assert read_truth(demo.files["CdS_ref"])["Cd-S"] == {"n": 4.0, "r": 2.519, "sigma2": 0.004}
    assert read_truth(demo.files["CdO_ref"])["Cd-Cd"] == {"n": 12.0, "r": 3.320, "sigma2": 0.006}
    on_disk = json.loads(Path(demo.truth_file).read_text())
    assert on_disk == json.loads(json.dumps(demo.truth))
    assert on_disk["simulated"] is True and on_disk["samples"] == ["MSC_sim"]
    assert on_disk["MSC_sim"] == truth
    assert on_disk["info"]["MSC_sim"]["noise"] == pytest.approx(5e-4)


def test_readers(demo):
    from larch.io import read_xdi

    from xasmpi.exafs.io import read_spectrum

    g = read_xdi(demo.files["MSC_sim"])
    assert [str(s) for s in g.array_labels] == ["energy", "mu"]
    for name in NAMES:
        s = read_spectrum(demo.files[name], absorbance="mu")
        assert (s.element, s.edge, s.kind) == ("Cd", "K", "mu")
        assert np.all(np.diff(s.energy) > 0)
        assert s.energy[0] < E0 - 200 and np.sqrt(0.2624683 * (s.energy[-1] - E0)) > 16.9
        assert np.allclose(s.mu, demo.spectra[name].mu, atol=1e-8)


def test_deterministic(demo, tmp_path):
    again = generate(tmp_path / "again", seed=11)
    for name in NAMES:
        assert Path(again.files[name]).read_bytes() == Path(demo.files[name]).read_bytes()
    other = generate(tmp_path / "other", seed=12)
    assert not np.array_equal(other.spectra["MSC_sim"].mu, demo.spectra["MSC_sim"].mu)
    assert np.array_equal(other.spectra["MSC_sim"].chi, demo.spectra["MSC_sim"].chi)


def test_noise_level(demo, clean):
    """The noise in μ is Gaussian with σ = noise × edge step."""
    for name in NAMES:
        s, c = demo.spectra[name], clean.spectra[name]
        resid = (s.mu - c.mu) / s.edge_step
        assert np.std(resid) == pytest.approx(s.noise, rel=0.15)
        assert abs(np.mean(resid)) < 4 * s.noise / np.sqrt(resid.size)


def test_round_trip_noise_free(clean):
    """larch pre_edge + autobk (Rbkg 0.8, E0 found) returns the generated χ(k)."""
    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum

    for name in NAMES:
        red = reduce_spectrum(read_spectrum(clean.files[name], absorbance="mu"),
                              ReductionSettings(rbkg=0.8))
        assert abs(red.e0 - E0) <= 1.0
        assert red.edge_step == pytest.approx(clean.spectra[name].edge_step, rel=0.06)
        assert _rfactor(red, clean.spectra[name]) < 0.01  # measured 0.0013-0.0055


def test_round_trip_with_noise(demo):
    """With the default noise the k²-weighted R-factor over k 2–16.5 Å⁻¹ stays small."""
    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum

    limits = {"CdS_ref": 0.02, "CdO_ref": 0.02, "MSC_sim": 0.08}  # measured 0.007, 0.008, 0.059 (seed 11)
    for name in NAMES:
        red = reduce_spectrum(read_spectrum(demo.files[name], absorbance="mu"),
                              ReductionSettings(rbkg=0.8))
        assert abs(red.e0 - E0) <= 1.0
        assert _rfactor(red, demo.spectra[name]) < limits[name]
        assert _rfactor(red, demo.spectra[name], 2.0, 10.0) < 0.01  # measured ≈ 0.002-0.007


def test_job_template_matches_generator(demo, tmp_path):
    from xasmpi.config import load_job

    raw = TEMPLATE.read_text()
    assert "{datadir}" in raw and "{output}" in raw
    job = load_job(render_job(tmp_path / "demo.toml", datadir=demo.out_dir, output="res.h5", seed=5))
    assert job.job.simulated and job.job.seed == 5
    assert job.job.output == str((tmp_path / "res.h5").resolve())
    assert {s.name: s.role for s in job.spectra} == {"CdS_ref": "reference", "CdO_ref": "reference",
                                                      "MSC_sim": "sample"}
    for s in job.spectra:
        assert Path(s.file).is_file() and s.absorbance == "mu"
    ref = {(name, sh.path): sh for name, shells in REFERENCE_SHELLS.items() for sh in shells}
    for p in job.paths:
        sh = ref[(p.reference, p.name)]
        assert (p.n, p.r, p.sigma2) == (sh.n, sh.r, sh.sigma2)
    sample = {sh.path: sh for sh in SAMPLE_SHELLS["MSC_sim"]}
    assert {p: v["r"] for p, v in job.fit.params.items()} == {p: sh.r for p, sh in sample.items()}
    assert job.fit.replicates == 2000 and job.fit.mode == "noise" and job.fit.space == "q"
    assert job.xanes.measured == ("MSC_sim",) and len(job.xanes.candidates) == 3
    assert job.analysis.mass == 5160 and job.analysis.cn_path == "Cd-S"
    # relative data folder: resolved against the job file's folder
    rel = load_job(render_job(Path(demo.out_dir) / "job.toml", datadir="."))
    assert rel.spectra[0].file == str(Path(demo.out_dir, "CdS_ref.xdi").resolve())


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="noise"):
        generate(tmp_path, noise=-1e-3)
    with pytest.raises(InputError, match="formula"):
        generate(tmp_path, formula="magic")
