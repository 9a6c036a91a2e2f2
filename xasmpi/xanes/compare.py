"""Compare simulated and measured XANES: normalise, edge, align + broaden, LCF, ranking.

Normalisation
-------------
Measured and simulated spectra go through the *same* larch ``pre_edge`` call
(:class:`NormSettings`): constant (or line) through the pre-edge ``e0+pre1 .. e0+pre2``, polynomial of
degree ``nnorm`` through the post-edge ``e0+norm1 .. e0+norm2``, normalised to an edge step
of 1.  The defaults (-18..-8 eV, +30..+90 eV, linear post-edge) fit inside a simulated range
of -20..+100 eV, so a measured spectrum and an FDMNES spectrum computed over the issue's
-20..+100 eV window are treated identically.  The edge energy ``e0`` is the maximum of the
first derivative dμ/dE (paper, Fig. 3a,b); the derivative is kept for plotting.

Alignment model
---------------
A normalised simulated spectrum ``s(E)`` (energies relative to the FDMNES Fermi level) is
compared with a normalised measured spectrum ``y(E)`` through::

    m(E) = scale * [s ⊛ V(gauss_fwhm, lorentz_fwhm)](E - shift)

``V`` is a unit-area Voigt kernel (Gaussian and Lorentzian FWHM in eV) on top of FDMNES's own
convolution: the measured Cd K edge (core-hole width ~7 eV plus 10 K Si(220) resolution) is
broader than FDMNES's default convolution.  Bounds (:class:`AlignSettings`): ``shift`` within
``±shift_range`` eV of the derivative-edge alignment, each FWHM in ``[0, max_broadening]``
eV, ``scale`` in ``[1 - scale_range, 1 + scale_range]``.  The fit minimises the residual
over ``e0 + window`` of the measured spectrum and reports the XANES R-factor
``R = Σ (y - m)² / Σ y²``.  Parameters that end at a bound are listed in
:attr:`Alignment.at_bounds`.  This *free* alignment (three or four parameters per candidate)
blunts the discrimination between candidates; it is kept as an explicit option.

Physical broadening (the default of the ``xanes`` stage)
--------------------------------------------------------
FDMNES convolves the cross-section with the tabulated core-hole width
(:data:`CORE_HOLE_FWHM`, Lorentzian, plus its energy-dependent final-state width); the comparison
adds only the known beamline resolution as a Gaussian of FWHM ``resolution × E_edge`` (the paper's
ΔE/E = 1.4 × 10⁻⁴ gives 3.7 eV at the Cd K edge, 0.50 eV at L3), keeps ``scale = 1`` after
normalisation and uses **one** energy shift for every candidate, fitted once on a bulk reference
pair (:func:`calibrate_shift`, e.g. zinc-blende CdS against the measured bulk CdS).  Nothing is
fitted per candidate, so the R-factors rank structures, not fitting freedom (:func:`align_fixed`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares, nnls
from scipy.special import voigt_profile

from xasmpi.errors import InputError

#: Core-hole (natural) level widths, eV FWHM: Krause & Oliver, J. Phys. Chem. Ref. Data 8, 329
#: (1979), K and L3 levels of Cd (other edges/elements: set ``[xanes] gamma_hole``).
CORE_HOLE_FWHM = {("Cd", "K"): 7.28, ("Cd", "L3"): 2.62}


def core_hole_fwhm(element: str, edge: str) -> float:
    """Tabulated core-hole width (eV FWHM) of ``element``'s ``edge`` (:data:`CORE_HOLE_FWHM`).

    Raises
    ------
    InputError
        Not tabulated: set ``[xanes] gamma_hole`` explicitly.
    """
    try:
        return CORE_HOLE_FWHM[(element, edge)]
    except KeyError:
        raise InputError(f"core-hole width of {element} {edge} is not tabulated "
                         f"({', '.join(f'{e} {k}' for e, k in CORE_HOLE_FWHM)}); set [xanes] gamma_hole") from None


@dataclass(frozen=True)
class NormSettings:
    """larch ``pre_edge`` ranges (eV, relative to ``e0``) shared by measured and simulated spectra.

    Attributes
    ----------
    pre1, pre2 : float
        Pre-edge line range, default -18 .. -8 eV.
    norm1, norm2 : float
        Post-edge polynomial range, default +30 .. +90 eV.
    nnorm : int
        Post-edge polynomial degree (0, 1 or 2), default 1.
    npre : int
        Pre-edge polynomial degree (0 constant, 1 line), default 0: a line fitted over the
        short common pre-edge range (10 eV) extrapolates badly over the post-edge.
    """

    pre1: float = -18.0
    pre2: float = -8.0
    norm1: float = 30.0
    norm2: float = 90.0
    nnorm: int = 1
    npre: int = 0

    def __post_init__(self) -> None:
        if not (self.pre1 < self.pre2 < 0 < self.norm1 < self.norm2) or self.nnorm not in (0, 1, 2) \
                or self.npre not in (0, 1):
            raise InputError(f"normalisation ranges {self}: need pre1 < pre2 < 0 < norm1 < norm2, "
                             "nnorm in 0, 1, 2 and npre in 0, 1")


@dataclass(frozen=True)
class Normalized:
    """A normalised XANES spectrum.

    Attributes
    ----------
    energy : ndarray
        Energies (eV).
    mu : ndarray
        Input absorption.
    norm : ndarray
        Normalised absorption (edge step 1).
    dnorm : ndarray
        First derivative d(norm)/dE (1/eV).
    e0 : float
        Edge energy (eV): maximum of the first derivative.
    edge_step : float
        Edge step of ``mu`` from the pre/post-edge lines.
    """

    energy: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    norm: np.ndarray = field(repr=False)
    dnorm: np.ndarray = field(repr=False)
    e0: float
    edge_step: float


def _check_xy(energy, mu, what: str) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(energy, float)
    y = np.asarray(mu, float)
    if e.ndim != 1 or e.shape != y.shape or e.size < 10:
        raise InputError(f"{what}: energy and mu must be 1-D arrays of the same length (>= 10)")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(y))):
        raise InputError(f"{what}: energy or mu has NaN/inf values")
    if np.any(np.diff(e) <= 0):
        raise InputError(f"{what}: energies must be strictly increasing")
    return e, y


def edge_energy(energy: np.ndarray, mu: np.ndarray) -> tuple[float, np.ndarray]:
    """Edge energy as the maximum of the first derivative.

    Parameters
    ----------
    energy, mu : ndarray
        Spectrum (eV, any absorption units).

    Returns
    -------
    (float, ndarray)
        ``e0`` (eV; refined by a parabola through the derivative maximum and its neighbours)
        and dμ/dE on ``energy``.
    """
    e, y = _check_xy(energy, mu, "edge energy")
    d = np.gradient(y, e)
    k = int(np.argmax(d))
    if 0 < k < len(e) - 1:
        x, f = e[k - 1:k + 2], d[k - 1:k + 2]
        a, b, _ = np.polyfit(x - x[1], f, 2)
        if a < 0:
            return float(np.clip(x[1] - b / (2 * a), x[0], x[2])), d
    return float(e[k]), d


def normalize(energy: np.ndarray, mu: np.ndarray, *, settings: NormSettings = NormSettings(),
              name: str = "spectrum") -> Normalized:
    """Normalise a XANES spectrum with larch ``pre_edge`` (edge = max of dμ/dE).

    Parameters
    ----------
    energy : ndarray
        Energies (eV), strictly increasing.
    mu : ndarray
        Absorption (any units).
    settings : NormSettings
        Pre/post-edge ranges, the same for measured and simulated spectra.
    name : str
        Name used in error messages.

    Returns
    -------
    Normalized

    Raises
    ------
    InputError
        Bad arrays, pre/post-edge ranges not covered by the data, or a non-positive edge step.
    """
    from larch import Group
    from larch.xafs import pre_edge

    e, y = _check_xy(energy, mu, name)
    e0, _ = edge_energy(e, y)
    s = settings
    for lo, hi, what in ((s.pre1, s.pre2, "pre-edge"), (s.norm1, s.norm2, "post-edge")):
        if np.count_nonzero((e >= e0 + lo) & (e <= e0 + hi)) < 3:
            raise InputError(f"{name}: fewer than 3 points in the {what} range "
                             f"e0{lo:+g}..e0{hi:+g} eV (e0 = {e0:.2f} eV, data "
                             f"{e[0]:.2f}..{e[-1]:.2f} eV)")
    g = Group()
    pre_edge(e, y, group=g, e0=e0, pre1=s.pre1, pre2=s.pre2, norm1=s.norm1, norm2=s.norm2,
             nnorm=s.nnorm, npre=s.npre, nvict=0)
    if not g.edge_step > 0:
        raise InputError(f"{name}: edge step {g.edge_step:g} is not positive")
    norm = np.asarray(g.norm, float)
    return Normalized(energy=e, mu=y, norm=norm, dnorm=np.gradient(norm, e), e0=e0,
                      edge_step=float(g.edge_step))


def broaden(energy: np.ndarray, mu: np.ndarray, *, gauss_fwhm: float = 0.0,
            lorentz_fwhm: float = 0.0, step: float = 0.25) -> np.ndarray:
    """Convolve a spectrum with a unit-area Voigt kernel.

    The spectrum is resampled on a uniform grid of ``step`` eV, padded with its end values
    (so edge steps are kept), convolved and interpolated back on ``energy``.

    Parameters
    ----------
    energy, mu : ndarray
        Spectrum (eV).
    gauss_fwhm, lorentz_fwhm : float
        Gaussian and Lorentzian full widths at half maximum (eV, >= 0).
    step : float
        Working grid step (eV).

    Returns
    -------
    ndarray
        Broadened ``mu`` on ``energy``.
    """
    if gauss_fwhm < 0 or lorentz_fwhm < 0:
        raise InputError(f"broadening widths must be >= 0 (gauss {gauss_fwhm}, "
                         f"lorentz {lorentz_fwhm} eV)")
    e = np.asarray(energy, float)
    y = np.asarray(mu, float)
    if gauss_fwhm < 1e-3 and lorentz_fwhm < 1e-3:
        return y.copy()
    sigma = gauss_fwhm / (2 * np.sqrt(2 * np.log(2)))
    gamma = lorentz_fwhm / 2  # Lorentzian HWHM
    half = 5 * (sigma + gamma) + 4 * step + 10 * gamma  # kernel half-width (eV)
    n_half = int(np.ceil(half / step))
    grid = np.arange(e[0] - n_half * step, e[-1] + (n_half + 1) * step, step)
    yg = np.interp(grid, e, y)  # constant extension outside the data
    x = step * np.arange(-n_half, n_half + 1)
    kernel = voigt_profile(x, sigma, gamma)
    kernel /= kernel.sum()
    yc = np.convolve(yg, kernel, mode="same")
    return np.interp(e, grid, yc)


@dataclass(frozen=True)
class AlignSettings:
    """Bounds and window of :func:`align` (all eV except ``scale_range``).

    Attributes
    ----------
    window : (float, float)
        Fit window relative to the measured ``e0``, default (-20, 100).
    shift_range : float
        ``shift`` may move this far from the derivative-edge alignment, default 15.
    max_broadening : float
        Upper bound of each extra FWHM (Gaussian and Lorentzian), default 20.
    scale_range : float
        ``scale`` in ``[1 - scale_range, 1 + scale_range]``, default 0.3.
    fit_broadening : bool
        Fit the extra broadening (True) or shift and scale only (False).
    """

    window: tuple = (-20.0, 100.0)
    shift_range: float = 15.0
    max_broadening: float = 20.0
    scale_range: float = 0.3
    fit_broadening: bool = True

    def __post_init__(self) -> None:
        if not (len(self.window) == 2 and self.window[0] < self.window[1]):
            raise InputError(f"alignment window {self.window}: need (low, high) with low < high")
        if self.shift_range <= 0 or self.max_broadening <= 0 or not 0 <= self.scale_range < 1:
            raise InputError("alignment bounds: need shift_range > 0, max_broadening > 0, "
                             "0 <= scale_range < 1")


@dataclass(frozen=True)
class Alignment:
    """Result of :func:`align`.

    Attributes
    ----------
    shift : float
        Energy shift (eV): simulated energy + shift = measured energy.
    gauss_fwhm, lorentz_fwhm : float
        Extra broadening (eV FWHM).
    scale : float
        Amplitude scale of the normalised simulated spectrum.
    r_factor : float
        ``Σ (y - m)² / Σ y²`` over the window.
    energy : ndarray
        Measured energies in the window (eV).
    data, model : ndarray
        Normalised measured spectrum and aligned model on ``energy``.
    at_bounds : tuple of str
        Names of parameters that ended at a bound (the fit may be limited by it); a
        broadening of 0 is not flagged.
    """

    shift: float
    gauss_fwhm: float
    lorentz_fwhm: float
    scale: float
    r_factor: float
    energy: np.ndarray = field(repr=False)
    data: np.ndarray = field(repr=False)
    model: np.ndarray = field(repr=False)
    at_bounds: tuple = ()


def _window(meas: Normalized, window: Sequence[float]) -> np.ndarray:
    m = (meas.energy >= meas.e0 + window[0]) & (meas.energy <= meas.e0 + window[1])
    if np.count_nonzero(m) < 10:
        raise InputError(f"window e0{window[0]:+g}..e0{window[1]:+g} eV holds fewer than "
                         "10 measured points")
    return m


def align(simulated: Normalized, measured: Normalized, *,
          settings: AlignSettings = AlignSettings()) -> Alignment:
    """Fit shift, extra Voigt broadening and scale of a simulated spectrum to a measured one.

    Parameters
    ----------
    simulated : Normalized
        Normalised simulated spectrum (energies relative, e.g. FDMNES output).
    measured : Normalized
        Normalised measured spectrum (absolute energies).
    settings : AlignSettings
        Window and bounds (see module docstring).

    Returns
    -------
    Alignment

    Raises
    ------
    InputError
        If the simulated spectrum, shifted within its bounds, cannot cover the window.
    """
    s = settings
    mask = _window(measured, s.window)
    e, y = measured.energy[mask], measured.norm[mask]
    shift0 = measured.e0 - simulated.e0
    if (e[0] < simulated.energy[0] + shift0 - s.shift_range
            or e[-1] > simulated.energy[-1] + shift0 + s.shift_range):
        raise InputError(
            f"simulated range {simulated.energy[0]:g}..{simulated.energy[-1]:g} eV (edge "
            f"{simulated.e0:.1f}) cannot cover the window e0{s.window[0]:+g}..e0{s.window[1]:+g} eV")

    def model(p: np.ndarray) -> np.ndarray:
        shift, g, lz, scale = p
        b = broaden(simulated.energy, simulated.norm, gauss_fwhm=g, lorentz_fwhm=lz)
        return scale * np.interp(e - shift, simulated.energy, b)

    lower = [shift0 - s.shift_range, 0.0, 0.0, 1 - s.scale_range]
    upper = [shift0 + s.shift_range, s.max_broadening, s.max_broadening, 1 + s.scale_range]
    if not s.fit_broadening:
        upper[1] = upper[2] = 1e-9
    best = None
    starts = [(0.0, 0.0)] if not s.fit_broadening else [(0.0, 0.0), (4.0, 2.0), (8.0, 6.0)]
    for g0, l0 in starts:
        for ds in (-3.0, 0.0, 3.0):
            p0 = np.clip([shift0 + ds, g0, l0, 1.0], lower, upper)
            fit = least_squares(lambda p: model(p) - y, p0, bounds=(lower, upper),
                                x_scale=[1.0, 1.0, 1.0, 0.1], diff_step=1e-3)
            if best is None or fit.cost < best.cost:
                best = fit
    p = best.x
    m = model(p)
    names = ("shift", "gauss_fwhm", "lorentz_fwhm", "scale")
    tol = [1e-3 * (u - lo) if u > lo + 1e-6 else np.inf for lo, u in zip(lower, upper)]
    # a zero extra broadening is a result, not a limitation: only flag the other bounds
    at = tuple(n for n, v, lo, u, t in zip(names, p, lower, upper, tol)
               if t is not np.inf and ((v - lo < t and n in ("shift", "scale")) or u - v < t))
    return Alignment(shift=float(p[0]), gauss_fwhm=float(p[1]), lorentz_fwhm=float(p[2]),
                     scale=float(p[3]), r_factor=float(np.sum((y - m) ** 2) / np.sum(y ** 2)),
                     energy=e, data=y, model=m, at_bounds=at)


def _shifted(simulated: Normalized, gauss_fwhm: float, lorentz_fwhm: float):
    b = broaden(simulated.energy, simulated.norm, gauss_fwhm=gauss_fwhm, lorentz_fwhm=lorentz_fwhm)
    return lambda e, shift: np.interp(e - shift, simulated.energy, b)


def calibrate_shift(simulated: Normalized, measured: Normalized, *, gauss_fwhm: float,
                    lorentz_fwhm: float = 0.0, window: Sequence[float] = (-20.0, 100.0),
                    shift_range: float = 15.0, step: float = 0.1) -> float:
    """The energy shift (eV) that best aligns a bulk reference simulation with its measurement.

    Broadening and scale (1) are fixed; the shift is scanned on a ``step`` grid within
    ``±shift_range`` of the derivative-edge alignment and refined (bounded scalar minimisation).

    Returns
    -------
    float
        ``shift``: simulated energy + shift = measured energy.
    """
    from scipy.optimize import minimize_scalar

    s0 = measured.e0 - simulated.e0
    mask = _window(measured, window)
    mask &= (measured.energy >= simulated.energy[0] + s0) & (measured.energy <= simulated.energy[-1] + s0)
    e, y = measured.energy[mask], measured.norm[mask]
    model = _shifted(simulated, gauss_fwhm, lorentz_fwhm)
    grid = np.arange(s0 - shift_range, s0 + shift_range + step / 2, step)
    ssr = np.array([np.sum((model(e, g) - y) ** 2) for g in grid])
    k = int(np.argmin(ssr))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best = minimize_scalar(lambda g: np.sum((model(e, g) - y) ** 2), bounds=(lo, hi), method="bounded",
                           options={"xatol": 1e-3})
    return float(best.x)


def align_fixed(simulated: Normalized, measured: Normalized, *, shift: float, gauss_fwhm: float,
                lorentz_fwhm: float = 0.0, window: Sequence[float] = (-20.0, 100.0)) -> Alignment:
    """Compare with everything fixed: the given shift and broadening, scale 1 (nothing fitted).

    The R-factor is taken over the measured points of ``e0 + window`` that the shifted simulation
    covers (at least 80 % of the window).

    Raises
    ------
    InputError
        If the shifted simulation does not cover the window.
    """
    mask = _window(measured, window)
    n_window = int(mask.sum())
    mask &= (measured.energy >= simulated.energy[0] + shift) & (measured.energy <= simulated.energy[-1] + shift)
    if mask.sum() < 0.8 * n_window:
        raise InputError(f"simulated range {simulated.energy[0]:g}..{simulated.energy[-1]:g} eV, shifted by "
                         f"{shift:+.2f} eV, covers less than 80 % of the window e0{window[0]:+g}..e0{window[1]:+g} eV")
    e, y = measured.energy[mask], measured.norm[mask]
    m = _shifted(simulated, gauss_fwhm, lorentz_fwhm)(e, shift)
    return Alignment(shift=float(shift), gauss_fwhm=float(gauss_fwhm), lorentz_fwhm=float(lorentz_fwhm),
                     scale=1.0, r_factor=float(np.sum((y - m) ** 2) / np.sum(y ** 2)), energy=e, data=y,
                     model=m, at_bounds=())


def aligned_on(simulated: Normalized, alignment: Alignment, energy: np.ndarray) -> np.ndarray:
    """The aligned, broadened, scaled simulated spectrum evaluated on ``energy`` (eV, absolute).

    Use it to turn simulated spectra into LCF components on the measured grid.
    """
    b = broaden(simulated.energy, simulated.norm, gauss_fwhm=alignment.gauss_fwhm,
                lorentz_fwhm=alignment.lorentz_fwhm)
    return alignment.scale * np.interp(np.asarray(energy, float) - alignment.shift,
                                       simulated.energy, b)


@dataclass(frozen=True)
class LcfResult:
    """Linear combination fit result.

    Attributes
    ----------
    names : tuple of str
        Component names.
    weights, errors : ndarray
        Non-negative weights and their 1σ uncertainties (from the residual variance and the
        Jacobian at fixed shifts; points are assumed independent, so on an oversampled
        spectrum they are lower bounds).  A weight held at 0 by its bound has error 0.
    shifts : ndarray
        Energy shift of each component (eV; component(E - shift)); zeros unless fitted.
    r_factor : float
        ``Σ (y - m)² / Σ y²``.
    redchi : float
        ``Σ (y - m)² / (n - n_free)``.
    sum_to_one : bool
        Whether the weights were constrained to sum to 1.
    model : ndarray
        Fitted spectrum.
    """

    names: tuple
    weights: np.ndarray
    errors: np.ndarray
    shifts: np.ndarray
    r_factor: float
    redchi: float
    sum_to_one: bool
    model: np.ndarray = field(repr=False)


def _lcf_linear(a: np.ndarray, y: np.ndarray, sum_to_one: bool) -> tuple[np.ndarray, float]:
    """Non-negative (optionally sum-to-one) weights and their sum of squared residuals."""
    if not sum_to_one:
        w, rnorm = nnls(a, y)
        return w, float(rnorm ** 2)
    best = None
    for support in _supports(a.shape[1]):  # active-set enumeration: few components
        ws = _constrained_lsq(a[:, support], y)
        if ws is None or np.any(ws < -1e-12):
            continue
        w = np.zeros(a.shape[1])
        w[list(support)] = np.clip(ws, 0, None)
        w /= w.sum()
        ssr = float(np.sum((a @ w - y) ** 2))
        if best is None or ssr < best[1] - 1e-15:
            best = (w, ssr)
    return best


def lcf(energy: np.ndarray, data: np.ndarray, components: Mapping[str, tuple], *,
        sum_to_one: bool = False, max_shift: float = 0.0, shift_step: float = 0.25,
        joint: bool = False) -> LcfResult:
    """Fit ``data`` as a non-negative weighted sum of ``components``.

    Parameters
    ----------
    energy : ndarray
        Energies of ``data`` (eV), e.g. the measured points in the fit window.
    data : ndarray
        Normalised measured spectrum.
    components : mapping of str -> (energy, y)
        Normalised components on their own grids (eV); interpolated on ``energy - shift``.
        Simulated components: ``(measured_energy, aligned_on(...))``.
    sum_to_one : bool
        Constrain the weights to sum to 1.
    max_shift : float
        If > 0, also fit one energy shift per component within ``±max_shift`` eV (as Athena's
        "fit E0" option; it absorbs scan-to-scan calibration differences): coordinate grid
        scans of ``shift_step`` eV, then a bounded Powell refinement; weights solved exactly
        (non-negative least squares) at each trial.
    shift_step : float
        Grid step of the shift scan (eV).
    joint : bool
        One shift shared by all components (they are on one energy scale already: aligned
        jointly, not each to the data on its own, which biases the weights).

    Returns
    -------
    LcfResult

    Raises
    ------
    InputError
        No components, bad arrays, non-finite values or ``max_shift < 0``.
    """
    from scipy.optimize import minimize

    e = np.asarray(energy, float)
    y = np.asarray(data, float)
    names = tuple(components)
    if not names:
        raise InputError("LCF: no components")
    if e.ndim != 1 or e.shape != y.shape or not (np.all(np.isfinite(e)) and np.all(np.isfinite(y))):
        raise InputError("LCF: energy and data must be finite 1-D arrays of the same length")
    if max_shift < 0:
        raise InputError(f"LCF: max_shift {max_shift} eV must be >= 0")
    comps = []
    for n in names:
        ce, cy = (np.asarray(v, float) for v in components[n])
        if ce.shape != cy.shape or ce.ndim != 1 or not np.all(np.isfinite(cy)):
            raise InputError(f"LCF: component {n!r} needs finite 1-D (energy, y) of equal length")
        comps.append((ce, cy))
    k = len(names)

    def matrix(shifts: np.ndarray) -> np.ndarray:
        return np.column_stack([np.interp(e - sh, ce, cy) for sh, (ce, cy) in zip(shifts, comps)])

    def ssr(shifts: np.ndarray) -> float:
        return _lcf_linear(matrix(shifts), y, sum_to_one)[1]

    shifts = np.zeros(k)
    if max_shift > 0 and joint:
        from scipy.optimize import minimize_scalar

        grid = np.arange(-max_shift, max_shift + shift_step / 2, shift_step)
        g0 = grid[int(np.argmin([ssr(np.full(k, g)) for g in grid]))]
        best = minimize_scalar(lambda g: ssr(np.full(k, g)), method="bounded",
                               bounds=(max(g0 - shift_step, -max_shift), min(g0 + shift_step, max_shift)))
        shifts = np.full(k, float(best.x))
    elif max_shift > 0:
        grid = np.arange(-max_shift, max_shift + shift_step / 2, shift_step)
        for _ in range(3):  # coordinate sweeps
            for j in range(k):
                trial = [ssr(np.where(np.arange(k) == j, g, shifts)) for g in grid]
                shifts[j] = grid[int(np.argmin(trial))]
        shifts = minimize(ssr, shifts, method="Powell",
                          bounds=[(-max_shift, max_shift)] * k).x
    a = matrix(shifts)
    w, _ = _lcf_linear(a, y, sum_to_one)
    free = w > 1e-10
    resid = y - a @ w
    n_free = int(np.count_nonzero(free)) - (1 if sum_to_one else 0) + (1 if joint and max_shift > 0 else 0)
    redchi = float(resid @ resid / max(y.size - n_free, 1))
    errors = np.zeros(k)
    af = a[:, free]
    nf = af.shape[1]
    if sum_to_one and nf > 1:
        z = np.vstack([np.eye(nf - 1), -np.ones(nf - 1)])  # directions keeping the sum fixed
        errors[free] = np.sqrt(np.clip(np.diag(
            z @ np.linalg.pinv(z.T @ af.T @ af @ z) @ z.T * redchi), 0, None))
    elif not sum_to_one and nf:
        errors[free] = np.sqrt(np.clip(np.diag(np.linalg.pinv(af.T @ af) * redchi), 0, None))
    return LcfResult(names=names, weights=w, errors=errors, shifts=np.asarray(shifts, float),
                     r_factor=float(resid @ resid / (y @ y)), redchi=redchi,
                     sum_to_one=sum_to_one, model=a @ w)


def _supports(k: int):
    from itertools import combinations
    for size in range(k, 0, -1):
        yield from combinations(range(k), size)


def _constrained_lsq(a: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Least squares with sum(w) = 1 (KKT system); None if singular."""
    k = a.shape[1]
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = a.T @ a
    kkt[:k, k] = kkt[k, :k] = 1.0
    rhs = np.concatenate([a.T @ y, [1.0]])
    try:
        return np.linalg.solve(kkt, rhs)[:k]
    except np.linalg.LinAlgError:
        return None


@dataclass(frozen=True)
class RankRow:
    """One candidate in a ranking: its name and alignment."""

    name: str
    alignment: Alignment


def rank_candidates(measured: Normalized, simulated: Mapping[str, Normalized], *,
                    settings: AlignSettings = AlignSettings()) -> list[RankRow]:
    """Align every candidate to ``measured`` and sort by R-factor (best first).

    Parameters
    ----------
    measured : Normalized
        Normalised measured spectrum.
    simulated : mapping of str -> Normalized
        Normalised simulated spectrum per candidate (e.g. the weighted average over absorbers).
    settings : AlignSettings
        Window (relative to the measured ``e0``) and bounds, the same for all candidates.

    Returns
    -------
    list of RankRow
    """
    if not simulated:
        raise InputError("ranking: no candidates")
    rows = [RankRow(name, align(sim, measured, settings=settings))
            for name, sim in simulated.items()]
    return sorted(rows, key=lambda r: r.alignment.r_factor)
