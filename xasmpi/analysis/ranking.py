"""Ranking of candidate structures: Laplace evidence per data set, posterior model probabilities.

Pure functions over numpy arrays; the formulas, their assumptions and references are in
``docs/ranking.md``.  In short, for one candidate ``c`` and one data set (a measured spectrum's
EXAFS or XANES), with fit-space residual r (n points), per-point noise variance v_i, effective
number of independent points ν (EXAFS: N_idp = 2ΔkΔR/π; XANES: window width / broadening FWHM),
Jacobian J of r at the best fit θ̂ and uniform priors over the parameter bounds [lo, hi]:

    χ²     = (ν/n) Σ r_i² / (s² v_i)
    ln L̂   = −χ²/2 − (ν/n) Σ ½ ln(2π s² v_i)
    H      = (ν/n) Jᵀ diag(1/(s² v)) J                 (Gauss–Newton Hessian of −ln L)
    ln π   = −Σ_k ln(hi_k − lo_k)
    ln Z   ≈ ln L̂ + ln π + (p/2) ln 2π − ½ ln det H   (Laplace; MacKay 2003 ch. 28, Sivia 2006 ch. 4)

The noise scale s² ≥ 1 is shared by all candidates of one data set and technique:
s² = max(1, min_c χ²_c(s=1)/(ν − p_c)), i.e. the measured noise, inflated when even the best
candidate misfits beyond it (the misfit is then treated as noise for every candidate, which keeps
the ranking from being decided by model error with absurd confidence).  Posterior model
probabilities are P(c | D) ∝ P(c) Π_d Z_{c,d} over the terms of one data set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from xasmpi.errors import InputError


@dataclass(frozen=True)
class EvidenceInput:
    """What one candidate's fit to one data set gives the evidence.

    Attributes
    ----------
    residual : ndarray
        ``(n,)`` data − model at the best fit (fit space).
    jacobian : ndarray
        ``(n, p)`` derivative of the residual (``(n, 0)`` when nothing is fitted).
    var : ndarray
        ``(n,)`` noise variance of each point at the measured noise level.
    n_eff : float
        Effective number of independent points ν (≤ n).
    bounds : ndarray
        ``(p, 2)`` parameter bounds: the uniform prior.
    """

    residual: np.ndarray
    jacobian: np.ndarray
    var: np.ndarray
    n_eff: float
    bounds: np.ndarray

    def __post_init__(self) -> None:
        r = np.asarray(self.residual, float)
        j = np.asarray(self.jacobian, float).reshape(r.size, -1)
        b = np.asarray(self.bounds, float).reshape(-1, 2)
        v = np.broadcast_to(np.asarray(self.var, float), r.shape)
        if j.shape[1] != b.shape[0]:
            raise InputError(f"evidence: jacobian has {j.shape[1]} parameters, bounds {b.shape[0]}")
        if not np.all(v > 0) or not np.all(np.isfinite(r)):
            raise InputError("evidence: noise variances must be > 0 and residuals finite")
        if not 0 < self.n_eff <= r.size:
            raise InputError(f"evidence: n_eff {self.n_eff} must be in (0, {r.size}]")
        if np.any(b[:, 1] <= b[:, 0]):
            raise InputError("evidence: parameter bounds need low < high")
        for name, val in (("residual", r), ("jacobian", j), ("var", v), ("bounds", b)):
            object.__setattr__(self, name, val)

    @property
    def n_par(self) -> int:
        """Number of fitted parameters p."""
        return self.jacobian.shape[1]

    def chi2(self, scale2: float = 1.0) -> float:
        """χ² = (ν/n) Σ r²/(s² v)."""
        return float(self.n_eff / self.residual.size * np.sum(self.residual ** 2 / (scale2 * self.var)))


@dataclass(frozen=True)
class Evidence:
    """The terms of one Laplace evidence (natural logs).

    Attributes
    ----------
    chi2 : float
        χ² at the noise scale used.
    n_eff : float
    n_par : int
    noise_scale2 : float
        s² (≥ 1) applied to the measured noise variance.
    log_likelihood, log_prior, log_occam, log_evidence : float
        ln L̂, ln π(θ̂), (p/2) ln 2π − ½ ln det H, and their sum ln Z.
    """

    chi2: float
    n_eff: float
    n_par: int
    noise_scale2: float
    log_likelihood: float
    log_prior: float
    log_occam: float
    log_evidence: float

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def laplace_evidence(inp: EvidenceInput, *, noise_scale2: float = 1.0) -> Evidence:
    """Laplace-approximated evidence ln Z of one fit (module docstring; docs/ranking.md).

    Parameters
    ----------
    inp : EvidenceInput
    noise_scale2 : float
        s² multiplying the noise variances (≥ 1 by :func:`noise_scale2`).

    Returns
    -------
    Evidence

    Raises
    ------
    InputError
        Singular Hessian (a parameter the data do not constrain at all).
    """
    s2 = float(noise_scale2)
    n, p = inp.residual.size, inp.n_par
    f = inp.n_eff / n
    chi2 = inp.chi2(s2)
    log_l = -0.5 * chi2 - 0.5 * f * float(np.sum(np.log(2 * math.pi * s2 * inp.var)))
    if p:
        h = f * (inp.jacobian.T / (s2 * inp.var)) @ inp.jacobian
        sign, logdet = np.linalg.slogdet(h)
        if sign <= 0 or not np.isfinite(logdet):
            raise InputError("evidence: singular Hessian (a fitted parameter does not change the model)")
        log_occam = 0.5 * p * math.log(2 * math.pi) - 0.5 * logdet
        log_prior = -float(np.sum(np.log(inp.bounds[:, 1] - inp.bounds[:, 0])))
    else:
        log_occam = log_prior = 0.0
    return Evidence(chi2=chi2, n_eff=inp.n_eff, n_par=p, noise_scale2=s2, log_likelihood=log_l,
                    log_prior=log_prior, log_occam=log_occam, log_evidence=log_l + log_prior + log_occam)


def noise_scale2(inputs: Sequence[EvidenceInput]) -> float:
    """s² = max(1, min_c χ²_c / (ν − p_c)): one noise inflation for all candidates of a data set."""
    red = [i.chi2() / max(i.n_eff - i.n_par, 1.0) for i in inputs]
    return max(1.0, min(red)) if red else 1.0


def posterior(log_evidence: Mapping[str, float], prior: Mapping[str, float] | None = None) -> dict[str, float]:
    """P(c | D) = P(c) Z_c / Σ P(c') Z_c' (uniform P(c) unless ``prior`` is given; it is normalised)."""
    names = list(log_evidence)
    if not names:
        return {}
    lp = np.array([log_evidence[c] + (math.log(prior[c]) if prior else 0.0) for c in names], float)
    lp -= lp.max()
    w = np.exp(lp)
    return dict(zip(names, (w / w.sum()).tolist()))


def consistency(value: float, replicates, *, systematic: float = 0.0, total_sd: float | None = None,
                mean: float | None = None) -> tuple[float, float]:
    """How far a candidate's value lies in a fitted parameter's distribution.

    Parameters
    ----------
    value : float
        The candidate's own value (e.g. its N(Cd–S)).
    replicates : array_like
        Replicate values of the parameter (finite ones used).
    systematic : float
        Systematic standard uncertainty; the replicate distribution is convolved with N(0, sys²).
    total_sd, mean : float, optional
        Total uncertainty (replicate sd ⊕ systematic) and centre for the z-score (default: from
        the replicates and ``systematic``).

    Returns
    -------
    (z, p)
        z = (value − mean)/total_sd; p = 2 min(F, 1 − F), the two-sided probability of a value at
        least as far out under the (convolved) replicate distribution F.
    """
    from scipy.special import ndtr

    r = np.asarray(replicates, float)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return float("nan"), float("nan")
    sys = float(systematic) if systematic and np.isfinite(systematic) else 0.0
    mu = float(np.mean(r)) if mean is None else float(mean)
    sd = float(np.hypot(np.std(r, ddof=1), sys)) if total_sd is None else float(total_sd)
    z = (value - mu) / sd if sd > 0 else (0.0 if value == mu else math.copysign(math.inf, value - mu))
    if sys > 0:
        cdf = float(np.mean(ndtr((value - r) / sys)))
    else:
        cdf = float((np.sum(r < value) + 0.5 * np.sum(r == value)) / r.size)
    return float(z), float(min(1.0, 2.0 * min(cdf, 1.0 - cdf)))


def mass_log_likelihood(mass: float, measured: float, tol: float) -> float:
    """ln N(mass; measured, tol²): a candidate's formula mass against the mass-spectrometry mass (Da)."""
    if not tol > 0:
        raise InputError(f"mass tolerance must be > 0 Da, got {tol}")
    return float(-0.5 * ((mass - measured) / tol) ** 2 - math.log(tol * math.sqrt(2 * math.pi)))


def spectrum_noise(y) -> float:
    """Noise σ of a smooth spectrum from its second differences: 1.4826 · MAD(Δ²y) / √6."""
    d2 = np.diff(np.asarray(y, float), 2)
    if d2.size < 3:
        raise InputError("spectrum noise: need at least 5 points")
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6.0))


