"""Sample distributions: histograms, Gaussian KDE, modes, overlap coefficient, bimodality.

Used for the N·S0² replicate distributions (Fig. 2b, overlap of two samples' distributions)
and the core/surface bond-angle populations (Fig. 4).  All functions are unit-agnostic: the
outputs carry the unit of the input samples (e.g. degrees for angles).

Conventions
-----------
* KDE: :class:`scipy.stats.gaussian_kde` with Scott's rule by default,
  bandwidth h = σ̂ · n^(−1/5) (1-D), where σ̂ is the sample standard deviation (ddof=1);
  Silverman's rule, h = σ̂ · (3n/4)^(−1/5), or a scalar factor (h = factor · σ̂) can be chosen.
* Modes: local maxima of the KDE evaluated on a fine grid, kept if their topographic
  prominence is at least ``min_prominence`` times the global maximum density.
* Overlap coefficient: OVL = ∫ min(p₁, p₂) dx, 1 for identical and 0 for disjoint
  distributions; p are the two KDEs (or normalised histograms on common bins).
* Bimodality between two populations (core vs surface angles): see :func:`bimodality_test`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from xasmpi.errors import InputError

__all__ = [
    "Histogram",
    "KDE",
    "PopulationSummary",
    "GaussianMixtureFit",
    "BimodalityResult",
    "histogram",
    "kde",
    "modes",
    "overlap_coefficient",
    "overlap_from_histograms",
    "bimodality_coefficient",
    "gaussian_mixture_bic",
    "bimodality_test",
    "describe",
]

#: Relative spread below which a sample is treated as having no spread (KDE undefined).
_ZERO_SPREAD_REL = 1e-9


def _samples(x, name: str = "samples", *, min_n: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size and not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains non-finite values")
    if arr.size < min_n:
        raise InputError(f"{name}: need at least {min_n} values, got {arr.size}")
    return arr


def _has_spread(x: np.ndarray) -> bool:
    if x.size < 2:
        return False
    scale = max(float(np.max(np.abs(x))), 1.0)
    return float(np.std(x)) > _ZERO_SPREAD_REL * scale


@dataclass(frozen=True)
class Histogram:
    """Histogram of a sample.

    Attributes
    ----------
    edges : numpy.ndarray, shape (nbins + 1,)
        Bin edges (unit of the samples).
    counts : numpy.ndarray of int, shape (nbins,)
    density : numpy.ndarray, shape (nbins,)
        Counts normalised to unit area (1/unit).
    bins_rule : str
        How the bins were chosen.
    """

    edges: np.ndarray
    counts: np.ndarray
    density: np.ndarray
    bins_rule: str

    @property
    def centres(self) -> np.ndarray:
        """Bin centres."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])


def histogram(
    samples, *, bins: int | str | Sequence[float] = "auto", range: tuple[float, float] | None = None
) -> Histogram:
    """Histogram with counts and unit-area density.

    Parameters
    ----------
    samples : array_like
        Values (any unit).
    bins : int, str or sequence of float, optional
        Number of bins, a :func:`numpy.histogram_bin_edges` rule (default ``"auto"``:
        max of Sturges and Freedman–Diaconis), or explicit edges.
    range : (float, float), optional
        Lower and upper edge.

    Returns
    -------
    Histogram
    """
    x = _samples(samples, min_n=1)
    if isinstance(bins, str):
        rule = bins
    elif np.ndim(bins) == 0:
        if int(bins) < 1:
            raise InputError(f"histogram: bins must be >= 1, got {bins}")
        rule = f"{int(bins)} equal bins"
    else:
        rule = "explicit edges"
    try:
        edges = np.histogram_bin_edges(x, bins=bins, range=range)
    except (ValueError, TypeError) as exc:
        raise InputError(f"histogram: bad bins {bins!r} or range {range!r}: {exc}") from None
    counts, edges = np.histogram(x, bins=edges)
    widths = np.diff(edges)
    total = counts.sum()
    density = counts / (total * widths) if total else np.zeros_like(widths)
    return Histogram(edges=edges, counts=counts, density=density, bins_rule=rule)


