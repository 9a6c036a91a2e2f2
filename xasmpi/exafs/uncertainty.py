"""Honest uncertainties of fitted parameters: statistical, systematic, total, and flags.

Pure functions over arrays (no MPI, no HDF5); the systematics stage, the results reader,
Table 1, the summary and the analysis stage all take their numbers from here, so every
output applies the same rules.

Terms, per fitted parameter
---------------------------
best, stderr
    Best fit and its standard error from the Jacobian, scaled by √(reduced χ²) with the
    number of independent points (:func:`xasmpi.exafs.fit.report`).
mean, sd
    Mean and standard deviation (ddof 1) over the successful replicate fits; the replicate
    mode is named with them.  Only the bootstrap modes (``noise``, ``residual``) make ``sd`` a
    statistical uncertainty; ``restart`` measures the optimiser's stability.
sys
    Systematic term from the refits of the systematics stage: for every *setting* varied (one
    reference's E0, one window edge, kmin, kmax, the k weight, the alternative scans of one
    reference) the largest |refit − best fit| over its variations (the ± pair counts once), and
    the quadrature sum over the settings::

        sys = sqrt( Σ_settings max_variations (p_variation − p_best)² )

    Settings are treated as independent; a refit that failed (NaN) is left out and counted.
total
    ``sqrt(stat² + sys²)`` with ``stat`` = the replicate sd of a bootstrap mode, else the
    Jacobian standard error (``restart`` sd is no uncertainty).
flags
    ``"undetermined"``: the replicate sd is at least 0.8 × (bound width)/√12, i.e. close to the
    sd of a value drawn uniformly between the bounds (the data do not pin it down);
    ``"at-bound"``: the best fit lies within 0.1 % of the bound width of a bound.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: replicate sd / (bound width / √12) at or above which a parameter is flagged "undetermined"
UNDETERMINED_FRACTION = 0.8
#: distance to a bound, as a fraction of the bound width, below which the best fit is "at-bound"
AT_BOUND_FRACTION = 1e-3
#: replicate modes whose spread is a statistical uncertainty
BOOTSTRAP_MODES = ("noise", "residual")
#: how the systematic term is combined (stored with the results)
SYS_RULE = ("sqrt(sum over varied settings of max over that setting's refits of "
            "(refit - best fit)^2); settings independent; failed refits left out")


@dataclass(frozen=True)
class ParamUncertainty:
    """Every uncertainty term of one fitted parameter (units of the parameter).

    Attributes
    ----------
    name : str
        Results-file column name, e.g. ``"Cd-S.n"``, ``"CdS_bulk.de0"``.
    best, stderr : float
        Best fit and its Jacobian standard error (NaN if not estimated).
    mean, sd : float
        Replicate mean and sd (NaN without replicates).
    mode : str
        Replicate mode (``noise``, ``residual``, ``restart`` or ``""``).
    sys : float
        Systematic term (NaN when no systematic refits exist).
    stat : float
        The statistical term used in ``total`` (bootstrap sd, else stderr).
    total : float
        ``sqrt(stat² + sys²)`` (sys taken as 0 when absent).
    lo, hi : float
        Bounds of the parameter in the fit.
    flags : tuple of str
        ``"undetermined"``, ``"at-bound"``.
    n_replicates, n_variations : int
        Replicates and systematic refits that entered ``sd`` and ``sys``.
    """

    name: str
    best: float
    stderr: float
    mean: float
    sd: float
    mode: str
    sys: float
    stat: float
    total: float
    lo: float
    hi: float
    flags: tuple
    n_replicates: int = 0
    n_variations: int = 0


def systematic_term(best: np.ndarray, refits: np.ndarray, settings: Sequence[str]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Systematic term of each parameter from refits under varied settings.

    Parameters
    ----------
    best : ndarray
        ``(p,)`` best-fit values.
    refits : ndarray
        ``(v, p)`` best fits under each variation (NaN: failed or parameter absent).
    settings : sequence of str
        ``(v,)`` name of the setting each variation changes (the ± variations of one
        setting share it).

    Returns
    -------
    sys : ndarray
        ``(p,)`` ``sqrt(Σ_settings max |refit − best|²)`` (NaN where no refit is finite).
    shift : ndarray
        ``(v, p)`` refit − best.
    n_used : ndarray
        ``(p,)`` finite refits per parameter.
    """
    best = np.asarray(best, dtype=float)
    refits = np.atleast_2d(np.asarray(refits, dtype=float)).reshape(-1, best.size)
    settings = list(settings)
    if len(settings) != refits.shape[0]:
        raise ValueError(f"systematic_term: {len(settings)} setting names for {refits.shape[0]} refits")
    shift = refits - best[None, :]
    finite = np.isfinite(shift)
    total = np.zeros(best.size)
    for s in dict.fromkeys(settings):
        rows = np.array([x == s for x in settings])
        sq = np.where(finite[rows], shift[rows] ** 2, -np.inf)
        m = sq.max(axis=0)
        total += np.where(np.isfinite(m), m, 0.0)
    n_used = finite.sum(axis=0)
    return np.where(n_used > 0, np.sqrt(total), np.nan), shift, n_used


