"""Scattering paths: effective amplitude F(k), phase δ(k) and, where known, the mean free path
λ(k) and real momentum p′(k) on a common k grid.

Convention at the path's reference state (R0 = ``r_ref``, σ0² = ``sigma2_ref``)::

    χ_j(k) = N_j · F_j(k) / (k R0²) · exp(−2 σ0² k²) · sin(2 k R0 + δ_j(k))

and :func:`xasmpi.exafs.kernel.path_chi` moves it to other (N, R, σ², ΔE0) with FEFF's path
equation (mean-free-path and complex-momentum terms included when λ and p′ are known).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xasmpi.exafs.kernel import ETOK, KSTEP, kgrid, path_chi  # noqa: F401  (re-exported)


@dataclass(frozen=True, eq=False)
class Path:
    """One single-scattering path on the common k grid.

    Attributes
    ----------
    name : str
        Label, e.g. ``"Cd-S"``.
    k : ndarray
        Uniform grid, Å⁻¹ (``kgrid()``).
    amp : ndarray
        Effective backscattering amplitude F(k) (S0² and exp(−2R/λ) folded in), Å.
    phase : ndarray
        Phase δ(k) in rad, such that the total phase is 2kR + δ(k).
    r_ref, n_ref, sigma2_ref : float
        Distance (Å), coordination number and σ² (Å²) of the shell it came from.
    source : str
        ``"empirical"`` or ``"feff"``.
    provenance : dict
        JSON-able record of where it came from (file, window, N, R, σ², program...).
    lam : ndarray, optional
        Mean free path λ(k), Å, of the same absorber–scatterer pair (from FEFF); ``None``: no
        mean-free-path transfer.
    preal : ndarray, optional
        Real part p′(k) of the complex photo-electron momentum, Å⁻¹ (from FEFF); ``None``: k.
    """

    name: str
    k: np.ndarray
    amp: np.ndarray
    phase: np.ndarray
    r_ref: float
    n_ref: float
    sigma2_ref: float
    source: str
    provenance: dict = field(default_factory=dict)
    lam: np.ndarray | None = None
    preal: np.ndarray | None = None

    @property
    def lam_inv(self) -> np.ndarray | None:
        """1/λ(k), Å⁻¹ (``None`` without a mean free path)."""
        if self.lam is None:
            return None
        with np.errstate(divide="ignore"):
            return np.where(self.lam > 0, 1.0 / np.maximum(self.lam, 1e-300), 0.0)

    def chi(self, *, n: float, r: float | None = None, sigma2: float | None = None,
            de0: float = 0.0) -> np.ndarray:
        """χ(k) of this path on ``self.k`` for one parameter set (N, R in Å, σ² in Å², ΔE0 in eV)."""
        r = self.r_ref if r is None else r
        sigma2 = self.sigma2_ref if sigma2 is None else sigma2
        one = lambda v: np.array([[float(v)]])  # noqa: E731
        li = self.lam_inv
        return path_chi(self.k, amp=self.amp[None], phase=self.phase[None], r0=[self.r_ref],
                        sigma2_0=[self.sigma2_ref], n=one(n), r=one(r), sigma2=one(sigma2), de0=one(de0),
                        lam_inv=None if li is None else li[None],
                        preal=None if self.preal is None else self.preal[None])[0, 0]


def extract_path(data, *, name: str, n: float, r: float, sigma2: float, rmin: float, rmax: float,
                 dr: float = 0.2, rwindow: str = "hanning", kmin: float | None = None,
                 kmax: float | None = None, dk: float | None = None, window: str | None = None,
                 kweight: float | None = None, reference: str | None = None) -> Path:
    """Empirical ("model-free") path from one shell of a measured reference spectrum.

    The reference χ(k) is Fourier filtered (larch ``xftf`` over the k window, ``xftr`` over
    the R window ``rmin``–``rmax``) to the complex back-transform c(k).  For one shell
    χ = A(k) sin θ(k), larch's conventions give c ≈ Ω(k) k^w A(k) (sin θ − i cos θ), so

    * ``A(k) = |c| / (Ω(k) k^w)`` (Ω the k window, w the k weight),
    * ``θ(k) = unwrap(arg c) + π/2``  (the **π/2 convention**: larch's back-transform phase
      lags the sine argument by π/2),

    and, with the shell's known (N, R, σ²) (paper eqn 2–3, S0² and exp(−2R/λ) folded into F):

    * ``F(k) = A(k) · k R² · exp(2σ² k²) / N``,
    * ``δ(k) = θ(k) − 2kR``  (**sign**: total phase 2kR + δ, as in FEFF), shifted by a
      multiple of 2π so that δ at the window centre lies in [−π, π].

    A and θ are taken on [kmin, kmax]; outside it A is held at its end values and θ is
    continued linearly (these values only enter a fit through the window taper).

    Self-consistency: ``path.chi(n=n)`` filtered with the same operator
    (``FourierFilter(**path.provenance["filter"])``) reproduces the filtered reference.  The
    fit must use that operator (same k window, k weight and R window): the R window cuts the
    tails of the shell, and only the same cut on the model cancels it.  Accuracy of F and δ
    themselves is limited by the spectral leakage of the k window: for a synthetic shell a
    Kaiser window (dk = 4) returns F and δ to ~1e-4, the paper's Hanning window (dk = 1) to
    ~1e-2 near the tapers and a few 1e-3 inside.

    Parameters
    ----------
    data : Reduced or (k, chi)
        The reference: a reduced spectrum (its ``source`` and k-window settings are the
        defaults) or arrays k (Å⁻¹) and χ(k).
    name : str
        Path label, e.g. ``"Cd-S"``.
    n, r, sigma2 : float
        Coordination number, distance (Å) and σ² (Å²) of the shell in the reference.
    rmin, rmax, dr : float
        R window and its taper, Å (uncorrected for phase, as in |χ(R)|).
    rwindow : str
        R-window shape (larch name).
    kmin, kmax, dk : float, optional
        k window and taper, Å⁻¹ (default: the Reduced settings, else 2, 16.5, 1).
    window : str, optional
        k-window shape (default the Reduced settings, else ``"hanning"``).
    kweight : float, optional
        k weight of the forward transform (default the Reduced settings, else 2).
    reference : str, optional
        Reference file for the provenance (default ``data.source``).

    Returns
    -------
    Path
        ``source="empirical"``; ``provenance`` holds reference, N, R, σ², the filter
        (``FourierFilter.to_dict()``) and the k range where F and δ were measured.
    """
    from xasmpi.exafs.reduce import FourierFilter

    if hasattr(data, "settings"):
        k_in, chi_in, st = data.k, data.chi, data.settings
        reference = reference or data.source
        defaults = dict(kmin=st.kmin, kmax=st.kmax, dk=st.dk, window=st.window, kweight=st.kweight)
    else:
        k_in, chi_in = data
        defaults = dict(kmin=2.0, kmax=16.5, dk=1.0, window="hanning", kweight=2.0)
    given = dict(kmin=kmin, kmax=kmax, dk=dk, window=window, kweight=kweight)
    opts = {key: defaults[key] if val is None else val for key, val in given.items()}
    filt = FourierFilter(rmin=rmin, rmax=rmax, dr=dr, rwindow=rwindow, **opts)
    k = kgrid()
    chi = np.interp(k, k_in, chi_in, right=0.0)
    c = filt.apply(k, chi)
    valid = (k >= filt.kmin) & (k <= filt.kmax)
    z = c[valid] / (filt.kwindow(k)[valid] * k[valid] ** filt.kweight)
    amp = np.interp(k, k[valid], np.abs(z))
    theta = np.empty_like(k)
    theta[valid] = np.unwrap(np.angle(z)) + np.pi / 2
    i0, i1 = np.flatnonzero(valid)[[0, -1]]
    m = 10  # points (0.5 Å⁻¹) for the end slopes of the phase
    theta[:i0] = theta[i0] + (k[:i0] - k[i0]) * (theta[i0 + m] - theta[i0]) / (k[i0 + m] - k[i0])
    theta[i1 + 1:] = theta[i1] + (k[i1 + 1:] - k[i1]) * (theta[i1] - theta[i1 - m]) / (k[i1] - k[i1 - m])
    famp = amp * k * r * r * np.exp(2.0 * sigma2 * k * k) / n
    delta = theta - 2.0 * k * r
    mid = np.argmin(np.abs(k - 0.5 * (filt.kmin + filt.kmax)))
    delta -= 2.0 * np.pi * np.round(delta[mid] / (2.0 * np.pi))
    prov = {"reference": None if reference is None else str(reference), "n": float(n), "r": float(r),
            "sigma2": float(sigma2), "filter": filt.to_dict(), "k_valid": [float(filt.kmin), float(filt.kmax)],
            "phase_convention": "delta = unwrap(arg(xftr chiq)) + pi/2 - 2kR"}
    return Path(name=name, k=k, amp=famp, phase=delta, r_ref=float(r), n_ref=float(n),
                sigma2_ref=float(sigma2), source="empirical", provenance=prov)