@dataclass(frozen=True)
class KDE:
    """Gaussian kernel density estimate evaluated on a grid.

    Attributes
    ----------
    grid : numpy.ndarray
        Evaluation points (unit of the samples).
    density : numpy.ndarray
        Estimated probability density (1/unit).
    bandwidth : float
        Kernel standard deviation h (unit of the samples).
    bw_rule : str
        ``"scott"``, ``"silverman"`` or ``"factor=<f>"``.
    n : int
        Sample size.
    """

    grid: np.ndarray
    density: np.ndarray
    bandwidth: float
    bw_rule: str
    n: int


def _gaussian_kde(x: np.ndarray, bw_method):
    from scipy.stats import gaussian_kde

    if not _has_spread(x):
        raise InputError(
            f"KDE: the {x.size} samples have no spread (all ≈ {x[0]:.6g}); a KDE is undefined"
        )
    if isinstance(bw_method, str) and bw_method not in ("scott", "silverman"):
        raise InputError(f"KDE: bandwidth rule must be 'scott', 'silverman' or a number, got {bw_method!r}")
    if not isinstance(bw_method, str):
        bw_method = float(bw_method)
        if not math.isfinite(bw_method) or bw_method <= 0:
            raise InputError(f"KDE: bandwidth factor must be > 0, got {bw_method}")
    return gaussian_kde(x, bw_method=bw_method)


def _bw_label(bw_method) -> str:
    return bw_method if isinstance(bw_method, str) else f"factor={float(bw_method):g}"


def kde(
    samples,
    *,
    bw_method: str | float = "scott",
    grid: Sequence[float] | None = None,
    n_grid: int = 512,
    pad: float = 3.0,
) -> KDE:
    """Gaussian KDE (:class:`scipy.stats.gaussian_kde`) on a grid.

    Parameters
    ----------
    samples : array_like
        At least 2 values with non-zero spread (any unit).
    bw_method : {"scott", "silverman"} or float, optional
        Bandwidth rule (default Scott, h = σ̂ n^(−1/5)); a float is the factor multiplying σ̂.
    grid : array_like, optional
        Evaluation points; default ``n_grid`` points from min − pad·h to max + pad·h.
    n_grid : int, optional
        Number of grid points when ``grid`` is not given.
    pad : float, optional
        Grid padding in bandwidths.

    Returns
    -------
    KDE

    Raises
    ------
    InputError
        If the samples have fewer than 2 values or no spread, or a bad bandwidth rule.
    """
    x = _samples(samples, min_n=2)
    k = _gaussian_kde(x, bw_method)
    h = float(np.sqrt(k.covariance[0, 0]))
    if grid is None:
        g = np.linspace(x.min() - pad * h, x.max() + pad * h, int(n_grid))
    else:
        g = _samples(grid, "KDE grid", min_n=2)
    return KDE(grid=g, density=k(g), bandwidth=h, bw_rule=_bw_label(bw_method), n=int(x.size))


def modes(estimate: KDE, *, min_prominence: float = 0.05) -> np.ndarray:
    """Modes (local maxima) of a KDE.

    Parameters
    ----------
    estimate : KDE
        From :func:`kde`; use a fine grid.
    min_prominence : float, optional
        Minimum peak prominence relative to the highest density (default 0.05), which
        rejects ripples.

    Returns
    -------
    numpy.ndarray
        Mode positions (unit of the samples), sorted by decreasing density.
    """
    from scipy.signal import find_peaks

    d = np.asarray(estimate.density, dtype=float)
    if d.size < 3 or not np.any(d > 0):
        return np.empty(0)
    # pad with zeros so maxima at the grid ends are found too
    padded = np.concatenate([[0.0], d, [0.0]])
    peaks, _ = find_peaks(padded, prominence=float(min_prominence) * d.max())
    peaks = peaks - 1
    peaks = peaks[np.argsort(-d[peaks])]
    return np.asarray(estimate.grid)[peaks]


