"""Two-sample comparison (isomers such as MSC-311 vs MSC-322, or a temperature series).

Per fitted parameter: the shift of the replicate distributions with its significance from the
replicates and the systematic term, and the overlap coefficient of the two distributions
(:func:`xasmpi.analysis.distributions.overlap_coefficient`, the one overlap function); and the
difference of the two wavelet maps (where in (k, R) the samples differ).  Pure functions.

Significance: Δ = mean_B − mean_A, σ_Δ = √(sd_A² + sd_B² + σ_sys²) with σ_sys the systematic term
of the shift itself when both samples were refitted under the same variations (``sys_shift``:
:func:`paired_systematic`, the systematics stage's rule applied to the per-variation shift
(B − A)_v − (B − A)_best; an analysis choice that moves both samples alike cancels), else
σ_sys² = sys_A² + sys_B² (independent systematic terms; with ``shared_systematics`` only
|sys_A − sys_B| is left); z = Δ/σ_Δ, two-sided p = 2 Φ(−|z|); significant when p < α.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from xasmpi.analysis.distributions import overlap_coefficient
from xasmpi.errors import InputError


@dataclass(frozen=True)
class ParameterShift:
    """One parameter of two samples compared.

    Attributes
    ----------
    name : str
        Column name, e.g. ``"Cd-Cd.n"``.
    mean_a, mean_b, sd_a, sd_b : float
        Replicate means and standard deviations (units of the parameter).
    sys_a, sys_b : float
        Systematic terms (0 when absent).
    sys_shift : float
        Paired systematic term of the shift (NaN when not used).
    shift : float
        mean_b − mean_a.
    sigma : float
        Standard uncertainty of the shift.
    z, p : float
        shift/sigma and the two-sided p-value.
    significant : bool
        p < alpha.
    ovl : float
        Overlap coefficient of the two replicate distributions (sys not included).
    """

    name: str
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    sys_a: float
    sys_b: float
    sys_shift: float
    shift: float
    sigma: float
    z: float
    p: float
    significant: bool
    ovl: float

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def compare_parameter(a, b, *, name: str, sys_a: float = 0.0, sys_b: float = 0.0, alpha: float = 0.05,
                      shared_systematics: bool = False, sys_shift: float | None = None) -> ParameterShift:
    """Shift and significance of one parameter between samples A and B (module docstring).

    Parameters
    ----------
    a, b : array_like
        Replicate values of the parameter in A and B (finite ones used, ≥ 2 each).
    name : str
    sys_a, sys_b : float
        Systematic standard uncertainties (NaN counts as 0).
    alpha : float
        Significance level (two-sided).
    shared_systematics : bool
        The systematic terms come from the same analysis variations and are fully correlated.
    sys_shift : float, optional
        Systematic term of the shift itself (:func:`paired_systematic`); used instead of sys_a and
        sys_b when finite.
    """
    from scipy.special import ndtr

    if not 0 < alpha < 1:
        raise InputError(f"comparison: alpha must be in (0, 1), got {alpha}")
    x = np.asarray(a, float)
    y = np.asarray(b, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        raise InputError(f"comparison {name}: need at least 2 finite replicates per sample ({x.size}, {y.size})")
    sa = float(sys_a) if sys_a is not None and np.isfinite(sys_a) else 0.0
    sb = float(sys_b) if sys_b is not None and np.isfinite(sys_b) else 0.0
    sd_a, sd_b = float(np.std(x, ddof=1)), float(np.std(y, ddof=1))
    paired = sys_shift is not None and np.isfinite(sys_shift)
    if paired and shared_systematics:
        raise InputError(f"comparison {name}: give either sys_shift or shared_systematics, not both")
    sys2 = float(sys_shift) ** 2 if paired else (sa - sb) ** 2 if shared_systematics else sa * sa + sb * sb
    sigma = math.sqrt(sd_a ** 2 + sd_b ** 2 + sys2)
    shift = float(np.mean(y) - np.mean(x))
    if sigma > 0:
        z = shift / sigma
    else:
        z = 0.0 if shift == 0 else math.copysign(math.inf, shift)
    p = float(2.0 * ndtr(-abs(z)))
    spread = np.ptp(np.concatenate([x, y]))
    ovl = overlap_coefficient(x, y) if spread > 0 else 1.0
    return ParameterShift(name=name, mean_a=float(np.mean(x)), mean_b=float(np.mean(y)), sd_a=sd_a, sd_b=sd_b,
                          sys_a=sa, sys_b=sb, sys_shift=float(sys_shift) if paired else float("nan"), shift=shift, sigma=sigma, z=float(z), p=p, significant=p < alpha,
                          ovl=float(ovl))


def compare_samples(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *,
                    sys_a: Mapping[str, float] | None = None, sys_b: Mapping[str, float] | None = None,
                    alpha: float = 0.05, shared_systematics: bool = False,
                    sys_shift: Mapping[str, float] | None = None) -> tuple[ParameterShift, ...]:
    """:func:`compare_parameter` for every parameter the two samples share (order of ``a``);
    ``sys_shift``: paired systematic terms of the shifts by parameter (:func:`paired_systematic`)."""
    common = [n for n in a if n in b]
    if not common:
        raise InputError("comparison: the two samples share no fitted parameter")
    sys_a, sys_b, sys_shift = dict(sys_a or {}), dict(sys_b or {}), dict(sys_shift or {})
    return tuple(compare_parameter(a[n], b[n], name=n, sys_a=sys_a.get(n, 0.0), sys_b=sys_b.get(n, 0.0),
                                   alpha=alpha, shared_systematics=shared_systematics,
                                   sys_shift=sys_shift.get(n)) for n in common)


def paired_systematic(best_a, refits_a, best_b, refits_b, settings) -> np.ndarray:
    """Systematic term of the shift B − A of every parameter from refits of both samples under the
    same variations (same settings, same order): the systematics stage's rule
    (:func:`xasmpi.exafs.uncertainty.systematic_term`) applied to (B − A) of the best fits and of
    each variation's refits, so a choice that moves both samples alike does not count.

    Parameters
    ----------
    best_a, best_b : array_like
        ``(p,)`` best fits.
    refits_a, refits_b : array_like
        ``(v, p)`` refits (NaN: failed).
    settings : sequence of str
        ``(v,)`` setting each variation changes.

    Returns
    -------
    ndarray
        ``(p,)`` systematic term of each shift (NaN where no variation has both refits).
    """
    from xasmpi.exafs.uncertainty import systematic_term

    ba, bb = np.asarray(best_a, float), np.asarray(best_b, float)
    ra, rb = np.atleast_2d(np.asarray(refits_a, float)), np.atleast_2d(np.asarray(refits_b, float))
    if ba.shape != bb.shape or ra.shape != rb.shape or ra.shape != (len(settings), ba.size):
        raise InputError(f"paired systematics: best fits {ba.shape}/{bb.shape}, refits {ra.shape}/{rb.shape} and "
                         f"{len(settings)} settings do not match (the same variations for both samples)")
    return systematic_term(bb - ba, rb - ra, list(settings))[0]


@dataclass(frozen=True)
class WaveletDifference:
    """|W_B| − |W_A| on a common (R, k) grid.

    Attributes
    ----------
    k, r : ndarray
        Grids (Å⁻¹, Å).
    diff : ndarray
        ``(n_R, n_k)`` difference of the moduli (A and B each scaled to unit maximum when
        ``normalised``).
    peak_k, peak_r : float
        Where |diff| is largest.
    normalised : bool
    """

    k: np.ndarray = field(repr=False)
    r: np.ndarray = field(repr=False)
    diff: np.ndarray = field(repr=False)
    peak_k: float
    peak_r: float
    normalised: bool


def wavelet_difference(k, r, mod_a, mod_b, *, normalised: bool = False) -> WaveletDifference:
    """Difference of two wavelet moduli computed on the same grids (``(n_R, n_k)`` each)."""
    ma, mb = np.asarray(mod_a, float), np.asarray(mod_b, float)
    k, r = np.asarray(k, float), np.asarray(r, float)
    if ma.shape != mb.shape or ma.shape != (r.size, k.size):
        raise InputError(f"wavelet difference: maps {ma.shape} and {mb.shape} must both be (n_R, n_k) = "
                         f"({r.size}, {k.size}) (same settings for both samples)")
    if normalised:
        ma, mb = ma / ma.max(), mb / mb.max()
    d = mb - ma
    i, j = np.unravel_index(int(np.argmax(np.abs(d))), d.shape)
    return WaveletDifference(k=k, r=r, diff=d, peak_k=float(k[j]), peak_r=float(r[i]), normalised=normalised)


@dataclass(frozen=True)
class JointFit:
    """Several data sets fitted together, some parameters shared.

    Attributes
    ----------
    datasets : tuple of str
    names : tuple of str
        Free parameters: a shared one under its model name (``n_Cd-S``), the others as
        ``<name>@<dataset>``.
    params, stderr : ndarray
        Best values and standard errors (Jacobian, scaled by √(χ²/ν) with ν = Σ N_idp − p).
    shared : tuple of str
    ssr, rfactor, n_idp : dict
        Per data set: fit-space SSR, R-factor SSR/Σ y², independent points.
    """

    datasets: tuple
    names: tuple
    params: np.ndarray = field(repr=False)
    stderr: np.ndarray = field(repr=False)
    shared: tuple
    ssr: dict = field(hash=False)
    rfactor: dict = field(hash=False)
    n_idp: dict = field(hash=False)

    def value(self, name: str, dataset: str | None = None) -> tuple[float, float]:
        """(value, stderr) of a model parameter for a data set (shared ones need no data set)."""
        key = name if name in self.shared else f"{name}@{dataset}"
        i = self.names.index(key)
        return float(self.params[i]), float(self.stderr[i])

    def table(self) -> list[dict]:
        """One row per data set: every parameter's value and error, its SSR and R-factor."""
        rows = []
        for d in self.datasets:
            row = {"dataset": d, "rfactor": self.rfactor[d], "ssr": self.ssr[d]}
            for n in self.names:
                base, _, ds = n.partition("@")
                if not ds or ds == d:
                    row[base], row[f"{base}_err"] = self.value(base, d)
            rows.append(row)
        return rows