@dataclass(frozen=True)
class DatasetRanking:
    """Ranking of candidates on one data set.

    Attributes
    ----------
    dataset : str
    candidates : tuple of str
        Best first.
    terms : dict
        candidate -> term name -> :class:`Evidence` (e.g. ``"exafs"``, ``"xanes"``).
    extra : dict
        candidate -> term name -> log-likelihood added as is (e.g. ``"mass"``).
    log_evidence : dict
        candidate -> Σ of all terms.
    posterior : dict
        candidate -> posterior probability.
    winner : str
    margin : float
        ln Bayes factor of the winner over the runner-up (inf with one candidate).
    """

    dataset: str
    candidates: tuple
    terms: dict = field(hash=False)
    extra: dict = field(hash=False)
    log_evidence: dict = field(hash=False)
    posterior: dict = field(hash=False)
    winner: str
    margin: float


def rank_dataset(dataset: str, inputs: Mapping[str, Mapping[str, EvidenceInput]], *,
                 extra: Mapping[str, Mapping[str, float]] | None = None,
                 prior: Mapping[str, float] | None = None) -> DatasetRanking:
    """Evidence of every candidate on one data set, the noise scale shared per term, posteriors.

    Parameters
    ----------
    dataset : str
    inputs : mapping
        candidate -> term name -> :class:`EvidenceInput`.  Every candidate must have the same
        terms (a candidate without a term cannot be compared on it).
    extra : mapping, optional
        candidate -> name -> log-likelihood term added as is.
    prior : mapping, optional
        Prior model probabilities (default uniform).
    """
    cands = list(inputs)
    if not cands:
        raise InputError(f"ranking {dataset}: no candidates")
    names = set(inputs[cands[0]])
    for c in cands:
        if set(inputs[c]) != names:
            raise InputError(f"ranking {dataset}: candidate {c} has terms {sorted(inputs[c])}, "
                             f"{cands[0]} has {sorted(names)}")
    scales = {t: noise_scale2([inputs[c][t] for c in cands]) for t in sorted(names)}
    terms = {c: {t: laplace_evidence(inputs[c][t], noise_scale2=scales[t]) for t in sorted(names)} for c in cands}
    extra = {c: dict((extra or {}).get(c, {})) for c in cands}
    logz = {c: sum(e.log_evidence for e in terms[c].values()) + sum(extra[c].values()) for c in cands}
    post = posterior(logz, prior)
    order = sorted(cands, key=lambda c: -logz[c])
    margin = logz[order[0]] - logz[order[1]] if len(order) > 1 else math.inf
    return DatasetRanking(dataset=dataset, candidates=tuple(order), terms=terms, extra=extra, log_evidence=logz,
                          posterior=post, winner=order[0], margin=float(margin))