def overlap_coefficient(
    a,
    b,
    *,
    method: str = "kde",
    bw_method: str | float = "scott",
    bins: int | str = "auto",
    n_grid: int = 2048,
) -> float:
    """Overlap coefficient OVL = ∫ min(p_a, p_b) dx of two sample distributions.

    Parameters
    ----------
    a, b : array_like
        The two samples (same unit), e.g. N·S0² replicates of two samples.
    method : {"kde", "histogram"}, optional
        Densities from Gaussian KDEs (default; integrated with the trapezoid rule on a
        common grid covering both samples ± 4 bandwidths) or from unit-area histograms on
        common bins (``bins`` rule applied to the pooled samples).
    bw_method : {"scott", "silverman"} or float, optional
        KDE bandwidth rule.
    bins : int or str, optional
        Histogram bins (``method="histogram"``).
    n_grid : int, optional
        KDE grid size.

    Returns
    -------
    float
        OVL in [0, 1] (dimensionless).  For two normal distributions with equal σ whose
        means differ by d·σ, the true OVL is 2 Φ(−d/2); KDE smoothing biases it slightly up.
    """
    x = _samples(a, "overlap: first sample", min_n=2)
    y = _samples(b, "overlap: second sample", min_n=2)
    if method == "histogram":
        edges = np.histogram_bin_edges(np.concatenate([x, y]), bins=bins)
        px, _ = np.histogram(x, bins=edges, density=True)
        py, _ = np.histogram(y, bins=edges, density=True)
        return overlap_from_histograms(edges, px, edges, py)
    if method != "kde":
        raise InputError(f"overlap: method must be 'kde' or 'histogram', got {method!r}")
    from scipy.integrate import trapezoid

    kx = _gaussian_kde(x, bw_method)
    ky = _gaussian_kde(y, bw_method)
    hx = float(np.sqrt(kx.covariance[0, 0]))
    hy = float(np.sqrt(ky.covariance[0, 0]))
    lo = min(x.min() - 4 * hx, y.min() - 4 * hy)
    hi = max(x.max() + 4 * hx, y.max() + 4 * hy)
    g = np.linspace(lo, hi, int(n_grid))
    return float(np.clip(trapezoid(np.minimum(kx(g), ky(g)), g), 0.0, 1.0))


def overlap_from_histograms(e1: np.ndarray, d1: np.ndarray, e2: np.ndarray, d2: np.ndarray) -> float:
    """Overlap coefficient ∫ min(p1, p2) dx of two piecewise-constant densities (the integral of
    :func:`overlap_coefficient` with ``method="histogram"``; the bins may differ).

    Parameters
    ----------
    e1, e2 : numpy.ndarray
        Bin edges (unit of the variable).
    d1, d2 : numpy.ndarray
        Unit-area densities on those bins (1/unit).

    Returns
    -------
    float
        OVL in [0, 1], exact for the two step functions (on the union of the edges).
    """
    grid = np.union1d(e1, e2)
    mid = 0.5 * (grid[1:] + grid[:-1])

    def at(e, d):
        i = np.searchsorted(e, mid, side="right") - 1
        inside = (i >= 0) & (i < d.size)
        out = np.zeros_like(mid)
        out[inside] = d[i[inside]]
        return out

    return float(np.clip(np.sum(np.minimum(at(e1, d1), at(e2, d2)) * np.diff(grid)), 0.0, 1.0))


