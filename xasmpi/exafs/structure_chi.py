"""χ(k) of a candidate structure: FEFF paths per unique absorber, averaged over the absorbers.

A candidate cluster (or crystal) fixes every coordination number and distance.  Its EXAFS is

    χ_c(k) = S0² · Σ_a w_a Σ_{j ∈ a} χ_j(k; N_j = degeneracy, R_j = FEFF reff, σ²_{g(j)}, ΔE0)

with ``a`` the unique absorbers of :func:`xasmpi.xanes.clusters.unique_absorbers` (weights
``w_a`` summing to 1), ``j`` the single-scattering FEFF paths of absorber ``a`` (computed by
:func:`xasmpi.exafs.feff.run_feff` and turned into paths by :func:`xasmpi.exafs.feff.feff_paths`,
each distinct distance its own path) and ``χ_j`` the one path equation
(:func:`xasmpi.exafs.kernel.path_chi`, FEFF's λ(k) and p′(k) transfer).  Only what the structure
does not fix is free: one S0², one σ² per shell group ``g`` (the absorber–scatterer pair,
e.g. ``Cd-S``: static disorder of the structure is already in the spread of its reff) and one
ΔE0.  The model is evaluated for whole populations and filtered by the same
:class:`~xasmpi.exafs.model.FitSpace` operator as the model-free fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Sequence

import numpy as np
from ase import Atoms

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.kernel import path_chi
from xasmpi.exafs.model import FitSpace
from xasmpi.exafs.paths import Path, path_tables


def absorber_paths(atoms: Atoms, *, index: int, radius: float, rmax_path: float,
                   workdir: str | FilePath, version: int = 6, tol: float = 0.005) -> tuple[Path, ...]:
    """Single-scattering FEFF paths of one absorber, one :class:`Path` per distinct distance.

    Parameters
    ----------
    atoms : ase.Atoms
        Cluster or periodic crystal.
    index : int
        Absorber index in ``atoms``.
    radius : float
        Cluster radius of the FEFF potentials, Å.
    rmax_path : float
        Longest half path length, Å.
    workdir : str or pathlib.Path
        FEFF's working directory (created).
    version : {6, 8}
        feff6l or feff8l.
    tol : float
        Paths to the same element whose reff differ by less than ``tol`` (Å) form one path.

    Returns
    -------
    tuple of Path
        ``name`` = ``"<absorber>-<scatterer>"``, ``n_ref`` = summed degeneracy, ``r_ref`` =
        degeneracy-weighted reff, σ²_ref = 0; with λ(k) and p′(k).
    """
    from xasmpi.exafs.feff import feff_paths, run_feff

    run = run_feff(atoms, absorber_index=index, radius=radius, workdir=workdir, version=version,
                   rmax_path=rmax_path)
    out: list[Path] = []
    ss = [p for p in run.paths if p.nleg == 2]
    for scat in dict.fromkeys(p.scatterer for p in ss):
        reffs = np.sort([p.reff for p in ss if p.scatterer == scat])
        cuts = np.flatnonzero(np.diff(reffs) > tol) + 1
        for grp in np.split(reffs, cuts):
            lo, hi = float(grp[0]), float(grp[-1])
            out += feff_paths(run, [(scat, 0.5 * (lo + hi))], sigma2=0.0, tol=0.5 * (hi - lo) + 1e-6)
    return tuple(sorted(out, key=lambda p: p.r_ref))


@dataclass(frozen=True)
class Shell:
    """A candidate's coordination shell, averaged over its absorbers.

    Attributes
    ----------
    group : str
        Absorber–scatterer pair, e.g. ``"Cd-S"``.
    n : float
        Mean coordination number (atoms per absorber).
    r : float
        Mean distance, Å.
    spread : float
        Standard deviation of the distances in the shell, Å (static disorder).
    """

    group: str
    n: float
    r: float
    spread: float


@dataclass(frozen=True, eq=False)
class StructureModel:
    """χ(k) of a structure with S0², σ² per shell group and ΔE0 free (see the module docstring).

    Build it with :meth:`build`.  Free parameters, in order: ``s02``, ``sigma2_<group>`` for each
    group (Å²), ``de0`` (eV).
    """

    space: FitSpace
    nk: int
    groups: tuple
    weight: np.ndarray = field(repr=False)      # (P,) absorber weight × degeneracy
    group_of: np.ndarray = field(repr=False)    # (P,) index into groups
    r0: np.ndarray = field(repr=False)          # (P,) Å
    bounds: np.ndarray = field(repr=False)      # (p, 2)
    k: np.ndarray = field(repr=False)
    _tables: dict = field(repr=False)
    _op: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, absorbers: Sequence[tuple[float, Sequence[Path]]], *, space: FitSpace, nk: int | None = None,
              s02: tuple[float, float] = (0.5, 1.5), sigma2: tuple[float, float] = (0.0005, 0.03),
              de0: tuple[float, float] = (-10.0, 10.0), rmax: float | None = None) -> "StructureModel":
        """Model from ``[(weight, paths), ...]`` per unique absorber.

        Parameters
        ----------
        absorbers : sequence of (float, sequence of Path)
            Symmetry weight of each unique absorber (normalised here) and its FEFF paths.
        space : FitSpace
            Fit space (the model-free fit's).
        nk : int, optional
            χ(k) grid length (default: the paths' grid).
        s02, sigma2, de0 : (float, float)
            Bounds of S0², of every σ² (Å²) and of ΔE0 (eV); they are also the uniform priors
            of the evidence (:mod:`xasmpi.analysis.ranking`).
        rmax : float, optional
            Paths with reff > ``rmax`` (Å) are left out (default: all).
        """
        rows = [(float(w), p) for w, ps in absorbers for p in ps if rmax is None or p.r_ref <= rmax]
        if not rows:
            raise InputError("structure model: no FEFF path (check the FEFF radius and rmax_path)")
        wsum = sum(float(w) for w, _ in absorbers)
        if not wsum > 0:
            raise InputError("structure model: absorber weights sum to 0")
        k = rows[0][1].k
        nk = min(p.k.size for _, p in rows) if nk is None else int(nk)
        for _, p in rows:
            if p.k.size < nk or not np.allclose(p.k[:nk], k[:nk]):
                raise InputError(f"structure model: path {p.name} at {p.r_ref:.3f} Å is on another k grid")
        groups = tuple(dict.fromkeys(p.name for _, p in rows))
        for lo, hi, what in ((*s02, "s02"), (*sigma2, "sigma2"), (*de0, "de0")):
            if not lo < hi:
                raise ConfigError(f"structure model: {what} bounds [{lo}, {hi}] need low < high")
        bounds = np.array([s02] + [sigma2] * len(groups) + [de0], dtype=float)
        ps = [p for _, p in rows]
        if any(p.dependents for p in ps):
            raise InputError("structure model: paths with dependents are not supported (FEFF paths of a structure have none)")
        tables = path_tables(ps, nk)
        return cls(space=space, nk=nk, groups=groups,
                   weight=np.array([w / wsum * p.n_ref for w, p in rows]),
                   group_of=np.array([groups.index(p.name) for p in ps]),
                   r0=np.array([p.r_ref for p in ps]), bounds=bounds, k=np.asarray(k[:nk], float),
                   _tables=tables, _op=space.operator(nk))

    @property
    def names(self) -> tuple:
        """Free-parameter names: ``s02``, ``sigma2_<group>``…, ``de0``."""
        return ("s02",) + tuple(f"sigma2_{g}" for g in self.groups) + ("de0",)

    def shells(self, *, rmax: float | None = None, gap: float = 0.4) -> tuple[Shell, ...]:
        """Coordination shells up to ``rmax`` (Å): per group, distances split where consecutive ones
        differ by more than ``gap`` (Å); N, mean R and spread over the absorbers.  The second and
        further shells of a group are named ``<group>#2`` …"""
        out = []
        for gi, g in enumerate(self.groups):
            m = np.flatnonzero((self.group_of == gi) & (True if rmax is None else self.r0 <= rmax))
            if not m.size:
                continue
            m = m[np.argsort(self.r0[m], kind="stable")]
            for j, part in enumerate(np.split(m, np.flatnonzero(np.diff(self.r0[m]) > gap) + 1)):
                w, r0 = self.weight[part], self.r0[part]
                n = float(w.sum())
                r = float(np.sum(w * r0) / n)
                out.append(Shell(g if j == 0 else f"{g}#{j + 1}", n, r, float(np.sqrt(np.sum(w * (r0 - r) ** 2) / n))))
        return tuple(sorted(out, key=lambda x: x.r))

    def evaluate(self, theta: np.ndarray) -> np.ndarray:
        """Model χ(k) (``(m, nk)``) for a population ``theta`` (``(m, p)``, order of :attr:`names`)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[1] != len(self.names):
            raise InputError(f"theta has {theta.shape[1]} columns, structure model has {len(self.names)}")
        m, npath = theta.shape[0], self.r0.size
        s2 = theta[:, 1:1 + len(self.groups)][:, self.group_of]
        t = self._tables
        chi = path_chi(self.k, amp=t["amp"], phase=t["phase"], r0=self.r0, sigma2_0=t["s0"],
                       n=theta[:, :1] * self.weight[None, :], r=np.broadcast_to(self.r0, (m, npath)),
                       sigma2=s2, de0=np.broadcast_to(theta[:, -1:], (m, npath)),
                       lam_inv=t["lam_inv"], preal=t["preal"])
        return chi.sum(axis=1)

    def transform(self, chi: np.ndarray) -> np.ndarray:
        """The fit-space operator applied to χ(k) (``(..., nk)`` -> ``(..., nout)``)."""
        return np.asarray(chi)[..., : self.nk] @ self._op.T

    @property
    def operator(self) -> np.ndarray:
        """Fit-space operator (``(nout, nk)``)."""
        return self._op

    def check_data(self, chi: np.ndarray) -> np.ndarray:
        """Data χ(k) truncated to the model grid (refuses short or non-finite data)."""
        chi = np.asarray(chi, dtype=float)
        if chi.shape[-1] < self.nk or not np.all(np.isfinite(chi[..., : self.nk])):
            raise InputError(f"structure model: data χ(k) need {self.nk} finite points on the 0.05 Å⁻¹ grid")
        return chi[..., : self.nk]


@dataclass(frozen=True)
class StructureFit:
    """Least-squares fit of a :class:`StructureModel` to one data set.

    Attributes
    ----------
    names : tuple of str
    params : ndarray
        Best free parameters (units of each: 1, Å², eV).
    jacobian : ndarray
        ``(nout, p)`` derivative of the fit-space residual at ``params``.
    residual : ndarray
        Fit-space residual data − model at ``params``.
    ssr : float
        Σ residual².
    rfactor : float
        ssr / Σ (fit-space data)².
    n_idp : float
        2ΔkΔR/π of the fit space.
    chi_model : ndarray
        Model χ(k) at ``params``.
    at_bound : tuple of str
        Parameters within 0.1 % of the range from a bound.
    """

    names: tuple
    params: np.ndarray
    jacobian: np.ndarray
    residual: np.ndarray
    ssr: float
    rfactor: float
    n_idp: float
    chi_model: np.ndarray
    at_bound: tuple


def fit_structure(model, data: np.ndarray, *, starts: Sequence[float] = (-6.0, -2.0, 2.0, 6.0),
                  x0: np.ndarray | None = None) -> StructureFit:
    """Fit S0², σ² per group and ΔE0 of ``model`` to ``data`` χ(k) in the model's fit space.

    Bounded trust-region least squares (scipy ``least_squares``) from each ΔE0 in ``starts``
    (eV; phase wrapping makes ΔE0 multimodal), the lowest SSR kept.  ``model`` is a
    :class:`StructureModel` or, with ``x0`` given, any model with ``names``, ``bounds``,
    ``evaluate``, ``transform``, ``check_data`` and ``space`` (e.g. a
    :class:`~xasmpi.exafs.model.PathModel` with N and R fixed at a structure's values, the empirical
    route); then every parameter whose name starts with ``de0`` takes the ΔE0 starts.
    """
    from scipy.optimize import least_squares

    y = model.transform(model.check_data(data))
    lo, hi = model.bounds[:, 0], model.bounds[:, 1]

    def res(th):
        return y - model.transform(model.evaluate(th[None])[0])

    def jac(th):
        h = 1e-6 * (hi - lo)
        pts = np.repeat(th[None], 2 * th.size, axis=0)
        idx = np.arange(th.size)
        pts[idx, idx] += h
        pts[th.size + idx, idx] -= h
        r = y[None] - model.transform(model.evaluate(pts))
        return ((r[: th.size] - r[th.size:]) / (2 * h[:, None])).T

    best = None
    de0 = np.array([n.startswith("de0") for n in model.names])
    for e in starts:
        if x0 is None:
            start = np.array([1.0] + [0.005] * len(model.groups) + [float(e)])
        else:
            start = np.where(de0, float(e), np.asarray(x0, dtype=float))
        start = np.clip(start, lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo))
        sol = least_squares(res, start, jac=jac, bounds=(lo, hi), method="trf", x_scale=hi - lo, max_nfev=200)
        if best is None or sol.cost < best.cost:
            best = sol
    th = best.x
    r = res(th)
    ssr = float(r @ r)
    near = (th - lo < 1e-3 * (hi - lo)) | (hi - th < 1e-3 * (hi - lo))
    return StructureFit(names=model.names, params=th, jacobian=jac(th), residual=r, ssr=ssr,
                        rfactor=ssr / float(y @ y), n_idp=model.space.n_idp,
                        chi_model=model.evaluate(th[None])[0],
                        at_bound=tuple(n for n, b in zip(model.names, near) if b))


def evidence_input(model, fit: StructureFit, *, eps_k: float):
    """:class:`~xasmpi.analysis.ranking.EvidenceInput` of a structure fit: per-point noise variance
    ε_k² Σ_j L_ij² (white χ(k) noise ε_k through the fit-space operator L, as in
    :func:`xasmpi.exafs.fit.report`), ν = N_idp, priors = the model's bounds."""
    from xasmpi.analysis.ranking import EvidenceInput

    op = model.operator
    var = float(eps_k) ** 2 * np.einsum("ij,ij->i", op, op)
    return EvidenceInput(residual=fit.residual, jacobian=fit.jacobian, var=var,
                         n_eff=min(fit.n_idp, float(fit.residual.size)), bounds=model.bounds)