def joint_fit(models: Mapping[str, object], data: Mapping[str, np.ndarray], *, shared=(),
              starts: Mapping[str, np.ndarray] | None = None) -> JointFit:
    """Fit several data sets at once, parameters named in ``shared`` common to all.

    Parameters
    ----------
    models : mapping
        Data set -> :class:`~xasmpi.exafs.model.PathModel` (each in its own fit space).
    data : mapping
        Data set -> χ(k) on the model grid.
    shared : sequence of str
        Model parameter names (``n_Cd-S``, ``de0_CdS_bulk`` …) that every model has and that
        take one value for all data sets (e.g. N across a temperature series); the others are
        fitted per data set (e.g. σ²).
    starts : mapping, optional
        Data set -> start vector (default: each data set's own global fit, :func:`xasmpi.exafs.fit.fit`).

    Returns
    -------
    JointFit
        Bounded least squares (scipy ``least_squares``) on the concatenated fit-space residuals.
    """
    from scipy.optimize import least_squares

    from xasmpi.exafs.fit import DESettings, fit

    sets = list(models)
    if not sets or set(sets) != set(data):
        raise InputError(f"joint fit: models {sets} and data {list(data)} must name the same data sets")
    shared = tuple(shared)
    for s in shared:
        for d in sets:
            if s not in models[d].names:
                raise InputError(f"joint fit: shared parameter '{s}' is not free in the model of {d}")
    names, lo, hi, where = [], [], [], {}
    for s in shared:
        b = np.array([models[d].bounds[models[d].names.index(s)] for d in sets])
        names.append(s)
        lo.append(b[:, 0].max())
        hi.append(b[:, 1].min())
    for d in sets:
        m = models[d]
        where[d] = []
        for j, n in enumerate(m.names):
            if n in shared:
                where[d].append(shared.index(n))
            else:
                where[d].append(len(names))
                names.append(f"{n}@{d}")
                lo.append(m.bounds[j, 0])
                hi.append(m.bounds[j, 1])
    lo, hi = np.array(lo), np.array(hi)
    if np.any(lo >= hi):
        raise InputError("joint fit: the bounds of a shared parameter do not overlap between data sets")
    ys = {d: models[d].transform(models[d].check_data(data[d])) for d in sets}
    x0 = np.zeros(len(names))
    cnt = np.zeros(len(names))
    for d in sets:
        st = starts[d] if starts and d in starts else fit(models[d], data[d], settings=DESettings(seed=0)).params
        np.add.at(x0, where[d], st)
        np.add.at(cnt, where[d], 1.0)
    x0 = np.clip(x0 / cnt, lo + 1e-6 * (hi - lo), hi - 1e-6 * (hi - lo))

    def resid(x):
        return np.concatenate([ys[d] - models[d].transform(models[d].evaluate(x[where[d]][None])[0]) for d in sets])

    sol = least_squares(resid, x0, bounds=(lo, hi), method="trf", x_scale=hi - lo, max_nfev=2000)
    x = sol.x
    ssr, rf, nidp = {}, {}, {}
    for d in sets:
        r = ys[d] - models[d].transform(models[d].evaluate(x[where[d]][None])[0])
        ssr[d], rf[d], nidp[d] = float(r @ r), float(r @ r / (ys[d] @ ys[d])), float(models[d].space.n_idp)
    dof = sum(nidp.values()) - len(names)
    jtj = sol.jac.T @ sol.jac
    stderr = np.full(len(names), np.nan)
    if dof > 0 and np.linalg.matrix_rank(jtj) == len(names):
        stderr = np.sqrt(np.diag(np.linalg.inv(jtj)) * sum(ssr.values()) / dof)
    return JointFit(datasets=tuple(sets), names=tuple(names), params=x, stderr=stderr, shared=shared, ssr=ssr,
                    rfactor=rf, n_idp=nidp)