def bimodality_coefficient(samples) -> float:
    """Sarle's bimodality coefficient BC = (g² + 1) / (κ + 3 (n−1)²/((n−2)(n−3))).

    g is the bias-corrected sample skewness and κ the bias-corrected excess kurtosis
    (:func:`scipy.stats.skew`/:func:`scipy.stats.kurtosis` with ``bias=False``).
    BC > 5/9 ≈ 0.555 (the value for a uniform distribution) suggests bi- or multimodality;
    a normal distribution gives 1/3.

    Parameters
    ----------
    samples : array_like
        At least 4 values with non-zero spread.

    Returns
    -------
    float
        BC (dimensionless).
    """
    from scipy.stats import kurtosis, skew

    x = _samples(samples, "bimodality coefficient", min_n=4)
    if not _has_spread(x):
        raise InputError("bimodality coefficient: the samples have no spread")
    n = x.size
    g = float(skew(x, bias=False))
    k = float(kurtosis(x, fisher=True, bias=False))
    return (g * g + 1.0) / (k + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


@dataclass(frozen=True)
class GaussianMixtureFit:
    """1- vs 2-component 1-D Gaussian mixture comparison by BIC.

    Attributes
    ----------
    bic1, bic2 : float
        Bayesian information criterion, −2 ln L + p ln n (p = 2 and 5 parameters).
    delta_bic : float
        ``bic1 − bic2``; > 10 is strong evidence for two components (Kass & Raftery 1995).
    means, sds, weights : tuple of float
        Two-component parameters (unit of the samples), sorted by mean.
    ashman_d : float
        Ashman's D = √2 |μ₁ − μ₂| / √(σ₁² + σ₂²) of the two components (dimensionless);
        D > 2 is needed for a clean separation into two modes (Ashman et al. 1994).  A large
        ΔBIC with small D means "one narrow plus one broad component", not two modes.
    """

    bic1: float
    bic2: float
    delta_bic: float
    means: tuple[float, float]
    sds: tuple[float, float]
    weights: tuple[float, float]
    ashman_d: float


def gaussian_mixture_bic(
    samples, *, max_iter: int = 500, rtol: float = 1e-10, min_sd: float | None = None
) -> GaussianMixtureFit:
    """Fit 1- and 2-component Gaussian mixtures (maximum likelihood, EM) and compare BIC.

    The EM iteration starts deterministically from the lower and upper halves of the sorted
    samples.  Component standard deviations are floored at ``min_sd`` (default 1e-3 × the
    sample sd) to avoid the degenerate zero-width likelihood.

    Parameters
    ----------
    samples : array_like
        At least 5 values with non-zero spread.
    max_iter : int, optional
        Maximum EM iterations.
    rtol : float, optional
        Relative log-likelihood convergence tolerance.
    min_sd : float, optional
        Floor for component sd (unit of the samples).

    Returns
    -------
    GaussianMixtureFit
    """
    from scipy.special import logsumexp
    from scipy.stats import norm

    x = _samples(samples, "Gaussian mixture", min_n=5)
    if not _has_spread(x):
        raise InputError("Gaussian mixture: the samples have no spread")
    n = x.size
    s = float(x.std())
    floor = 1e-3 * s if min_sd is None else float(min_sd)
    ll1 = float(norm.logpdf(x, x.mean(), s).sum())
    bic1 = -2.0 * ll1 + 2 * math.log(n)

    xs = np.sort(x)
    half = n // 2
    mu = np.array([xs[:half].mean(), xs[half:].mean()])
    sd = np.maximum(np.array([xs[:half].std(), xs[half:].std()]), max(floor, 0.1 * s))
    w = np.array([0.5, 0.5])
    ll_old = -np.inf
    for _ in range(int(max_iter)):
        logp = np.log(w)[None, :] + norm.logpdf(x[:, None], mu[None, :], sd[None, :])
        tot = logsumexp(logp, axis=1)
        ll = float(tot.sum())
        resp = np.exp(logp - tot[:, None])
        nk = resp.sum(axis=0) + 1e-300
        w = nk / n
        mu = (resp * x[:, None]).sum(axis=0) / nk
        sd = np.sqrt((resp * (x[:, None] - mu[None, :]) ** 2).sum(axis=0) / nk)
        sd = np.maximum(sd, floor)
        w = np.clip(w, 1e-12, 1.0)
        if abs(ll - ll_old) <= rtol * abs(ll):
            break
        ll_old = ll
    logp = np.log(w)[None, :] + norm.logpdf(x[:, None], mu[None, :], sd[None, :])
    ll2 = float(logsumexp(logp, axis=1).sum())
    ll2 = max(ll2, ll1)  # a 2-component mixture contains the 1-component model
    bic2 = -2.0 * ll2 + 5 * math.log(n)
    order = np.argsort(mu)
    ashman = float(math.sqrt(2.0) * abs(mu[1] - mu[0]) / math.sqrt(sd[0] ** 2 + sd[1] ** 2))
    return GaussianMixtureFit(
        bic1=bic1,
        bic2=bic2,
        delta_bic=bic1 - bic2,
        means=tuple(float(v) for v in mu[order]),
        sds=tuple(float(v) for v in sd[order]),
        weights=tuple(float(v) for v in w[order]),
        ashman_d=ashman,
    )


@dataclass(frozen=True)
class BimodalityResult:
    """Tests of whether two populations (core vs surface angles) differ / pool bimodally.

    Attributes
    ----------
    n_a, n_b : int
        Sizes of the two populations.
    ks_statistic, ks_pvalue : float
        Two-sample Kolmogorov–Smirnov test (:func:`scipy.stats.ks_2samp`): do the two
        populations come from the same distribution?
    mw_statistic, mw_pvalue : float
        Two-sided Mann–Whitney U test (:func:`scipy.stats.mannwhitneyu`): is one
        population shifted relative to the other?
    bimodality_coefficient : float
        Sarle's BC of the pooled values (> 5/9 suggests bimodality); nan if undefined.
    mixture : GaussianMixtureFit or None
        1- vs 2-component Gaussian mixture BIC of the pooled values.
    note : str
        Explanation when a test is undefined (too few values, no spread).
    """

    n_a: int
    n_b: int
    ks_statistic: float
    ks_pvalue: float
    mw_statistic: float
    mw_pvalue: float
    bimodality_coefficient: float
    mixture: GaussianMixtureFit | None
    note: str

    @property
    def bimodal(self) -> bool:
        """True if the populations differ (KS p < 0.05) and the pooled values favour two
        well-separated Gaussian components (ΔBIC > 10 and Ashman's D > 2)."""
        return bool(
            self.ks_pvalue < 0.05
            and self.mixture is not None
            and self.mixture.delta_bic > 10.0
            and self.mixture.ashman_d > 2.0
        )

    def to_dict(self) -> dict:
        """JSON-serialisable representation (nan → None)."""

        def f(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

        mix = None
        if self.mixture is not None:
            mix = {
                "bic1": self.mixture.bic1,
                "bic2": self.mixture.bic2,
                "delta_bic": self.mixture.delta_bic,
                "means": list(self.mixture.means),
                "sds": list(self.mixture.sds),
                "weights": list(self.mixture.weights),
                "ashman_d": self.mixture.ashman_d,
            }
        return {
            "n_core": self.n_a,
            "n_surface": self.n_b,
            "ks_statistic": f(self.ks_statistic),
            "ks_pvalue": f(self.ks_pvalue),
            "mannwhitney_u": f(self.mw_statistic),
            "mannwhitney_pvalue": f(self.mw_pvalue),
            "bimodality_coefficient": f(self.bimodality_coefficient),
            "gaussian_mixture": mix,
            "bimodal": self.bimodal,
            "note": self.note,
        }


def bimodality_test(a, b) -> BimodalityResult:
    """Test for a two-population (bi-fold) distribution, e.g. core vs surface bond angles.

    Three complementary statistics are reported:

    1. two-sample Kolmogorov–Smirnov and Mann–Whitney U tests between ``a`` and ``b``
       (are the two populations different?);
    2. Sarle's bimodality coefficient of the pooled values (shape-based);
    3. the BIC difference of 1- vs 2-component Gaussian mixtures of the pooled values, with
       Ashman's D of the two fitted components.

    :attr:`BimodalityResult.bimodal` is True when KS p < 0.05, ΔBIC > 10 and D > 2.

    Parameters
    ----------
    a, b : array_like
        The two populations (same unit).

    Returns
    -------
    BimodalityResult
        Statistics that cannot be computed (empty population, no spread) are nan and the
        reason is given in ``note``.
    """
    from scipy.stats import ks_2samp, mannwhitneyu

    x = _samples(a, "bimodality: first population", min_n=0)
    y = _samples(b, "bimodality: second population", min_n=0)
    notes = []
    nan = float("nan")
    ks_s = ks_p = mw_s = mw_p = nan
    if x.size >= 1 and y.size >= 1:
        ks = ks_2samp(x, y)
        ks_s, ks_p = float(ks.statistic), float(ks.pvalue)
        if _has_spread(np.concatenate([x, y])):
            mw = mannwhitneyu(x, y, alternative="two-sided")
            mw_s, mw_p = float(mw.statistic), float(mw.pvalue)
    else:
        notes.append("one population is empty: KS and Mann-Whitney undefined")
    pooled = np.concatenate([x, y])
    bc = nan
    mix = None
    if pooled.size >= 5 and _has_spread(pooled):
        bc = bimodality_coefficient(pooled)
        mix = gaussian_mixture_bic(pooled)
    else:
        notes.append("pooled values have fewer than 5 points or no spread: BC and mixture BIC undefined")
    return BimodalityResult(
        n_a=int(x.size),
        n_b=int(y.size),
        ks_statistic=ks_s,
        ks_pvalue=ks_p,
        mw_statistic=mw_s,
        mw_pvalue=mw_p,
        bimodality_coefficient=bc,
        mixture=mix,
        note="; ".join(notes),
    )


@dataclass(frozen=True)
class PopulationSummary:
    """Descriptive statistics, histogram, KDE and modes of one population.

    Attributes
    ----------
    n : int
    mean, sd, median, minimum, maximum : float
        Unit of the samples (``sd`` with ddof=1; nan for n < 2).
    histogram : Histogram or None
        None if n = 0.
    kde : KDE or None
        None if the KDE is undefined (n < 2 or no spread).
    modes : numpy.ndarray
        KDE modes; for a zero-spread population, its single value.
    note : str
    """

    n: int
    mean: float
    sd: float
    median: float
    minimum: float
    maximum: float
    histogram: Histogram | None
    kde: KDE | None
    modes: np.ndarray
    note: str

    def to_dict(self, *, include_curves: bool = False) -> dict:
        """JSON-serialisable representation; ``include_curves`` adds histogram and KDE arrays."""

        def f(v):
            return None if isinstance(v, float) and math.isnan(v) else v

        out = {
            "n": self.n,
            "mean": f(self.mean),
            "sd": f(self.sd),
            "median": f(self.median),
            "min": f(self.minimum),
            "max": f(self.maximum),
            "modes": [float(m) for m in self.modes],
            "kde_bandwidth": None if self.kde is None else self.kde.bandwidth,
            "kde_rule": None if self.kde is None else self.kde.bw_rule,
            "note": self.note,
        }
        if include_curves:
            if self.histogram is not None:
                out["histogram"] = {
                    "edges": self.histogram.edges.tolist(),
                    "counts": self.histogram.counts.tolist(),
                    "bins_rule": self.histogram.bins_rule,
                }
            if self.kde is not None:
                out["kde"] = {"grid": self.kde.grid.tolist(), "density": self.kde.density.tolist()}
        return out


def describe(
    samples,
    *,
    bins: int | str | Sequence[float] = "auto",
    range: tuple[float, float] | None = None,
    bw_method: str | float = "scott",
    n_grid: int = 1024,
    min_prominence: float = 0.05,
) -> PopulationSummary:
    """Summary of one population: statistics, histogram, KDE and its modes.

    Degenerate populations do not raise: with no values everything is nan/None; with no
    spread (e.g. all angles of an ideal tetrahedral model) the KDE is None and the single
    value is reported as the mode.

    Parameters
    ----------
    samples : array_like
        Values (any unit).
    bins, range : optional
        Passed to :func:`histogram`.
    bw_method : {"scott", "silverman"} or float, optional
        Passed to :func:`kde`.
    n_grid : int, optional
        KDE grid size.
    min_prominence : float, optional
        Passed to :func:`modes`.

    Returns
    -------
    PopulationSummary
    """
    x = _samples(samples, min_n=0)
    nan = float("nan")
    if x.size == 0:
        return PopulationSummary(0, nan, nan, nan, nan, nan, None, None, np.empty(0), "no values")
    hist = histogram(x, bins=bins, range=range) if _has_spread(x) or range is not None else histogram(
        x, bins=1, range=(x[0] - 0.5, x[0] + 0.5)
    )
    sd = float(x.std(ddof=1)) if x.size > 1 else nan
    if _has_spread(x):
        est = kde(x, bw_method=bw_method, n_grid=n_grid)
        m = modes(est, min_prominence=min_prominence)
        note = ""
    else:
        est = None
        m = np.array([float(np.mean(x))])
        note = "no spread: KDE undefined, the mode is the common value"
    return PopulationSummary(
        n=int(x.size),
        mean=float(x.mean()),
        sd=sd,
        median=float(np.median(x)),
        minimum=float(x.min()),
        maximum=float(x.max()),
        histogram=hist,
        kde=est,
        modes=m,
        note=note,
    )
