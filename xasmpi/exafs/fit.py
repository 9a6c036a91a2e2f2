"""Model-free EXAFS fit: differential evolution over whole populations, variable projection,
local polish and the fit report (SSR as the paper defines it, R-factor, reduced χ², correlations).

Differential evolution (Storn & Price) is scipy's ``differential_evolution`` with
``vectorized=True``: each generation's population is evaluated by one call of
:meth:`PathModel.ssr <xasmpi.exafs.model.PathModel.ssr>` (a few array operations).

Variable projection: with σ², R and ΔE0 fixed, χ is linear in the amplitudes n = N·S0².
For each candidate of the non-linear parameters the amplitudes are solved exactly by a
bounded linear least-squares (:func:`bounded_lsq`, non-negative with the default bounds),
so the evolution searches only σ² (and R, ΔE0 when free).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import differential_evolution, least_squares, minimize

from xasmpi.errors import ConfigError
from xasmpi.exafs.model import PathModel

STRATEGIES = ("best1bin", "best1exp", "rand1bin", "rand1exp", "rand2bin", "best2bin",
              "currenttobest1bin", "randtobest1bin")
POLISH = ("none", "least_squares", "lbfgsb")


@dataclass(frozen=True)
class DESettings:
    """Differential-evolution settings (scipy ``differential_evolution`` meanings).

    Parameters
    ----------
    popsize : int
        Population = ``popsize × (number of searched parameters)``.
    maxiter : int
        Maximum number of generations.
    tol, atol : float
        Stop when ``std(SSR of population) <= atol + tol·|mean(SSR)|``.
    mutation : float or (float, float)
        Differential weight F, or a dithering range.
    recombination : float
        Crossover probability CR.
    strategy : str
        scipy strategy name.
    seed : int, optional
        Seed of the evolution's random generator.
    varpro : bool
        Solve the amplitudes by bounded least squares per candidate (variable projection).
    polish : {"none", "least_squares", "lbfgsb"}
        Local polish of the best member over all free parameters (trust-region least squares
        on the residual vector, or L-BFGS-B on the SSR); kept only if it lowers the SSR.
    """

    popsize: int = 15
    maxiter: int = 1000
    tol: float = 1e-8
    atol: float = 0.0
    mutation: float | tuple = (0.5, 1.0)
    recombination: float = 0.7
    strategy: str = "best1bin"
    seed: int | None = None
    varpro: bool = True
    polish: str = "least_squares"

    def __post_init__(self) -> None:
        if self.popsize < 4:
            raise ConfigError(f"fit popsize={self.popsize}: must be >= 4")
        if self.maxiter < 1:
            raise ConfigError(f"fit maxiter={self.maxiter}: must be >= 1")
        if self.tol < 0 or self.atol < 0:
            raise ConfigError(f"fit tol={self.tol}, atol={self.atol}: must be >= 0")
        if not 0.0 <= self.recombination <= 1.0:
            raise ConfigError(f"fit recombination={self.recombination}: must be in [0, 1]")
        mut = self.mutation if isinstance(self.mutation, tuple) else (self.mutation,)
        if not all(0.0 <= m <= 2.0 for m in mut):
            raise ConfigError(f"fit mutation={self.mutation}: must be in [0, 2]")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"fit strategy={self.strategy!r}: must be one of {STRATEGIES}")
        if self.polish not in POLISH:
            raise ConfigError(f"fit polish={self.polish!r}: must be one of {POLISH}")


@dataclass(frozen=True)
class FitResult:
    """Best fit of one spectrum.

    Attributes
    ----------
    names : tuple of str
        Free-parameter names.
    params : ndarray
        Best free-parameter values (n dimensionless, σ² Å², R Å, ΔE0 eV).
    stderr : ndarray
        Uncertainties, larch convention: ``sqrt(diag((JᵀJ)⁻¹ · SSR / (N_idp − n_free)))``
        (NaN when not determined).
    correl : ndarray
        ``(p, p)`` correlation matrix of the free parameters from the Jacobian at the optimum.
    ssr : float
        Sum of squared residuals in the fit space.
    ssr_k2 : float
        The paper's SSR: Σ (k²χ_data − k²χ_model)² over the fit k range (of the filtered k²χ in
        q space; of k²χ over kmin..kmax for an R-space fit).
    rfactor : float
        ``ssr / Σ (L χ_data)²`` in the fit space.
    chi2, redchi : float
        χ² = (N_idp/N_pts) Σ r_i²/v_i with v_i the fit-space variance of white χ(k) noise ε_k,
        and χ²/(N_idp − n_free).
    n_idp : float
        2ΔkΔR/π.
    eps_k : float
        Noise in χ(k) (larch ``estimate_noise`` unless given).
    k : ndarray
        k grid, Å⁻¹.
    chi_paths : ndarray
        ``(P, nk)`` best-fit χ_j(k) of each path.
    chi_model : ndarray
        ``(nk,)`` summed model χ(k).
    nfev, nit : int
        Population-member evaluations and generations of the evolution.
    method : str
        ``"de"`` or ``"de+varpro"``, with ``"+polish"`` when the polish improved the fit.
    """

    names: tuple
    params: np.ndarray
    stderr: np.ndarray
    correl: np.ndarray
    ssr: float
    ssr_k2: float
    rfactor: float
    chi2: float
    redchi: float
    n_idp: float
    eps_k: float
    k: np.ndarray
    chi_paths: np.ndarray
    chi_model: np.ndarray
    nfev: int
    nit: int
    method: str

    def value(self, name: str) -> float:
        """Best value of the free parameter ``name``."""
        if name not in self.names:
            raise KeyError(f"{name!r} is not a free parameter; free: {self.names}")
        return float(self.params[self.names.index(name)])


def bounded_lsq(gram: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Exact batched solution of ``min_n nᵀGn − 2cᵀn`` subject to ``lo <= n <= hi``.

    For a convex quadratic the box-constrained minimum lies on one face of the box, where the
    free coordinates solve the reduced normal equations.  All 3^P faces (each coordinate at
    ``lo``, free, or at ``hi``) are solved in batch and the best feasible one is kept, so the
    result is exact (no iterations); meant for the few paths of an EXAFS model (P <= 5).

    Parameters
    ----------
    gram : ndarray
        ``(m, P, P)`` Gram matrices ``BᵀB`` of the unit-amplitude bases.
    c : ndarray
        ``(m, P)`` projections ``Bᵀy`` of the data.
    lo, hi : ndarray
        ``(P,)`` bounds (finite).

    Returns
    -------
    n : ndarray
        ``(m, P)`` optimal amplitudes.
    q : ndarray
        ``(m,)`` optimal ``nᵀGn − 2cᵀn`` (the SSR is ``yᵀy + q``).
    """
    m, npar = c.shape
    if npar > 5:
        raise ConfigError(f"variable projection with {npar} free amplitudes: at most 5 supported")
    ridge = 1e-12 * np.einsum("mii->m", gram)[:, None, None] + 1e-300
    # the unconstrained minimum, when inside the box, is the constrained one (convex problem):
    # only the candidates whose free solution leaves the box need the face enumeration
    n = np.linalg.solve(gram + ridge * np.eye(npar), c[..., None])[..., 0]
    q = np.einsum("mi,mij,mj->m", n, gram, n) - 2.0 * np.einsum("mi,mi->m", c, n)
    out = ~np.all((n >= lo) & (n <= hi), axis=1)
    if out.any():
        n[out], q[out] = _faces(gram[out], c[out], lo, hi, ridge[out])
    return n, q


