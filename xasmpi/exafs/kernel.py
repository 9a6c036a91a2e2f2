"""The bottom of ``xasmpi.exafs``: constants, the window list and the one EXAFS path equation.

Every module that evaluates a path (:class:`~xasmpi.exafs.paths.Path`, the batched
:class:`~xasmpi.exafs.model.PathModel`, the replicate engine through it, the demo generator's
plane-wave option) calls :func:`path_chi` (paths with dependent multiple-scattering components
through :func:`tables_chi`); nothing else writes the EXAFS equation.

Path transfer
-------------
A path carries tables on the uniform grid ``k = 0, 0.05, …`` Å⁻¹, measured (empirical path)
or computed (FEFF path) at a *reference state* (``R0``, ``σ0²``, ΔE0 = 0):

* ``F(k)`` (Å) and ``δ(k)`` (rad), defined by the reference χ itself::

      χ_ref(k) = N_ref F(k) / (k R0²) · exp(−2 σ0² k²) · sin(2 k R0 + δ(k))

  so ``F`` and ``δ`` absorb S0², the mean-free-path factor exp(−2R0/λ) and every σ0²
  correction of the reference;
* optionally the mean free path ``λ(k)`` (Å) and the real part ``p′(k)`` (Å⁻¹) of FEFF's
  complex photo-electron momentum ``p = p′ + i/λ`` for the same absorber–scatterer pair.

Moving the path to another state (N, R = R0 + ΔR, σ² = σ0² + Δσ², ΔE0) follows FEFF's
path equation exactly as larch evaluates it (``larch.xafs.feffdat.FeffPathGroup._calc_chi``,
without third/fourth cumulants and imaginary energy)::

    χ = Im[ N S0² f(q) / (q R²) · exp(−2 R0 p″ − 2 p² σ² + i(2 q R0 + φ(q) + 2p(ΔR − 2σ²/R0))) ]

with ``q = sqrt(k² − ETOK·ΔE0)`` and ``p″ = 1/λ``.  Dividing by the same expression at the
reference state and writing ``p² = p′² − p″² + 2i p′p″``::

    χ = n F(q) / (q R²) · exp(−2σ0² q² − 2Δσ² (p′² − p″²) − 2 p″ ΔR + 4 p″ Δσ² / R0)
        · sin(2 q R0 + δ(q) + 2 p′ ΔR − 4 Δσ² p′ (p″ + 1/R0))

(``n = N·S0²`` relative to the reference's S0²).  Each term has a meaning:

* ``−2 p″ ΔR = −2ΔR/λ``: the mean-free-path factor moves from exp(−2R0/λ) to exp(−2R/λ);
* ``−2Δσ² (p′² − p″²)`` and ``−4 Δσ² p′ p″``: the Debye–Waller factor with the complex momentum
  (larch/FEFF ``exp(−2p²σ²)``), i.e. the σ²-dependent amplitude and phase of the cumulant
  expansion at complex p;
* ``−4 Δσ² p′ / R0`` and ``+4 p″ Δσ²/R0``: the curved-wave ``2σ²/R`` term of the phase;
* ``2 p′ ΔR`` instead of ``2 q ΔR``: the distance change enters with the real momentum.

Without λ and p′ (an empirical path without a FEFF calculation) the plane-wave limit
``p′ = q, p″ = 0`` is used, which still carries the ``−4 Δσ² q / R0`` phase term.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xasmpi.errors import ConfigError

#: 2 m_e / ħ² in eV⁻¹ Å⁻²: k² = ETOK · (E − E0)  (larch's value)
ETOK = 0.2624682843
#: the common k grid step, Å⁻¹ (larch's)
KSTEP = 0.05
#: larch ``ftwindow`` window names accepted everywhere (reduction, extraction, fit)
WINDOWS = ("hanning", "kaiser", "parzen", "welch", "sine", "gaussian", "fhanning", "bessel")


def kgrid(kmax: float = 20.0) -> np.ndarray:
    """Common uniform k grid ``0, 0.05, …, kmax`` (Å⁻¹)."""
    return np.arange(int(round(kmax / KSTEP)) + 1) * KSTEP


def check_window(name: str, what: str) -> str:
    """Validate a window name against :data:`WINDOWS` (larch accepts its first three letters).

    Raises
    ------
    ConfigError
        Naming ``what`` (the key or object) and the valid names.
    """
    if not isinstance(name, str) or name.strip().lower()[:3] not in {w[:3] for w in WINDOWS}:
        raise ConfigError(f"{what}: unknown window {name!r} (use one of {', '.join(WINDOWS)})")
    return name


def _at(table: np.ndarray, i0: np.ndarray, f: np.ndarray, jj) -> np.ndarray:
    return table[jj, i0] * (1.0 - f) + table[jj, i0 + 1] * f


def path_chi(k: np.ndarray, *, amp: np.ndarray, phase: np.ndarray, r0: np.ndarray, sigma2_0: np.ndarray,
             n: np.ndarray, r: np.ndarray, sigma2: np.ndarray, de0: np.ndarray,
             lam_inv: np.ndarray | None = None, preal: np.ndarray | None = None) -> np.ndarray:
    """χ_j(k) of paths moved from their reference state (see the module docstring).

    Parameters
    ----------
    k : ndarray
        Uniform grid ``0, KSTEP, …`` Å⁻¹, shape ``(nk,)``; the tables are on this grid.
    amp, phase : ndarray
        ``(P, nk)`` F(k) (Å) and δ(k) (rad) of each path at its reference state.
    r0, sigma2_0 : ndarray
        ``(P,)`` reference distance (Å) and σ² (Å²).
    n, r, sigma2, de0 : ndarray
        ``(m, P)`` N·S0², R (Å), σ² (Å²) and ΔE0 (eV) for a population of ``m`` states.
    lam_inv : ndarray, optional
        ``(P, nk)`` 1/λ(k) (Å⁻¹); zero (no mean-free-path transfer) when omitted.
    preal : ndarray, optional
        ``(P, nk)`` real momentum p′(k) (Å⁻¹); ``k`` when omitted.

    Returns
    -------
    ndarray
        ``(m, P, nk)`` χ_j(k), zero where ``k² <= ETOK·ΔE0``.
    """
    k = np.asarray(k, dtype=float)
    nk = k.size
    npath = amp.shape[0]
    r0 = np.asarray(r0, dtype=float)[None, :, None]
    s0 = np.asarray(sigma2_0, dtype=float)[None, :, None]
    n, r, sigma2, de0 = (np.asarray(a, dtype=float)[..., None] for a in (n, r, sigma2, de0))
    if np.any(de0 != 0.0):
        q = np.sqrt(np.clip(k * k - ETOK * de0, 0.0, None))               # (m, P, nk)
        x = q / KSTEP
        i0 = np.minimum(x.astype(np.intp), nk - 2)
        f = x - i0
        jj = np.arange(npath)[None, :, None]
        a = _at(amp, i0, f, jj)
        ph = _at(phase, i0, f, jj)
        pi = None if lam_inv is None else _at(lam_inv, i0, f, jj)
        pr = q if preal is None else _at(preal, i0, f, jj)
    else:
        q = k[None, None, :]
        a, ph = amp[None], phase[None]
        pi = None if lam_inv is None else lam_inv[None]
        pr = q if preal is None else preal[None]
    dr = r - r0
    ds = sigma2 - s0
    expo = -2.0 * s0 * q * q - 2.0 * ds * pr * pr
    arg = 2.0 * q * r0 + ph + 2.0 * pr * dr - 4.0 * ds * pr / r0
    if pi is not None:
        expo = expo + 2.0 * ds * pi * pi - 2.0 * pi * dr + 4.0 * pi * ds / r0
        arg = arg - 4.0 * ds * pr * pi
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        chi = n * a / (q * r * r) * np.exp(expo) * np.sin(arg)
    return np.where(np.broadcast_to(q, chi.shape) > 0, chi, 0.0)


def tables_chi(k: np.ndarray, t: dict, *, n: np.ndarray, r: np.ndarray, sigma2: np.ndarray,
               de0: np.ndarray) -> np.ndarray:
    """χ_j(k) of paths and their dependent components (tables of :func:`xasmpi.exafs.paths.path_tables`).

    A dependent component d of path j (a multiple-scattering path folded into it) moves with
    its parent: ``n_d = ratio_d · n_j``, ``R_d = R0_d + fr_d (R_j − R0_j)``,
    ``σ²_d = σ0²_d + fs_d (σ²_j − σ0²_j)``, ``ΔE0_d = ΔE0_j``, and :func:`path_chi` evaluates it
    like any path; its χ is added to its parent's.

    Parameters
    ----------
    k : ndarray
        ``(nk,)`` grid, Å⁻¹.
    t : dict
        Tables: ``amp``, ``phase``, ``r0``, ``s0``, ``lam_inv``, ``preal`` over the ``P`` paths
        followed by the ``D`` dependents, and ``parent`` (``(D,)`` int), ``ratio``, ``fr``, ``fs``.
    n, r, sigma2, de0 : ndarray
        ``(m, P)`` parameters of the paths.

    Returns
    -------
    ndarray
        ``(m, P, nk)``.
    """
    par = t["parent"]
    npath = np.asarray(n).shape[-1]
    if par.size:
        r0, s0 = t["r0"], t["s0"]
        n = np.concatenate([n, n[:, par] * t["ratio"]], axis=1)
        r = np.concatenate([r, r0[npath:] + t["fr"] * (r[:, par] - r0[par])], axis=1)
        sigma2 = np.concatenate([sigma2, s0[npath:] + t["fs"] * (sigma2[:, par] - s0[par])], axis=1)
        de0 = np.concatenate([de0, de0[:, par]], axis=1)
    chi = path_chi(k, amp=t["amp"], phase=t["phase"], r0=t["r0"], sigma2_0=t["s0"], n=n, r=r, sigma2=sigma2,
                   de0=de0, lam_inv=t["lam_inv"], preal=t["preal"])
    if not par.size:
        return chi
    out = chi[:, :npath].copy()
    np.add.at(out, (slice(None), par), chi[:, npath:])
    return out


# ---------------------------------------------------------------------------- the one filter operator
def kwindow(k: np.ndarray, *, kmin: float, kmax: float, dk: float, window: str) -> np.ndarray:
    """The k window Ω(k) (larch ``ftwindow``: tapers of width ``dk`` centred on ``kmin``/``kmax``)."""
    from larch.xafs.xafsft import ftwindow

    return ftwindow(np.asarray(k, dtype=float), xmin=kmin, xmax=kmax, dx=dk, window=window)


def forward_matrix(nk: int, *, kmin: float, kmax: float, dk: float, window: str, kweight: float,
                   nfft: int = 2048) -> np.ndarray:
    """Complex matrix ``(nfft/2, nk)``: χ on ``k = 0, KSTEP, …`` → larch ``xftf`` χ(R).

    χ(R) is on ``R = j·π/(KSTEP·nfft)`` Å, in Å^-(kweight+1), with larch's normalisation
    ``KSTEP/√π`` of the FFT of Ω(k)·k^w·χ(k).
    """
    k = np.arange(nk) * KSTEP
    x = np.zeros((nk, nfft))
    x[np.arange(nk), np.arange(nk)] = kwindow(k, kmin=kmin, kmax=kmax, dk=dk, window=window) * k ** kweight
    return np.ascontiguousarray(((KSTEP / np.sqrt(np.pi)) * np.fft.fft(x, axis=1)[:, : nfft // 2]).T)


def filter_matrix(nk: int, *, kmin: float, kmax: float, dk: float, window: str, kweight: float,
                  rmin: float, rmax: float, dr: float, rwindow: str, nfft: int = 2048) -> np.ndarray:
    """Complex matrix ``(nk, nk)``: χ(k) → Fourier-filtered complex χ(q) on the same grid.

    Forward larch ``xftf`` (k weight, k window, ``nfft``-point FFT), R window, larch ``xftr``
    (with its factor 1/2 for complex χ(R)), so that for one shell χ = A sin θ inside both
    windows the result is ≈ Ω(k) k^w A (sin θ − i cos θ).  The fit space (``q``) is the real
    part of its rows ``kmin ≤ q < kmax``; the empirical-path extraction uses the complex value.
    Used by both, so extraction and fit apply the same operator by construction.
    """
    from larch.xafs.xafsft import ftwindow

    fwd = forward_matrix(nk, kmin=kmin, kmax=kmax, dk=dk, window=window, kweight=kweight, nfft=nfft)
    r = (np.pi / (KSTEP * nfft)) * np.arange(nfft)
    rwin = ftwindow(r, xmin=rmin, xmax=rmax, dx=dr, window=rwindow)[: nfft // 2]
    y = np.zeros((nk, nfft), dtype=complex)
    y[:, : nfft // 2] = fwd.T * rwin
    chiq = 0.5 * (4 * np.sqrt(np.pi) / KSTEP) * np.fft.ifft(y, axis=1)
    return np.ascontiguousarray(chiq[:, :nk].T)


@dataclass(frozen=True)
class FourierFilter:
    """Fourier filter χ(k) → complex χ(q): larch ``xftf`` over a k window, ``xftr`` over an R window.

    Parameters
    ----------
    kmin, kmax : float
        k window, Å⁻¹ (larch convention: the taper of width ``dk`` is centred on each end).
    dk : float
        k-window taper, Å⁻¹.
    window : str
        k-window shape (larch ``ftwindow`` name).
    kweight : float
        χ(k) is multiplied by k**kweight before the forward transform.
    rmin, rmax : float
        R window, Å.
    dr : float
        R-window taper, Å.  Adjacent Hanning R windows with the same ``dr`` sum to the
        window over their union, so the filters of neighbouring shells add up exactly.
    rwindow : str
        R-window shape.
    """

    kmin: float = 2.0
    kmax: float = 16.5
    dk: float = 1.0
    window: str = "hanning"
    kweight: float = 2.0
    rmin: float = 1.0
    rmax: float = 3.0
    dr: float = 0.2
    rwindow: str = "hanning"

    def __post_init__(self):
        if not 0 <= self.kmin < self.kmax:
            raise ConfigError(f"Fourier filter: need 0 <= kmin < kmax, got kmin={self.kmin}, kmax={self.kmax}")
        if not 0 <= self.rmin < self.rmax:
            raise ConfigError(f"Fourier filter: need 0 <= rmin < rmax, got rmin={self.rmin}, rmax={self.rmax}")
        if self.dk < 0 or self.dr < 0:
            raise ConfigError(f"Fourier filter: tapers must be >= 0, got dk={self.dk}, dr={self.dr}")
        check_window(self.window, "Fourier filter")
        check_window(self.rwindow, "Fourier filter")

    def to_dict(self) -> dict:
        """JSON-able form (``FourierFilter(**d)`` rebuilds it)."""
        return asdict(self)

    def kwindow(self, k: np.ndarray) -> np.ndarray:
        """The k window Ω(k) on ``k`` (larch ``ftwindow``)."""
        return kwindow(k, kmin=self.kmin, kmax=self.kmax, dk=self.dk, window=self.window)

    def matrix(self, nk: int) -> np.ndarray:
        """Complex ``(nk, nk)`` operator on the grid ``0, KSTEP, …`` (:func:`~xasmpi.exafs.kernel.filter_matrix`,
        the same operator the fit space applies)."""
        return filter_matrix(nk, kmin=self.kmin, kmax=self.kmax, dk=self.dk, window=self.window,
                             kweight=self.kweight, rmin=self.rmin, rmax=self.rmax, dr=self.dr, rwindow=self.rwindow)

    def apply(self, k: np.ndarray, chi: np.ndarray) -> np.ndarray:
        """Filtered complex χ(q) on ``k`` (Å⁻¹): k-weighted and k-windowed, as larch's ``chiq``.

        For a single shell χ = A(k) sin(θ(k)) inside the windows, the result is
        ≈ Ω(k) k^w A (sin θ − i cos θ), i.e. its phase is θ − π/2.
        """
        k = np.asarray(k, dtype=float)
        nk = int(round(max(float(np.max(k)), self.kmax + self.dk) / KSTEP)) + 2
        grid = np.arange(nk) * KSTEP
        c = self.matrix(nk) @ np.interp(grid, k, np.asarray(chi, dtype=float), right=0.0)
        return np.interp(k, grid, c.real) + 1j * np.interp(k, grid, c.imag)
