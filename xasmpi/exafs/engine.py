"""Batched replicate engine: many replicate fits at once, replicates × population in array ops.

API
---
``fit_replicates(model, data, seeds, *, mode, settings, base) -> ReplicateBatch``
    Fits one replicate per seed of one (model, data) pair.  Everything about the problem is in
    the :class:`~xasmpi.exafs.model.PathModel` (paths, parameter spec, fit space and windows),
    so **variants** (other k range, k weight, windows, ΔE0 mode, references) are simply other
    models: call ``fit_replicates(model_v, data_v, seeds_v, mode="restart", base=best)`` per
    variant, where ``best`` may be the nominal best fit of another model with the same free
    parameter names (it is only a starting point: the warm start of noise/residual
    populations and the ΔE0, R of the first stage below).  Per call the engine builds its σ²
    tables (one batch of ~ (σ² range / ``grid_step``) exact basis evaluations, ~0.1 s) and
    nothing else is cached, so calls are independent and may run on any rank.  Pass ``base``:
    when omitted it is computed by :func:`xasmpi.exafs.fit.fit` (seconds with ΔE0/R free).
:class:`EngineSettings`, :class:`ReplicateBatch` (frozen dataclasses).

Per generation, one set of array operations advances the differential evolution of every
active replicate.  Techniques:

* **Variable projection**: the amplitudes n are solved exactly per candidate
  (:func:`xasmpi.exafs.fit.bounded_lsq`), so the evolution searches only σ² (and R, ΔE0).
* **Tabulated filtered bases** (σ² searched for every path): a path's filtered unit basis
  ``b_j(σ²) = L χ_j(n=1, σ²)`` depends on its own σ² only (at given ΔE0, R).  The engine
  tabulates, on a σ² grid of step ``grid_step``, the Gram entries ``b_i·b_j`` (1-D for i = j,
  2-D for i ≠ j) and, per replicate, ``b_j·y``; candidates interpolate them with 6-point
  (quintic) Lagrange weights.  No χ(k) array is touched inside the evolution.  Because the SSR
  is a small difference of the Gram terms, table errors enter the SSR amplified by
  ~1/R-factor; hence quintic interpolation (checked to ~1e-10 relative).
* **ΔE0 and/or R searched too: two stages.**  (1) The evolution above searches σ² with ΔE0
  and R held at the best fit of the measured data (``base``), on the same tables.  (2) An exact
  batched Levenberg-Marquardt polish (:func:`_polish_exact`) of *all* searched parameters
  (σ², ΔE0, R) from there, on the model itself (:meth:`PathModel.unit_basis`, in the fit
  space compressed to the operator's numerical rank), with n re-solved exactly at every trial
  and a forward-difference Jacobian costing one model call per group of parameters that touch
  disjoint paths.  The kernel is a black box: nothing about the path equation is assumed
  except that each path's basis depends on its own σ², R and ΔE0.  Measured
  (``benchmarks/bench_fit.py``): ~70× faster than evolving ΔE0/R on exact bases, results equal
  to the exact path (tests: SSR within 1e-6, N within 1e-4).  Limitation: ΔE0 and R are
  searched locally around the best fit, not globally; the audit against a long global
  reference checks that this finds the same optimum.  (Tables in ΔE0 and R were measured
  and rejected: the path kernel is only piecewise smooth in ΔE0 — F(k), δ(k) are linearly
  interpolated at k' — so interpolants stall at ~1e-3 relative, and a 3-D table gather costs
  ~50 µs per candidate in numpy.)
* Each replicate's result is re-evaluated exactly (float64 bases, exact bounded least
  squares) at its final point.
* **Per-replicate stopping**: a replicate stops when the spread of its population's SSR is
  ``<= atol + tol·mean`` (scipy's criterion) after ``min_generations``; stopped replicates are
  removed from the working arrays.
* **Warm start** (``noise``/``residual``): a fraction of each initial population is drawn
  around the best fit of the measured data (Gaussian, 5 % of each bound range), the rest
  uniformly; ``restart`` replicates start cold (uniform), as in the paper.

Reproducibility: each replicate's random numbers come only from its own SeedSequence and all
per-candidate arithmetic is element-wise, so a replicate's result depends only on (data, seed).
Floating point is not guaranteed to be bit-identical across different batch compositions
(numpy may vectorise transcendental functions differently for different array lengths), so the
campaign driver must use a fixed global chunking of replicates; within a chunk results are
deterministic.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from xasmpi.errors import ConfigError
from xasmpi.exafs.fit import DESettings, FitResult, Problem, bounded_lsq, fit
from xasmpi.exafs.model import PathModel
from xasmpi.exafs.replicates import MODES, STREAM_DE, child_rng, replicate_data

#: status codes of a replicate fit
CONVERGED, MAXITER = 0, 1


@dataclass(frozen=True)
class EngineSettings:
    """Settings of the batched engine.

    Parameters
    ----------
    popsize : int
        Population size per replicate (absolute, not per parameter).
    maxiter : int
        Maximum generations per replicate.
    min_generations : int
        Generations before the stopping test applies.
    tol, atol : float
        Stop when ``std(SSR) <= atol + tol·mean(SSR)`` over the replicate's population.
    mutation : (float, float)
        Dithering range of the differential weight F (one F per replicate and generation).
    recombination : float
        Crossover probability CR.
    tabulate : bool
        Use tabulated filtered bases (only when σ² alone is searched; else exact bases).
    grid_step : float
        σ² step of the tables, Å².
    interp_order : int
        Number of Lagrange nodes (even; 6 = quintic).  The SSR is a small difference of large
        Gram terms (R-factor ~1e-3), so the tables must be accurate to ~1e-9 relative for the
        interpolated optimum to be within 1e-6 of the exact one: cubic (4) at 1e-4 Å² is not.
    warm_fraction : float
        Fraction of the initial population drawn around the best fit for noise/residual.
    stage1_tol : float
        ``tol`` of the evolution on the tables when the exact polish follows (``polish_iter > 0``):
        its result is only the polish's start, so it need not be converged as tightly.
    polish_iter : int
        Exact Levenberg-Marquardt iterations that finish each replicate searched on the tables
        (0: none; then ΔE0/R are not searched at all by the tables path).
    """

    popsize: int = 20
    maxiter: int = 400
    min_generations: int = 15
    tol: float = 1e-10
    atol: float = 0.0
    mutation: tuple = (0.5, 1.0)
    recombination: float = 0.7
    tabulate: bool = True
    grid_step: float = 1e-4
    interp_order: int = 6
    warm_fraction: float = 0.5
    polish_iter: int = 15
    stage1_tol: float = 1e-7

    def __post_init__(self) -> None:
        if self.popsize < 5:
            raise ConfigError(f"engine popsize={self.popsize}: must be >= 5")
        if self.maxiter < 1 or self.min_generations < 0:
            raise ConfigError(f"engine maxiter={self.maxiter}, min_generations={self.min_generations}: invalid")
        if self.tol < 0 or self.atol < 0:
            raise ConfigError(f"engine tol={self.tol}, atol={self.atol}: must be >= 0")
        if not 0 <= self.recombination <= 1:
            raise ConfigError(f"engine recombination={self.recombination}: must be in [0, 1]")
        if not 0 < self.grid_step < 0.01:
            raise ConfigError(f"engine grid_step={self.grid_step}: must be in (0, 0.01) Å²")
        if self.interp_order not in (4, 6, 8):
            raise ConfigError(f"engine interp_order={self.interp_order}: must be 4, 6 or 8")
        if not 0 <= self.stage1_tol < 1:
            raise ConfigError(f"engine stage1_tol={self.stage1_tol}: must be in [0, 1)")
        if self.polish_iter < 0:
            raise ConfigError(f"engine polish_iter={self.polish_iter}: must be >= 0")
        if not 0 <= self.warm_fraction <= 1:
            raise ConfigError(f"engine warm_fraction={self.warm_fraction}: must be in [0, 1]")


@dataclass(frozen=True)
class ReplicateBatch:
    """Results of a batch of replicate fits.

    Attributes
    ----------
    names : tuple of str
        Free-parameter names.
    params : ndarray
        ``(n, p)`` best parameters per replicate.
    ssr : ndarray
        ``(n,)`` fit-space SSR (exact, float64).
    ssr_k2 : ndarray
        ``(n,)`` the paper's SSR.
    status : ndarray
        ``(n,)`` int8: 0 converged, 1 stopped at ``maxiter``.
    n_generations : ndarray
        ``(n,)`` generations run.
    mode : str
    """

    names: tuple
    params: np.ndarray
    ssr: np.ndarray
    ssr_k2: np.ndarray
    status: np.ndarray
    n_generations: np.ndarray
    mode: str


def _lagrange(u: np.ndarray, ng: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Node indices ``(…, order)`` and Lagrange weights for fractional grid positions ``u``
    (``order`` nodes centred on the interval holding ``u``; error ∝ h^order)."""
    half = order // 2
    i = np.clip(np.floor(u).astype(np.intp), half - 1, ng - half - 1)
    t = (u - i)[..., None]
    offs = np.arange(-(half - 1), half + 1, dtype=float)
    w = np.ones(t.shape[:-1] + (order,))
    for b, ob in enumerate(offs):
        den = offs - ob
        den[b] = 1.0
        fac = (t - ob) / den
        fac[..., b] = 1.0
        w *= fac
    return i[..., None] + offs.astype(np.intp), w



