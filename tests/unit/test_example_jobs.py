"""The example job files load, and the μ(E)-level real-data mixture they fit has the known-answer structure."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xasmpi.config import load_job
from xasmpi.testing import REPO, mixture_mu, mixture_truth, write_mixture, xaslib_dir

EXAMPLES = REPO / "jobs" / "examples"


def test_paper_toml_loads():
    job = load_job(EXAMPLES / "paper.toml")
    assert {p.name for p in job.paths} == {"Cd-O", "Cd-S", "Cd-Cd"}
    assert job.fit.replicates == 10000 and job.fit.mode == "noise"


def test_mixture_toml_loads_and_points_at_the_shared_scans(tmp_path):
    mix = write_mixture(tmp_path / "mixture.xdi", 0.5)
    job = load_job(EXAMPLES / "mixture.toml", [f"spectra[2].file={mix}"])
    refs = {s.name: Path(s.file) for s in job.spectra if s.role == "reference"}
    assert refs == {"CdS_10K_01": xaslib_dir().resolve() / "CdS_10K_01.xdi",
                    "CdO_10K_01": xaslib_dir().resolve() / "CdO_10K_01.xdi"}
    assert all(p.is_file() for p in refs.values())
    sample = job.spectrum("mixture")
    assert sample.role == "sample" and sample.absorbance == "mu" and Path(sample.file) == mix
    # the job as written expects the file `xasmpi demo --mixture X --out jobs/examples/results` writes
    assert load_job(EXAMPLES / "mixture.toml").spectrum("mixture").file == str(EXAMPLES / "results" / "mixture.xdi")
    assert {p.name: p.reference for p in job.paths} == {"Cd-S": "CdS_10K_01", "Cd-O": "CdO_10K_01",
                                                        "Cd-Cd": "CdO_10K_01"}
    assert job.fit.e0 == "per-reference" and job.fit.systematics.enabled  # the defaults
    assert (job.fit.rmin, job.fit.rmax) == (1.2, 3.5)
    from xasmpi.demo.generate import read_truth

    assert read_truth(mix) == mixture_truth(0.5)
    assert mixture_truth(0.3)["Cd-S"]["n"] == pytest.approx(1.2)
    assert mixture_truth(0.3)["Cd-O"]["n"] == pytest.approx(4.2)
    assert mixture_truth(0.3)["Cd-Cd"]["n"] == pytest.approx(8.4)


def test_mu_level_mixture_is_the_weighted_sum_of_the_two_phases():
    """Reduced by the product, the μ(E) mixture's χ is x·χ_CdS + (1 − x)·χ_CdO with each phase on
    its own E0 (which is why the fit needs a ΔE0 per reference), its edge step is 1, and its
    edge lies between the two scans' edges."""
    from xasmpi.exafs.io import Spectrum, read_spectrum
    from xasmpi.exafs.paths import ETOK
    from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum

    d = xaslib_dir()
    s, o = (reduce_spectrum(read_spectrum(d / f"{nm}.xdi")) for nm in ("CdS_10K_02", "CdO_10K_02"))
    for x in (0.3, 0.7):
        e, mu = mixture_mu(x)
        assert np.allclose(mu, x * np.interp(e, s.energy, s.norm) + (1 - x) * np.interp(e, o.energy, o.norm))
        red = reduce_spectrum(Spectrum(name="mix", source="mix", kind="mu", energy=e, mu=mu, element="Cd",
                                       edge="K"), ReductionSettings())
        assert red.edge_step == pytest.approx(1.0, abs=0.02)
        assert min(s.e0, o.e0) - 0.5 <= red.e0 <= max(s.e0, o.e0) + 0.5
        k = red.k
        energy = red.e0 + k ** 2 / ETOK

        def chi_at(r):
            kk = np.sqrt(np.clip(energy - r.e0, 0, None) * ETOK)
            return np.interp(kk, r.k, r.chi)

        expect = x * chi_at(s) + (1 - x) * chi_at(o)
        m = (k >= 3) & (k <= 14)
        w = k[m] ** 2
        rf = np.sum((w * (red.chi[m] - expect[m])) ** 2) / np.sum((w * expect[m]) ** 2)
        assert rf < 0.01, (x, rf)
        # ... and not the sum on one common k scale: the E0 offsets matter
        same = x * s.chi[: k.size] + (1 - x) * o.chi[: k.size]
        rf_same = np.sum((w * (red.chi[m] - same[m])) ** 2) / np.sum((w * same[m]) ** 2)
        assert rf_same > 3 * rf
