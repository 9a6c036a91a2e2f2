"""Batched EXAFS path models and fit spaces.

A :class:`PathModel` maps a population of free-parameter vectors ``theta`` (shape
``(m, p)``) to model χ(k) (shape ``(m, nk)``) on the common uniform grid
``k = 0, 0.05, …`` Å⁻¹ in array operations, following the :class:`~xasmpi.exafs.paths.Path`
convention::

    χ(k) = Σ_j n_j · F_j(k') / (k' r_j²) · exp(−2 σ²_j k'²) · sin(2 k' r_j + δ_j(k')),
    k' = sqrt(k² − 0.262468 ΔE0_j)

where ``n_j = N_j·S0²`` (relative to the reference's S0²).

A :class:`FitSpace` is a *real linear operator* ``L`` (``(nout, nk)``) applied to χ(k):

* ``"k"``: ``k^w χ(k)`` at the grid points ``kmin <= k < kmax`` (larch's index convention);
* ``"q"``: the Fourier-filtered ``Re χ(q)`` over ``kmin <= q < kmax``: k-weight, k window,
  larch ``xftf`` (``nfft``-point FFT), R window, larch ``xftr`` (with its 1/2 for complex
  χ(R), so that an open R window returns the windowed ``w(k) k^w χ(k)``);
* ``"r"``: ``Re χ(R)`` and ``Im χ(R)`` of larch ``xftf`` over ``rmin <= R < rmax``.

Because the operator is precomputed as a dense matrix, filtering a whole population is
one matrix product, and the same operator is applied to data and model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.kernel import KSTEP, check_window, filter_matrix, forward_matrix, tables_chi
from xasmpi.exafs.paths import Path, path_tables

SPACES = ("k", "q", "r")
DE0_MODES = ("none", "global", "per_path", "group")


@dataclass(frozen=True)
class FitSpace:
    """Fit space and Fourier-transform windows (larch conventions).

    Parameters
    ----------
    kind : {"k", "q", "r"}
        Space in which residuals are compared.
    kmin, kmax : float
        k window / fit range, Å⁻¹.
    kweight : int
        k-weight ``w`` of ``k^w χ(k)``.
    dk : float
        Taper width of the k window, Å⁻¹.
    window : str
        k window shape (larch ``ftwindow`` name).
    rmin, rmax : float
        R window, Å (used by ``"q"`` and ``"r"``).
    dr : float
        Taper width of the R window, Å.
    rwindow : str
        R window shape.
    nfft : int
        FFT length (larch default 2048, giving an R step of π/(nfft·0.05) Å).
    """

    kind: str = "q"
    kmin: float = 2.0
    kmax: float = 16.0
    kweight: int = 2
    dk: float = 1.0
    window: str = "hanning"
    rmin: float = 1.0
    rmax: float = 3.5
    dr: float = 0.0
    rwindow: str = "hanning"
    nfft: int = 2048

    def __post_init__(self) -> None:
        if self.kind not in SPACES:
            raise ConfigError(f"fit space kind={self.kind!r}: must be one of {SPACES}")
        if not 0.0 <= self.kmin < self.kmax:
            raise ConfigError(f"fit space kmin={self.kmin}, kmax={self.kmax}: need 0 <= kmin < kmax (Å⁻¹)")
        if self.kind != "k" and not 0.0 <= self.rmin < self.rmax:
            raise ConfigError(f"fit space rmin={self.rmin}, rmax={self.rmax}: need 0 <= rmin < rmax (Å)")
        check_window(self.window, "fit space window")
        check_window(self.rwindow, "fit space rwindow")
        if self.dk < 0 or self.dr < 0:
            raise ConfigError(f"fit space dk={self.dk}, dr={self.dr}: tapers must be >= 0")
        if self.nfft < 256 or self.nfft & (self.nfft - 1):
            raise ConfigError(f"fit space nfft={self.nfft}: must be a power of two >= 256")

    @property
    def rstep(self) -> float:
        """R grid step of the FFT, Å."""
        return np.pi / (KSTEP * self.nfft)

    @property
    def n_idp(self) -> float:
        """Number of independent points 2ΔkΔR/π (ΔR of the R window; for ``"k"`` the same formula
        with the ``rmin``/``rmax`` given, as a nominal information content)."""
        return 2.0 * (self.kmax - self.kmin) * (self.rmax - self.rmin) / np.pi

    def kspan(self) -> tuple[float, float]:
        """k range (Å⁻¹) on which the operator has non-zero columns (fit range plus tapers)."""
        if self.kind == "k":
            return self.kmin, self.kmax
        return max(0.0, self.kmin - self.dk / 2), self.kmax + self.dk / 2

    def operator(self, nk: int, *, kweight: int | None = None) -> np.ndarray:
        """Real matrix ``L`` (``(nout, nk)``) mapping χ on ``k = 0, 0.05, …`` to the fit space.

        Parameters
        ----------
        nk : int
            Number of k grid points of the χ arrays it will be applied to.
        kweight : int, optional
            Override of :attr:`kweight` (the paper's SSR uses 2).
        """
        w = self.kweight if kweight is None else kweight
        k = np.arange(nk) * KSTEP
        iqmin = int(max(0, 0.01 + self.kmin / KSTEP))
        iqmax = int(min(self.nfft / 2, 0.01 + self.kmax / KSTEP))
        if self.kind == "k":
            if iqmax > nk:
                raise InputError(f"fit space kmax={self.kmax} beyond the χ(k) grid ({(nk - 1) * KSTEP:.2f} Å⁻¹)")
            rows = np.arange(iqmin, iqmax)
            op = np.zeros((rows.size, nk))
            op[np.arange(rows.size), rows] = k[rows] ** w
            return op
        if self.kmax + self.dk / 2 > (nk - 1) * KSTEP + 1e-9:
            raise InputError(f"fit space kmax+dk/2={self.kmax + self.dk / 2} beyond the χ(k) grid "
                             f"({(nk - 1) * KSTEP:.2f} Å⁻¹)")
        win = dict(kmin=self.kmin, kmax=self.kmax, dk=self.dk, window=self.window, kweight=w, nfft=self.nfft)
        if self.kind == "r":
            irmin = int(max(0, 0.01 + self.rmin / self.rstep))
            irmax = int(min(self.nfft / 2, 0.01 + self.rmax / self.rstep))
            sub = forward_matrix(nk, **win)[irmin:irmax]
            return np.ascontiguousarray(np.concatenate([sub.real, sub.imag], axis=0))
        m = filter_matrix(nk, rmin=self.rmin, rmax=self.rmax, dr=self.dr, rwindow=self.rwindow, **win)
        return np.ascontiguousarray(m[iqmin:iqmax].real)


@dataclass(frozen=True)
class Param:
    """One model parameter: fixed at ``value`` or free within ``[lo, hi]``.

    Units follow the parameter: n (dimensionless N·S0²), sigma2 Å², r Å, de0 eV.
    """

    value: float
    vary: bool = True
    lo: float = -np.inf
    hi: float = np.inf

    def __post_init__(self) -> None:
        if self.vary and not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.lo < self.hi):
            raise ConfigError(f"free parameter bounds [{self.lo}, {self.hi}]: need finite lo < hi")


def _default_params(paths: Sequence[Path]) -> dict[str, list[Param]]:
    return {
        "n": [Param(p.n_ref, True, 0.0, 3.0 * max(p.n_ref, 1.0)) for p in paths],
        "sigma2": [Param(max(p.sigma2_ref, 0.003), True, 0.0, 0.04) for p in paths],
        "r": [Param(p.r_ref, False) for p in paths],
    }


@dataclass(frozen=True, eq=False)
class PathModel:
    """A sum of paths with a parameter spec, evaluated for whole populations at once.

    Build it with :meth:`build`.  ``theta`` vectors hold the free parameters in the order of
    :attr:`names` (``n_<path>``, ``sigma2_<path>``, ``r_<path>``, then ``de0`` or ``de0_<path>``).

    Attributes
    ----------
    paths : tuple of Path
    space : FitSpace
    nk : int
        Length of the χ(k) grid ``k = 0, 0.05, …`` Å⁻¹ (data and model).
    n, sigma2, r, de0 : tuple of Param
        Per-path specs (``de0`` has one entry when global).
    de0_mode : {"none", "global", "per_path", "group"}
    de0_groups : tuple of str
        Per-path ΔE0 group labels (``"group"`` mode; empty otherwise).
    """

    paths: tuple
    space: FitSpace
    nk: int
    n: tuple
    sigma2: tuple
    r: tuple
    de0: tuple
    de0_mode: str
    de0_groups: tuple = ()
    names: tuple = field(init=False)
    _de0_of_path: np.ndarray = field(init=False, repr=False)
    _index: dict = field(init=False, repr=False)
    _op: np.ndarray = field(init=False, repr=False)
    _op_k2: np.ndarray = field(init=False, repr=False)
    _kin: np.ndarray = field(init=False, repr=False)
    _tables: dict = field(init=False, repr=False)

    @classmethod
    def build(cls, paths: Sequence[Path], *, space: FitSpace | None = None, nk: int | None = None,
              n: Sequence[Param] | None = None, sigma2: Sequence[Param] | None = None,
              r: Sequence[Param] | None = None, de0: Param | Sequence[Param] | None = None,
              de0_mode: str = "none", de0_groups: Sequence[str] | None = None) -> "PathModel":
        """Create a model.

        Parameters
        ----------
        paths : sequence of Path
            Paths on the common grid (all must share the grid).
        space : FitSpace, optional
            Default ``FitSpace()`` (q space, k 2–16 Å⁻¹, R 1–3.5 Å, k-weight 2).
        nk : int, optional
            χ(k) grid length; default: the shortest path grid.
        n, sigma2, r : sequence of Param, optional
            One per path.  Defaults: n free in [0, 3·max(N_ref, 1)], σ² free in [0, 0.04] Å²,
            R fixed at the reference distance.
        de0 : Param or sequence of Param, optional
            ΔE0 (eV): one Param for ``de0_mode="global"``, one per path for ``"per_path"``,
            one per distinct label of ``de0_groups`` (in order of first appearance) for
            ``"group"``; a single Param is repeated.
        de0_mode : {"none", "global", "per_path", "group"}
            ``"group"``: paths with the same label in ``de0_groups`` share one ΔE0 (the
            default of the fit stage: one ΔE0 per reference spectrum).
        de0_groups : sequence of str, optional
            One label per path (``"group"`` mode only), e.g. the reference spectrum each
            empirical path was extracted from, or ``"feff"``.  Names of the free ΔE0
            parameters are ``de0_<label>``.
        """
        paths = tuple(paths)
        if not paths:
            raise ConfigError("path model: at least one path is required")
        names = [p.name for p in paths]
        if len(set(names)) != len(names):
            raise ConfigError(f"path model: duplicate path names {names}")
        for p in paths[1:]:
            m = min(p.k.size, paths[0].k.size)
            if not np.allclose(p.k[:m], paths[0].k[:m]):
                raise InputError(f"path {p.name!r}: k grid differs from path {paths[0].name!r}")
        if abs(paths[0].k[0]) > 1e-12 or abs(paths[0].k[1] - paths[0].k[0] - KSTEP) > 1e-9:
            raise InputError(f"path {paths[0].name!r}: k grid must be 0, {KSTEP}, … Å⁻¹")
        nmax = min(p.k.size for p in paths)
        nk = nmax if nk is None else int(nk)
        if not 2 <= nk <= nmax:
            raise InputError(f"path model nk={nk}: paths have {nmax} k points")
        dflt = _default_params(paths)
        specs = {}
        for key, val in (("n", n), ("sigma2", sigma2), ("r", r)):
            val = dflt[key] if val is None else tuple(val)
            if len(val) != len(paths):
                raise ConfigError(f"path model {key}: {len(val)} entries for {len(paths)} paths")
            specs[key] = tuple(val)
        if de0_mode not in DE0_MODES:
            raise ConfigError(f"path model de0_mode={de0_mode!r}: must be one of {DE0_MODES}")
        groups: tuple = ()
        if de0_mode == "group":
            if de0_groups is None or len(de0_groups) != len(paths):
                raise ConfigError(f"path model de0_groups: need one label per path ({len(paths)}), "
                                  f"got {None if de0_groups is None else len(de0_groups)}")
            groups = tuple(str(g) for g in de0_groups)
        elif de0_groups is not None:
            raise ConfigError(f"path model de0_groups given with de0_mode={de0_mode!r} (needs 'group')")
        if de0_mode == "none":
            de0s = ()
        else:
            if de0 is None:
                de0 = Param(0.0, True, -10.0, 10.0)
            de0s = (de0,) if isinstance(de0, Param) else tuple(de0)
            want = {"global": 1, "per_path": len(paths), "group": len(dict.fromkeys(groups))}[de0_mode]
            if len(de0s) == 1 and want > 1:
                de0s = de0s * want
            if len(de0s) != want:
                raise ConfigError(f"path model de0: {len(de0s)} entries, {de0_mode} needs {want}")
        return cls(paths, space or FitSpace(), nk, specs["n"], specs["sigma2"], specs["r"], de0s, de0_mode,
                   groups)

    def __post_init__(self) -> None:
        names, index = [], {}
        groups = [("n", self.n), ("sigma2", self.sigma2), ("r", self.r)]
        if self.de0_mode != "none":
            groups.append(("de0", self.de0))
        labels = self.de0_labels
        for key, specs in groups:
            for j, spec in enumerate(specs):
                if spec.vary:
                    nm = f"de0{labels[j]}" if key == "de0" else f"{key}_{self.paths[j].name}"
                    index[(key, j)] = len(names)
                    names.append(nm)
        if self.de0_mode == "group":
            order = list(dict.fromkeys(self.de0_groups))
            of_path = np.array([order.index(g) for g in self.de0_groups], dtype=int)
        elif self.de0_mode == "global":
            of_path = np.zeros(len(self.paths), dtype=int)
        else:
            of_path = np.arange(len(self.paths))
        object.__setattr__(self, "_de0_of_path", of_path)
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "_index", index)
        op = self.space.operator(self.nk)
        object.__setattr__(self, "_op", op)
        object.__setattr__(self, "_op_k2", op if self.space.kweight == 2 or self.space.kind == "r"
                           else self.space.operator(self.nk, kweight=2))
        if self.space.kind == "r":  # the paper's SSR for an R-space fit: k²χ over the k range
            object.__setattr__(self, "_op_k2", FitSpace(kind="k", kmin=self.space.kmin,
                                                        kmax=self.space.kmax).operator(self.nk))
        object.__setattr__(self, "_kin", np.asarray(self.paths[0].k[: self.nk], dtype=float))
        object.__setattr__(self, "_tables", path_tables(self.paths, self.nk))

    # ------------------------------------------------------------------ parameters
    @property
    def de0_labels(self) -> tuple:
        """Suffix of each ΔE0 parameter's name: ``""`` (global ``de0``), ``"_<path>"`` or ``"_<group>"``."""
        if self.de0_mode == "global":
            return ("",)
        if self.de0_mode == "per_path":
            return tuple(f"_{p.name}" for p in self.paths)
        if self.de0_mode == "group":
            return tuple(f"_{g}" for g in dict.fromkeys(self.de0_groups))
        return ()

    @property
    def de0_of_path(self) -> np.ndarray:
        """Index into :attr:`de0` of each path's ΔE0 (``(P,)``; meaningless for mode ``"none"``)."""
        return self._de0_of_path

    @property
    def k(self) -> np.ndarray:
        """The χ(k) grid, Å⁻¹."""
        return self._kin

    @property
    def bounds(self) -> np.ndarray:
        """``(p, 2)`` lower/upper bounds of the free parameters (units of each parameter)."""
        out = np.empty((len(self.names), 2))
        for (key, j), i in self._index.items():
            spec = getattr(self, key)[j]
            out[i] = spec.lo, spec.hi
        return out

    @property
    def amplitude_index(self) -> np.ndarray:
        """Positions in ``theta`` of free amplitudes n (-1 for a path whose n is fixed)."""
        return np.array([self._index.get(("n", j), -1) for j in range(len(self.paths))])

    @property
    def nonlinear_index(self) -> np.ndarray:
        """Positions in ``theta`` of the free non-amplitude parameters (σ², R, ΔE0)."""
        amp = set(self.amplitude_index[self.amplitude_index >= 0].tolist())
        return np.array([i for i in range(len(self.names)) if i not in amp], dtype=int)

    @property
    def operator(self) -> np.ndarray:
        """Fit-space operator ``L`` (``(nout, nk)``); read-only view."""
        v = self._op.view()
        v.flags.writeable = False
        return v

    def full(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """All path parameters for a population: dict of ``(m, P)`` arrays n, sigma2, r, de0."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if theta.shape[1] != len(self.names):
            raise InputError(f"theta has {theta.shape[1]} columns, model has {len(self.names)} free parameters")
        m, npath = theta.shape[0], len(self.paths)
        out = {}
        for key in ("n", "sigma2", "r"):
            arr = np.empty((m, npath))
            for j, spec in enumerate(getattr(self, key)):
                i = self._index.get((key, j))
                arr[:, j] = spec.value if i is None else theta[:, i]
            out[key] = arr
        de0 = np.zeros((m, npath))
        for j in range(npath):
            jj = int(self._de0_of_path[j])
            if self.de0_mode != "none":
                spec = self.de0[jj]
                i = self._index.get(("de0", jj))
                de0[:, j] = spec.value if i is None else theta[:, i]
        out["de0"] = de0
        return out

    # ------------------------------------------------------------------ evaluation
    def _path_chi(self, n, sigma2, r, de0) -> np.ndarray:
        """χ_j(k) for arrays n, sigma2, r, de0 of shape (m, P) -> (m, P, nk) (the one kernel)."""
        return tables_chi(self._kin, self._tables, n=n, r=r, sigma2=sigma2, de0=de0)

    def evaluate_paths(self, theta: np.ndarray) -> np.ndarray:
        """Per-path model χ_j(k) (``(m, P, nk)``, dimensionless) for a population ``theta`` (``(m, p)``)."""
        f = self.full(theta)
        return self._path_chi(f["n"], f["sigma2"], f["r"], f["de0"])

    def evaluate(self, theta: np.ndarray) -> np.ndarray:
        """Total model χ(k) (``(m, nk)``) for a population ``theta`` (``(m, p)``)."""
        return self.evaluate_paths(theta).sum(axis=1)

    def unit_basis(self, theta: np.ndarray) -> np.ndarray:
        """Per-path χ_j(k) with n_j = 1 at the non-amplitude parameters of ``theta`` (``(m, P, nk)``)."""
        f = self.full(theta)
        return self._path_chi(np.ones_like(f["n"]), f["sigma2"], f["r"], f["de0"])

    def transform(self, chi: np.ndarray) -> np.ndarray:
        """Apply the fit-space operator to χ(k) arrays (``(..., nk)`` -> ``(..., nout)``)."""
        return np.asarray(chi)[..., : self.nk] @ self._op.T

    def transform_k2(self, chi: np.ndarray) -> np.ndarray:
        """Apply the paper's k²-weighted operator (k space, or filtered k²χ for q space)."""
        return np.asarray(chi)[..., : self.nk] @ self._op_k2.T

    def check_data(self, chi: np.ndarray) -> np.ndarray:
        """Validate data χ(k) on the model grid; returns it truncated to ``nk`` points."""
        chi = np.asarray(chi, dtype=float)
        if chi.shape[-1] < self.nk:
            raise InputError(f"data χ(k) has {chi.shape[-1]} points on the 0.05 Å⁻¹ grid; model needs {self.nk}")
        chi = chi[..., : self.nk]
        if not np.all(np.isfinite(chi)):
            raise InputError("data χ(k) contains NaN or inf")
        return chi

    def ssr(self, theta: np.ndarray, data: np.ndarray) -> np.ndarray:
        """Fit-space sum of squared residuals for a population (``(m,)``)."""
        res = self.transform(self.check_data(data) - self.evaluate(theta))
        return np.einsum("ij,ij->i", res, res)

    def ssr_k2(self, theta: np.ndarray, data: np.ndarray) -> np.ndarray:
        """The paper's SSR: Σ (k²χ_data − k²χ_model)² over the fit k range (filtered for q space)."""
        res = self.transform_k2(self.check_data(data) - self.evaluate(theta))
        return np.einsum("ij,ij->i", res, res)