def sigma2_split(prob: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``prob.nl`` of the searched σ² (``sigma2_*``) and of the other searched
    parameters (ΔE0, R)."""
    names = [prob.model.names[i] for i in prob.nl]
    sig = np.array([q for q, nm in enumerate(names) if nm.startswith("sigma2_")], dtype=int)
    other = np.array([q for q, nm in enumerate(names) if not nm.startswith("sigma2_")], dtype=int)
    return sig, other


def _paths_of(model: PathModel, nl: np.ndarray) -> list[np.ndarray]:
    """Paths whose σ², ΔE0 or R each searched parameter sets, found by probing
    :meth:`PathModel.full` (no knowledge of parameter naming)."""
    b = model.bounds
    mid = 0.5 * (b[:, 0] + b[:, 1])
    f0 = model.full(mid[None])
    out = []
    for i in nl:
        th = mid.copy()
        th[i] = b[i, 0] + 0.3 * (b[i, 1] - b[i, 0])
        f1 = model.full(th[None])
        hit = np.zeros(len(model.paths), dtype=bool)
        for key in ("sigma2", "de0", "r"):
            hit |= f1[key][0] != f0[key][0]
        out.append(np.flatnonzero(hit))
    return out


def _colours(paths_of: list[np.ndarray]) -> list[list[int]]:
    """Greedy grouping of parameters that touch disjoint paths: one model call perturbs a whole
    group, so a forward-difference Jacobian costs one call per group, not per parameter."""
    groups: list[tuple[list[int], set]] = []
    for q, ps in enumerate(paths_of):
        for members, used in groups:
            if not used & set(ps.tolist()):
                members.append(q)
                used |= set(ps.tolist())
                break
        else:
            groups.append(([q], set(ps.tolist())))
    return [m for m, _ in groups]


#: per model object: (U, compressed operator, paths of each searched parameter, groups)
_COMPRESSION: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _Exact:
    """Exact (model-evaluated) unit bases in a compressed fit space, for the polish.

    The fit space is compressed to the ``K`` leading left singular vectors ``U`` of the
    operator ``L`` (singular values above 1e-12 of the largest, so the SSR is unchanged to
    ~1e-24 relative): ``b_j = Uᵀ L χ_j`` is ``K`` long instead of ``nout``.
    """

    def __init__(self, prob: Problem):
        self.prob = prob
        parts = _COMPRESSION.get(prob.model)
        if parts is None:      # depends on the model only: computed once per model object
            model = prob.model
            u, sv, _ = np.linalg.svd(model.operator, full_matrices=False)
            k = int(np.sum(sv > 1e-12 * sv[0]))
            uk = u[:, :k]
            paths_of = _paths_of(model, prob.nl)
            parts = (uk, np.ascontiguousarray((uk.T @ model.operator).T), paths_of, _colours(paths_of))
            _COMPRESSION[model] = parts   # holds no reference to the model (weak key stays weak)
        self.U, self.lc, self.paths_of, self.colours = parts               # lc: (nk, K)

    def basis(self, x: np.ndarray) -> np.ndarray:
        """``(M, Pf, K)`` compressed filtered unit bases of the free-amplitude paths at ``x`` (``(M, d)``)."""
        model = self.prob.model
        chi = model.unit_basis(self.prob.theta_from_nl(x))[:, self.prob.free_amp, : model.nk]
        return chi @ self.lc


def _polish_exact(ex: _Exact, yc: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  iters: int) -> np.ndarray:
    """Exact Levenberg-Marquardt polish of every replicate at once, on the model itself.

    Minimises ``‖y − B(x) n‖²`` over the searched parameters ``x`` (``(R, d)``, within
    ``[lo, hi]``) with ``n`` solved exactly (:func:`bounded_lsq`) at every trial point: the step
    solves the joint normal equations in (free n, x) (the variable-projection step); the
    Jacobian in x is a forward difference of the exact bases (one model call per group of
    :func:`_colours`).  A step is kept only if the exact SSR decreases; a replicate stops when
    its SSR no longer decreases by more than 1e-9 relative.  Per-replicate arithmetic only,
    so results do not depend on the batch.
    """
    prob = ex.prob
    la, ha = prob.lo, prob.hi
    span = hi - lo
    nrep, d = x.shape
    amp_of = {int(j): a for a, j in enumerate(prob.free_amp)}

    def solve(b, y):
        n, q = bounded_lsq(np.einsum("mik,mjk->mij", b, b), np.einsum("mik,mk->mi", b, y), la, ha)
        return n, np.einsum("mk,mk->m", y, y) + q

    x = x.copy()
    b = ex.basis(x)
    n, ssr = solve(b, yc)
    mu = np.full(nrep, 1e-4)
    active = np.arange(nrep)
    hstep = 1e-6
    for _ in range(iters):
        if not active.size:
            break
        xa, ba, na, ya = x[active], b[active], n[active], yc[active]
        z = (xa - lo) / span
        jac = np.zeros((active.size, ba.shape[2], d))                     # d(model)/dz
        for group in ex.colours:
            sgn = np.where(z[:, group] + hstep > 1.0, -1.0, 1.0)          # stay inside the box
            xp = xa.copy()
            xp[:, group] += sgn * hstep * span[group]
            bp = ex.basis(xp)
            for g_i, q in enumerate(group):
                for j in ex.paths_of[q]:
                    a = amp_of.get(int(j))
                    if a is not None:
                        jac[:, :, q] += (na[:, a, None] * (bp[:, a] - ba[:, a])) / (sgn[:, g_i, None] * hstep)
        res = ya - np.einsum("mj,mjk->mk", na, ba)
        free_n = (na > la + 1e-12 * (ha - la)) & (na < ha - 1e-12 * (ha - la))
        jn = ba.transpose(0, 2, 1) * free_n[:, None, :]                    # (A, K, Pf)
        jf = np.concatenate([jn, jac], axis=2)
        h = np.einsum("mki,mkj->mij", jf, jf)
        g = np.einsum("mki,mk->mi", jf, res)
        dg = np.einsum("mii->mi", h)
        npf = jn.shape[2]
        reg = mu[active, None] * np.maximum(dg, 1e-30 * (dg.max(axis=1, keepdims=True) + 1e-300))
        reg[:, :npf] = np.where(free_n, reg[:, :npf], 1.0)                # fixed n: no move
        step = np.linalg.solve(h + reg[:, :, None] * np.eye(h.shape[1]), g[..., None])[..., 0][:, npf:]
        zt = np.clip(z + step, 0.0, 1.0)
        xt = lo + zt * span
        bt = ex.basis(xt)
        nt, st = solve(bt, ya)
        better = st < ssr[active]
        gain = np.where(better, ssr[active] - st, 0.0)
        upd = active[better]
        x[upd], b[upd], n[upd], ssr[upd] = xt[better], bt[better], nt[better], st[better]
        mu[active] = np.where(better, mu[active] * 0.3, mu[active] * 10.0)
        done = (better & (gain <= 1e-9 * ssr[active])) | (~better & (mu[active] > 1e3))
        active = active[~done]
    return x


class _Objective:
    """Gram matrices and projections of candidate non-linear parameters, per replicate."""

    def __init__(self, prob: Problem, yf: np.ndarray, settings: EngineSettings,
                 fixed: np.ndarray | None = None):
        """``fixed``: values of the searched non-σ² parameters (ΔE0, R) at which the σ² tables of
        the first stage are built (``(n_other,)``, parameter units; see :func:`fit_replicates`)."""
        self.prob, self.yf = prob, yf                       # yf: (R, nout) filtered data
        self.yy = np.einsum("ro,ro->r", yf, yf)
        model = prob.model
        sig, other = sigma2_split(prob)
        fixed_amp = np.any(prob.amp < 0)
        self.tab = (settings.tabulate and not fixed_amp and sig.size == len(model.paths)
                    and (other.size == 0 or fixed is not None))
        if self.tab:
            b = model.bounds[prob.nl[sig]]
            h = settings.grid_step
            self.order = settings.interp_order
            pad = self.order // 2
            self.s0 = b[:, 0] - pad * h
            self.h = h
            ng = int(np.ceil((b[:, 1] - b[:, 0]).max() / h)) + 2 * pad + 2
            self.ng = ng
            grid = self.s0[None, :] + h * np.arange(ng)[:, None]           # (ng, P)
            theta = np.ones((ng, len(model.names)))
            theta[:, prob.nl[sig]] = grid
            if other.size:
                theta[:, prob.nl[other]] = fixed
            basis = model.transform(model.unit_basis(theta))                # (ng, P, nout)
            self.basis = np.ascontiguousarray(basis.transpose(1, 0, 2))     # (P, ng, nout)
            npath = len(model.paths)
            self.pairs = [(i, j) for i in range(npath) for j in range(i + 1, npath)]
            self.diag = np.einsum("pgo,pgo->pg", self.basis, self.basis)    # (P, ng)
            self.cross = {(i, j): self.basis[i] @ self.basis[j].T for i, j in self.pairs}
            # per-replicate projection tables, one matrix-vector product per replicate
            self.ctab = np.stack([self.basis.reshape(-1, yf.shape[1]) @ y for y in yf]).reshape(
                len(yf), npath, ng)

    def gram(self, rep: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """G ``(M, P, P)``, c ``(M, P)`` and yᵀy ``(M,)`` for candidates ``x`` (``(M, d)``) of replicates ``rep``."""
        prob = self.prob
        if not self.tab:
            theta = prob.theta_from_nl(x)
            basis = prob.model.transform(prob.model.unit_basis(theta))
            f = prob.model.full(theta)
            y = self.yf[rep]
            fixed = np.flatnonzero(prob.amp < 0)
            if fixed.size:
                y = y - np.einsum("mj,mjo->mo", f["n"][:, fixed], basis[:, fixed])
            b = basis[:, prob.free_amp]
            return (np.einsum("mio,mjo->mij", b, b), np.einsum("mio,mo->mi", b, y),
                    np.einsum("mo,mo->m", y, y))
        u = (x - self.s0) / self.h                                          # (M, P)
        idx, w = _lagrange(u, self.ng, self.order)                          # (M, P, order)
        m, npath = x.shape
        g = np.empty((m, npath, npath))
        c = np.empty((m, npath))
        ar = np.arange(npath)
        g[:, ar, ar] = np.einsum("mpa,mpa->mp", w, self.diag[ar[None, :, None], idx])
        c[:] = np.einsum("mpa,mpa->mp", w, self.ctab[rep[:, None, None], ar[None, :, None], idx])
        for i, j in self.pairs:
            t = self.cross[(i, j)][idx[:, i, :, None], idx[:, j, None, :]]   # (M, order, order)
            g[:, i, j] = g[:, j, i] = np.einsum("ma,mab,mb->m", w[:, i], t, w[:, j])
        return g, c, self.yy[rep]


def fit_replicates(model: PathModel, data: np.ndarray, seeds: Sequence[np.random.SeedSequence], *,
                   mode: str = "restart", settings: EngineSettings = EngineSettings(),
                   base: FitResult | None = None) -> ReplicateBatch:
    """Fit a batch of replicates of one sample.

    Parameters
    ----------
    model : PathModel
        Path model and fit space (amplitudes are solved by variable projection).
    data : ndarray
        Measured χ(k) on the model grid.
    seeds : sequence of SeedSequence
        One per replicate (the driver spawns them by global replicate index).
    mode : {"restart", "noise", "residual"}
        See :mod:`xasmpi.exafs.replicates`.
    settings : EngineSettings
    base : FitResult, optional
        Best fit of ``data`` (model χ, ε_k and warm start for noise/residual; ΔE0 and R of the
        first stage when they are searched), with the same parameter names as ``model``;
        computed with :func:`xasmpi.exafs.fit.fit` (seed 0) when needed and not given.

    Returns
    -------
    ReplicateBatch
    """
    if mode not in MODES:
        raise ConfigError(f"replicates mode={mode!r}: must be one of {MODES}")
    prob = Problem(model, data)
    if not prob.free_amp.size:
        raise ConfigError("replicate engine: the model has no free amplitude n")
    sig, other = sigma2_split(prob)
    # tables (σ² searched for every path, all n free): the evolution on the tables, then the
    # exact polish; with ΔE0/R searched as well, the evolution holds them at the best fit
    tabled = settings.tabulate and sig.size == len(model.paths) and not np.any(prob.amp < 0)
    two_stage = tabled and other.size > 0
    if (mode != "restart" or two_stage) and base is None:
        base = fit(model, prob.data, settings=DESettings(seed=0))
    if base is not None and tuple(base.names) != tuple(model.names):
        raise ConfigError(f"replicate engine: base fit has parameters {base.names}, the model {model.names}")
    ydata = replicate_data(model, prob.data, seeds, mode=mode,
                           chi_model=None if base is None or mode == "restart" else base.chi_model,
                           eps_k=None if base is None or mode == "restart" else base.eps_k)
    nrep = len(seeds)
    yf = np.stack([model.operator @ y for y in ydata]) if nrep else np.zeros((0, model.operator.shape[0]))
    bounds_all = model.bounds[prob.nl]
    # the evolution searches σ² only when two_stage (ΔE0, R held at the best fit), else all of nl
    srch = sig if two_stage else np.arange(prob.nl.size)
    xfix = base.params[prob.nl][other] if two_stage else None
    obj = _Objective(prob, yf, settings, fixed=xfix)
    bounds = bounds_all[srch]
    lo, span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    d, npop = srch.size, settings.popsize
    lo_a, hi_a = prob.lo, prob.hi

    def energy(rep, x):                      # x in unit cube, (M, d)
        g, c, yy = obj.gram(rep, lo + x * span)
        return yy + bounded_lsq(g, c, lo_a, hi_a)[1]

    tol = settings.stage1_tol if tabled and settings.polish_iter else settings.tol
    rngs = [child_rng(s, STREAM_DE) for s in seeds]
    pop = np.empty((nrep, npop, d))
    nwarm = int(round(settings.warm_fraction * npop)) if mode != "restart" else 0
    xbest0 = None if base is None else (base.params[prob.nl][srch] - lo) / span
    for r, rng in enumerate(rngs):
        # Latin hypercube for the cold part
        ncold = npop - nwarm
        cold = (rng.permuted(np.tile(np.arange(ncold), (d, 1)), axis=1).T + rng.random((ncold, d))) / ncold
        pop[r, :ncold] = cold
        if nwarm:
            pop[r, ncold:] = np.clip(xbest0 + 0.05 * rng.standard_normal((nwarm, d)), 0.0, 1.0)
    rep_all = np.repeat(np.arange(nrep), npop)
    en = energy(rep_all, pop.reshape(-1, d)).reshape(nrep, npop) if d else np.zeros((nrep, npop))
    ngen = np.zeros(nrep, dtype=np.int64)
    status = np.full(nrep, MAXITER, dtype=np.int8)
    active = np.arange(nrep) if d else np.zeros(0, dtype=np.intp)
    fmin, fmax = settings.mutation
    cr = settings.recombination
    blk = 16
    draws = {}
    while active.size:
        gen_in_blk = ngen[active[0]] % blk   # all active replicates share the generation count
        if gen_in_blk == 0:
            for r in active:
                draws[r] = rngs[r].random((blk, npop, 2 * d + 4))
        u = np.stack([draws[r][gen_in_blk] for r in active])            # (A, NP, 2d+4)
        pa, ea = pop[active], en[active]
        best = np.argmin(ea, axis=1)
        # r1 != i, r2 != i, r1 from NP-1 and r2 from NP-2 (shift trick)
        i = np.arange(npop)[None, :]
        r1 = np.floor(u[..., 0] * (npop - 1)).astype(np.intp)
        r1 += r1 >= i
        r2 = np.floor(u[..., 1] * (npop - 2)).astype(np.intp)
        lo_r, hi_r = np.minimum(i, r1), np.maximum(i, r1)
        r2 += r2 >= lo_r
        r2 += r2 >= hi_r
        f = fmin + (fmax - fmin) * u[:, 0, 2][:, None, None]              # one F per replicate/gen
        ar = np.arange(active.size)[:, None]
        trial = pa[ar, best[:, None]] + f * (pa[ar, r1] - pa[ar, r2])
        cross = u[..., 4:4 + d] < cr
        jr = np.floor(u[..., 3] * d).astype(np.intp)
        cross[ar, i, jr] = True
        trial = np.where(cross, trial, pa)
        # out-of-bounds components are re-drawn uniformly in [0, 1] (scipy's rule)
        trial = np.where((trial < 0) | (trial > 1), u[..., 4 + d:], trial)
        et = energy(np.repeat(active, npop), trial.reshape(-1, d)).reshape(active.size, npop)
        better = et <= ea
        pop[active] = np.where(better[..., None], trial, pa)
        en[active] = np.where(better, et, ea)
        ngen[active] += 1
        e = en[active]
        done = (np.std(e, axis=1) <= settings.atol + tol * np.abs(np.mean(e, axis=1))) & (
            ngen[active] >= settings.min_generations)
        status[active[done]] = CONVERGED
        stop = done | (ngen[active] >= settings.maxiter)
        for r in active[stop]:
            draws.pop(r, None)
        active = active[~stop]
    # exact float64 re-evaluation at each replicate's best member
    xs = lo + pop[np.arange(nrep), np.argmin(en, axis=1)] * span if nrep else np.zeros((0, d))
    if tabled:
        # second stage: exact polish of all searched parameters from (σ² of the evolution,
        # ΔE0 and R of the best fit)
        xb = np.empty((nrep, prob.nl.size))
        xb[:, sig] = xs
        if other.size:
            xb[:, other] = xfix
        if nrep and settings.polish_iter:
            ex = _Exact(prob)
            xb = _polish_exact(ex, yf @ ex.U, xb, bounds_all[:, 0], bounds_all[:, 1], settings.polish_iter)
    else:
        xb = xs
    theta = prob.theta_from_nl(xb)
    basis = model.transform(model.unit_basis(theta))[:, prob.free_amp]         # (R, Pf, nout)
    gram = np.einsum("mio,mjo->mij", basis, basis)
    c = np.einsum("mio,mo->mi", basis, yf)
    n, _ = bounded_lsq(gram, c, lo_a, hi_a)
    theta[:, prob.amp[prob.free_amp]] = n
    chi = model.evaluate(theta)
    res = yf - model.transform(chi)
    ssr = np.einsum("ro,ro->r", res, res)
    res2 = model.transform_k2(ydata - chi)                      # the paper's SSR, row by row
    ssr_k2 = np.einsum("ro,ro->r", res2, res2)
    return ReplicateBatch(names=model.names, params=theta, ssr=ssr, ssr_k2=ssr_k2, status=status,
                          n_generations=ngen, mode=mode)