def _faces(gram: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, ridge: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Best feasible face of the box (see :func:`bounded_lsq`), for all candidates in batch."""
    m, npar = c.shape
    best_q = np.full(m, np.inf)
    best_n = np.zeros((m, npar))
    for state in itertools.product((0, 1, 2), repeat=npar):
        free = [j for j, s in enumerate(state) if s == 1]
        fixed = [j for j, s in enumerate(state) if s != 1]
        n = np.empty((m, npar))
        for j in fixed:
            n[:, j] = lo[j] if state[j] == 0 else hi[j]
        ok = np.ones(m, dtype=bool)
        if free:
            gff = gram[:, free][:, :, free] + ridge * np.eye(len(free))
            rhs = c[:, free]
            if fixed:
                rhs = rhs - np.einsum("mij,mj->mi", gram[:, free][:, :, fixed], n[:, fixed])
            sol = np.linalg.solve(gff, rhs[..., None])[..., 0]
            ok = np.all((sol >= lo[free]) & (sol <= hi[free]), axis=1)
            n[:, free] = sol
        q = np.einsum("mi,mij,mj->m", n, gram, n) - 2.0 * np.einsum("mi,mi->m", c, n)
        upd = ok & (q < best_q)
        best_q = np.where(upd, q, best_q)
        best_n[upd] = n[upd]
    return best_n, best_q


class Problem:
    """Objective functions of one fit (data fixed), shared by DE, the polish, the report and the
    batched replicate engine (:mod:`xasmpi.exafs.engine`).

    Parameters
    ----------
    model : PathModel
        The model (its fit space transforms the data).
    data : ndarray
        χ(k) on the model grid (dimensionless).
    """

    def __init__(self, model: PathModel, data: np.ndarray):
        self.model = model
        self.data = model.check_data(data)
        self.y = model.transform(self.data)
        self.yy = float(self.y @ self.y)
        self.amp = model.amplitude_index
        self.nl = model.nonlinear_index
        self.free_amp = np.flatnonzero(self.amp >= 0)       # path indices with free n
        b = model.bounds
        self.lo, self.hi = b[self.amp[self.free_amp], 0], b[self.amp[self.free_amp], 1]

    def theta_from_nl(self, x: np.ndarray) -> np.ndarray:
        """``(m, p)`` theta with the non-linear columns from ``x`` and the amplitudes placeholder 1."""
        theta = np.ones((x.shape[0], len(self.model.names)))
        theta[:, self.nl] = x
        return theta

    def varpro(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Optimal amplitudes and SSR for non-linear parameter vectors ``x`` (``(m, d)``)."""
        theta = self.theta_from_nl(x)
        basis = self.model.transform(self.model.unit_basis(theta))      # (m, P, nout)
        f = self.model.full(theta)
        fixed = np.flatnonzero(self.amp < 0)
        y = np.broadcast_to(self.y, (x.shape[0], self.y.size))
        if fixed.size:
            y = y - np.einsum("mj,mjo->mo", f["n"][:, fixed], basis[:, fixed])
        b = basis[:, self.free_amp]
        gram = np.einsum("mio,mjo->mij", b, b)
        c = np.einsum("mio,mo->mi", b, y)
        n, q = bounded_lsq(gram, c, self.lo, self.hi)
        theta[:, self.amp[self.free_amp]] = n
        return theta, np.einsum("mo,mo->m", y, y) + q

    def residual(self, theta: np.ndarray) -> np.ndarray:
        return self.model.transform(self.data - self.model.evaluate(theta[None])[0])


def _jacobian(prob: Problem, theta: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of the fit-space residual, steps 1e-6 of the bound range."""
    h = 1e-6 * np.diff(prob.model.bounds, axis=1)[:, 0]
    p = theta.size
    pts = np.repeat(theta[None], 2 * p, axis=0)
    pts[np.arange(p), np.arange(p)] += h
    pts[p + np.arange(p), np.arange(p)] -= h
    res = prob.model.transform(prob.data - prob.model.evaluate(pts))
    return ((res[:p] - res[p:]) / (2 * h[:, None])).T


def estimate_eps_k(model: PathModel, data: np.ndarray) -> float:
    """Noise ε_k in χ(k) from the high-R part of χ(R) (larch ``estimate_noise``, R 15–30 Å),
    with the fit's k window and k-weight."""
    from larch import Group
    from larch.xafs import estimate_noise

    s = model.space
    g = Group()
    estimate_noise(model.k, model.check_data(data), group=g, kmin=s.kmin, kmax=s.kmax,
                   kweight=s.kweight, dk=s.dk, kwindow=s.window)
    return float(g.epsilon_k)


def report(model: PathModel, data: np.ndarray, theta: np.ndarray, *, eps_k: float | None = None,
           nfev: int = 0, nit: int = 0, method: str = "") -> FitResult:
    """Fit report at the free-parameter vector ``theta`` (see :class:`FitResult`)."""
    prob = Problem(model, data)
    theta = np.asarray(theta, dtype=float)
    res = prob.residual(theta)
    ssr = float(res @ res)
    ssr_k2 = float(model.ssr_k2(theta[None], prob.data)[0])
    eps = estimate_eps_k(model, prob.data) if eps_k is None else float(eps_k)
    op = model.operator
    var = eps * eps * np.einsum("ij,ij->i", op, op)
    n_idp = model.space.n_idp
    npts = res.size
    chi2 = float(n_idp / npts * np.sum(res * res / var))
    nfree = len(model.names)
    dof = n_idp - nfree
    jac = _jacobian(prob, theta)
    jtj = jac.T @ jac
    p = nfree
    stderr = np.full(p, np.nan)
    correl = np.full((p, p), np.nan)
    if p and np.linalg.matrix_rank(jtj) == p and dof > 0:
        cov = np.linalg.inv(jtj) * ssr / dof
        stderr = np.sqrt(np.diag(cov))
        correl = cov / np.outer(stderr, stderr)
    chi_paths = model.evaluate_paths(theta[None])[0]
    return FitResult(names=model.names, params=theta, stderr=stderr, correl=correl, ssr=ssr,
                     ssr_k2=ssr_k2, rfactor=ssr / prob.yy, chi2=chi2,
                     redchi=chi2 / dof if dof > 0 else np.nan, n_idp=n_idp, eps_k=eps,
                     k=model.k.copy(), chi_paths=chi_paths, chi_model=chi_paths.sum(axis=0),
                     nfev=int(nfev), nit=int(nit), method=method)


def _polish(prob: Problem, theta: np.ndarray, how: str) -> tuple[np.ndarray, bool]:
    """Local refinement over all free parameters from ``theta``; returns (theta, improved)."""
    b = prob.model.bounds
    ssr0 = float(prob.model.ssr(theta[None], prob.data)[0])
    x0 = np.clip(theta, b[:, 0], b[:, 1])
    if how == "least_squares":
        sol = least_squares(prob.residual, x0, bounds=(b[:, 0], b[:, 1]), method="trf",
                            x_scale=np.diff(b, axis=1)[:, 0], xtol=1e-12, ftol=1e-12, gtol=1e-12)
        x = sol.x
    else:
        sol = minimize(lambda t: float(prob.model.ssr(t[None], prob.data)[0]), x0, method="L-BFGS-B",
                       bounds=b, options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
        x = sol.x
    ssr1 = float(prob.model.ssr(x[None], prob.data)[0])
    return (x, True) if ssr1 < ssr0 else (theta, False)


def fit(model: PathModel, data: np.ndarray, *, settings: DESettings = DESettings(),
        eps_k: float | None = None) -> FitResult:
    """Fit data χ(k) with a path model by differential evolution.

    Parameters
    ----------
    model : PathModel
        Paths, parameter spec and fit space.
    data : ndarray
        χ(k) on the model grid ``k = 0, 0.05, …`` Å⁻¹ (at least ``model.nk`` points).
    settings : DESettings
        Evolution, variable projection and polish options.
    eps_k : float, optional
        Noise in χ(k) for χ²; default: larch ``estimate_noise``.

    Returns
    -------
    FitResult
    """
    prob = Problem(model, data)
    b = model.bounds
    if not len(model.names):
        raise ConfigError("fit: the path model has no free parameter")
    de_kw = dict(popsize=settings.popsize, maxiter=settings.maxiter, tol=settings.tol,
                 atol=settings.atol, mutation=settings.mutation,
                 recombination=settings.recombination, strategy=settings.strategy,
                 rng=settings.seed, polish=False, vectorized=True, updating="deferred")
    nfev = nit = 0
    if settings.varpro and prob.free_amp.size:
        if prob.nl.size == 0:
            theta = prob.varpro(np.zeros((1, 0)))[0][0]
        else:
            sol = differential_evolution(lambda x: prob.varpro(np.atleast_2d(x.T))[1],
                                         b[prob.nl], **de_kw)
            theta = prob.varpro(sol.x[None])[0][0]
            nfev, nit = sol.nfev, sol.nit
        method = "de+varpro"
    else:
        sol = differential_evolution(lambda x: model.ssr(np.atleast_2d(x.T), prob.data), b, **de_kw)
        theta, nfev, nit = sol.x, sol.nfev, sol.nit
        method = "de"
    if settings.polish != "none":
        theta, improved = _polish(prob, theta, settings.polish)
        if improved:
            method += "+polish"
    return report(model, prob.data, theta, eps_k=eps_k, nfev=nfev, nit=nit, method=method)
