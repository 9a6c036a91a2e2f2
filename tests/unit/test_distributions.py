"""Histograms, KDE, modes, overlap coefficient and bimodality tests against known distributions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.stats import norm

from xasmpi.analysis.distributions import (
    bimodality_coefficient,
    bimodality_test,
    describe,
    gaussian_mixture_bic,
    histogram,
    kde,
    modes,
    overlap_coefficient,
)
from xasmpi.errors import InputError


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def test_histogram_counts_and_density(rng):
    x = rng.normal(0, 1, 1000)
    h = histogram(x, bins=20)
    assert h.counts.sum() == 1000
    assert np.sum(h.density * np.diff(h.edges)) == pytest.approx(1.0)
    assert h.centres.size == 20
    h2 = histogram([1.0, 2.0, 2.5], bins=[0, 2, 3])
    assert h2.counts.tolist() == [1, 2]
    with pytest.raises(InputError):
        histogram([1.0, np.nan])


def test_kde_scott_bandwidth_and_normalisation(rng):
    x = rng.normal(5, 2, 2000)
    k = kde(x)
    # Scott's rule in 1-D: h = sd * n^(-1/5)
    assert k.bandwidth == pytest.approx(x.std(ddof=1) * 2000 ** (-0.2), rel=1e-9)
    assert trapezoid(k.density, k.grid) == pytest.approx(1.0, abs=1e-3)
    ks = kde(x, bw_method="silverman")
    assert ks.bandwidth == pytest.approx(x.std(ddof=1) * (2000 * 3 / 4) ** (-0.2), rel=1e-9)
    assert k.bw_rule == "scott" and ks.bw_rule == "silverman"
    # the density of N(5, 2) at its mean is 1/(2 sqrt(2 pi)) = 0.199; KDE slightly lower (smoothing)
    assert np.interp(5.0, k.grid, k.density) == pytest.approx(norm.pdf(0, 0, 2), rel=0.08)
    with pytest.raises(InputError):
        kde(np.full(10, 109.47))
    with pytest.raises(InputError):
        kde(x, bw_method="nonsense")


def test_modes_of_one_and_two_peaks(rng):
    one = modes(kde(rng.normal(107, 2, 2000), n_grid=2000))
    assert one.size == 1 and one[0] == pytest.approx(107, abs=0.4)
    two = kde(np.concatenate([rng.normal(107, 2, 1500), rng.normal(115, 2, 1000)]), n_grid=2000)
    m = modes(two)
    assert m.size == 2
    assert m[0] == pytest.approx(107, abs=0.5)  # the higher peak first
    assert m[1] == pytest.approx(115, abs=0.5)


def test_overlap_identical_and_separated(rng):
    a = rng.normal(0, 1, 4000)
    # same sample with itself: exactly 1 up to the trapezoid integration error
    assert overlap_coefficient(a, a) == pytest.approx(1.0, abs=1e-4)
    # two independent draws of N(0,1), n = 4000: the KDE's integrated absolute error
    # (~ n^(-2/5) ≈ 0.04 scale) bounds 1 - OVL; observed ≈ 0.98
    assert overlap_coefficient(a, rng.normal(0, 1, 4000)) > 0.95
    # 20 sd apart: no overlap
    assert overlap_coefficient(a, rng.normal(20, 1, 4000)) < 1e-6
    assert overlap_coefficient(a, rng.normal(20, 1, 4000), method="histogram") == 0.0


def test_overlap_matches_normal_theory(rng):
    # OVL of N(0,1) and N(1,1) is 2 Phi(-1/2) = 0.617; Scott smoothing widens both to
    # sd ≈ 1.016, raising it by ~0.006; sampling error at n = 5000 is ~0.01
    a = rng.normal(0, 1, 5000)
    b = rng.normal(1, 1, 5000)
    expect = 2 * norm.cdf(-0.5)
    assert overlap_coefficient(a, b) == pytest.approx(expect, abs=0.03)
    assert overlap_coefficient(a, b, method="histogram") == pytest.approx(expect, abs=0.04)
    with pytest.raises(InputError):
        overlap_coefficient(a, b, method="magic")


def test_bimodality_coefficient_reference_values(rng):
    # normal: BC = 1/3; uniform: BC = 5/9 (the bimodality threshold)
    assert bimodality_coefficient(rng.normal(0, 1, 20000)) == pytest.approx(1 / 3, abs=0.02)
    assert bimodality_coefficient(rng.uniform(0, 1, 20000)) == pytest.approx(5 / 9, abs=0.02)
    # 50/50 mixture of N(±3, 1): skew 0, kurtosis (3 + 6*9 + 81)/10^2 = 1.38, BC = 1/1.38 = 0.725
    mix = np.concatenate([rng.normal(-3, 1, 5000), rng.normal(3, 1, 5000)])
    assert bimodality_coefficient(mix) == pytest.approx(1 / 1.38, abs=0.02)


def test_gaussian_mixture_recovers_components(rng):
    x = np.concatenate([rng.normal(107, 2, 600), rng.normal(115, 2, 400)])
    fit = gaussian_mixture_bic(x)
    assert fit.means == pytest.approx((107, 115), abs=0.4)
    assert fit.sds == pytest.approx((2, 2), abs=0.3)
    assert fit.weights == pytest.approx((0.6, 0.4), abs=0.05)
    assert fit.delta_bic > 10
    assert fit.ashman_d == pytest.approx(np.sqrt(2) * 8 / np.sqrt(8), abs=0.4)  # = 4
    single = gaussian_mixture_bic(rng.normal(107, 2, 1000))
    assert single.delta_bic < 10


def test_bimodality_test_core_vs_surface(rng):
    # the paper's Fig. 4 picture: core around 107°, surface around 115°
    core, surf = rng.normal(107, 2.5, 200), rng.normal(115, 3, 120)
    res = bimodality_test(core, surf)
    assert res.ks_pvalue < 1e-6 and res.mw_pvalue < 1e-6
    assert res.bimodal
    assert res.to_dict()["n_core"] == 200
    same = bimodality_test(rng.normal(109, 2.5, 200), rng.normal(109, 2.5, 120))
    assert same.ks_pvalue > 0.01 and not same.bimodal
    # a sharp core spike plus a broad surface population: two components, but not two modes
    spike = bimodality_test(np.full(150, 109.47), rng.normal(111, 6, 100))
    assert spike.mixture.delta_bic > 10 and spike.mixture.ashman_d < 2 and not spike.bimodal
    # degenerate inputs are reported, not raised
    empty = bimodality_test(core, [])
    assert np.isnan(empty.ks_pvalue) and "empty" in empty.note and not empty.bimodal


def test_describe_zero_spread_and_normal(rng):
    flat = describe(np.full(50, 109.4712))
    assert flat.kde is None and flat.modes.tolist() == [pytest.approx(109.4712)]
    assert flat.histogram.counts.sum() == 50 and "no spread" in flat.note
    s = describe(rng.normal(107, 2, 500), bins=np.arange(95, 120, 1.0))
    assert s.n == 500 and s.mean == pytest.approx(107, abs=0.3)
    assert s.kde is not None and s.modes.size == 1
    assert s.histogram.edges[0] == 95
    none = describe([])
    assert none.n == 0 and none.histogram is None and none.modes.size == 0