def mean_sd(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof = 1) of replicate rows, per column.

    Parameters
    ----------
    values : numpy.ndarray, shape (n, n_par)
        Successful replicate rows (unit of each column).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Mean and sd, shape (n_par,); NaN where there are too few rows (mean: 0, sd: < 2).
    """
    v = np.asarray(values, dtype=float)
    nan = np.full(v.shape[1], np.nan)
    mean = v.mean(0) if v.shape[0] else nan
    sd = v.std(0, ddof=1) if v.shape[0] > 1 else nan
    return mean, sd


def flags(best: float, sd: float, lo: float, hi: float) -> tuple:
    """Flags of one parameter (see the module docstring); NaN inputs raise no flag."""
    out = []
    width = hi - lo
    if np.isfinite(width) and width > 0:
        if np.isfinite(sd) and sd >= UNDETERMINED_FRACTION * width / np.sqrt(12.0):
            out.append("undetermined")
        if np.isfinite(best) and min(best - lo, hi - best) <= AT_BOUND_FRACTION * width:
            out.append("at-bound")
    return tuple(out)


def combine(names: Sequence[str], best: np.ndarray, stderr: np.ndarray, bounds: np.ndarray, *,
            replicates: np.ndarray | None = None, mode: str = "", sys: np.ndarray | None = None,
            n_variations: np.ndarray | None = None) -> list[ParamUncertainty]:
    """All uncertainty terms of the fitted parameters.

    Parameters
    ----------
    names : sequence of str
        Column names.
    best, stderr : ndarray
        ``(p,)`` best fit and Jacobian standard errors.
    bounds : ndarray
        ``(p, 2)`` bounds of the free parameters.
    replicates : ndarray, optional
        ``(n, p)`` successful replicate fits.
    mode : str
        Their mode.
    sys : ndarray, optional
        ``(p,)`` systematic terms (:func:`systematic_term`).
    n_variations : ndarray, optional
        ``(p,)`` refits behind ``sys``.

    Returns
    -------
    list of ParamUncertainty
    """
    p = len(names)
    best = np.asarray(best, dtype=float).reshape(p)
    stderr = np.asarray(stderr, dtype=float).reshape(p)
    bounds = np.asarray(bounds, dtype=float).reshape(p, 2)
    rep = np.zeros((0, p)) if replicates is None else np.asarray(replicates, dtype=float).reshape(-1, p)
    sysv = np.full(p, np.nan) if sys is None else np.asarray(sys, dtype=float).reshape(p)
    nvar = np.zeros(p, dtype=int) if n_variations is None else np.asarray(n_variations).reshape(p)
    out = []
    for j, nm in enumerate(names):
        col = rep[:, j][np.isfinite(rep[:, j])]
        m_, s_ = mean_sd(col[:, None])
        mean, sd = float(m_[0]), float(s_[0])
        stat = sd if mode in BOOTSTRAP_MODES and np.isfinite(sd) else float(stderr[j])
        s = float(sysv[j])
        total = float(np.hypot(stat if np.isfinite(stat) else 0.0, s if np.isfinite(s) else 0.0))
        if not np.isfinite(stat) and not np.isfinite(s):
            total = np.nan
        lo, hi = float(bounds[j, 0]), float(bounds[j, 1])
        out.append(ParamUncertainty(name=str(nm), best=float(best[j]), stderr=float(stderr[j]), mean=mean, sd=sd,
                                    mode=str(mode), sys=s, stat=float(stat), total=total, lo=lo, hi=hi,
                                    flags=flags(float(best[j]), sd, lo, hi), n_replicates=int(col.size),
                                    n_variations=int(nvar[j])))
    return out
