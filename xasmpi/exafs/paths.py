"""Scattering paths: effective amplitude F(k) and phase δ(k) on a common k grid.

Convention (see docs/architecture.md)::

    χ_j(k) = N_j · F_j(k) / (k R_j²) · exp(−2 σ_j² k²) · sin(2 k R_j + δ_j(k))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: 2 m_e / ħ² in eV⁻¹ Å⁻²: k² = ETOK · (E − E0)
ETOK = 0.2624682843
#: the common k grid step, Å⁻¹ (larch's)
KSTEP = 0.05


def kgrid(kmax: float = 20.0) -> np.ndarray:
    """Common uniform k grid ``0, 0.05, …, kmax`` (Å⁻¹)."""
    return np.arange(int(round(kmax / KSTEP)) + 1) * KSTEP


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

    def chi(self, *, n: float, r: float | None = None, sigma2: float | None = None,
            de0: float = 0.0) -> np.ndarray:
        """χ(k) of this path on ``self.k`` for one parameter set (N, R in Å, σ² in Å², ΔE0 in eV)."""
        r = self.r_ref if r is None else r
        sigma2 = self.sigma2_ref if sigma2 is None else sigma2
        k = self.k
        if de0:
            kp = np.sqrt(np.clip(k * k - ETOK * de0, 0.0, None))
            amp = np.interp(kp, k, self.amp)
            phase = np.interp(kp, k, self.phase)
        else:
            kp, amp, phase = k, self.amp, self.phase
        with np.errstate(divide="ignore", invalid="ignore"):
            out = n * amp / (kp * r * r) * np.exp(-2.0 * sigma2 * kp * kp) * np.sin(2.0 * kp * r + phase)
        out[kp <= 0] = 0.0
        return out
