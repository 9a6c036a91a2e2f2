"""Data reduction with larch: μ(E) → normalised μ, E0, edge step → χ(k) → χ(R).

Defaults are the paper's (DEMETER): Rbkg = 0.8 Å, Fourier transform over k = 2–16.5 Å⁻¹
with k² weight and a Hanning window of taper dk = 1 Å⁻¹.  larch does the work
(``pre_edge``, ``autobk``, ``xftf``, ``xftr``); this module only chooses the settings,
checks the data against them and freezes the results.

:class:`FourierFilter` is the q-space filter χ(k) → χ(R) → χ(q) (larch ``xftf`` then
``xftr`` over an R window).  Empirical paths record the one they were extracted with, so
a fit can apply exactly the same operator to its model.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.io import Spectrum
from xasmpi.exafs.kernel import ETOK, KSTEP, FourierFilter, check_window  # noqa: F401  (FourierFilter re-exported)

@dataclass(frozen=True)
class ReductionSettings:
    """Settings of :func:`reduce_spectrum` (all keyword, all overridable per spectrum).

    Parameters
    ----------
    e0 : float or None
        Edge energy, eV; ``None``: larch ``find_e0`` (maximum of the smoothed derivative).
        Use :func:`shared_e0` (the mean of larch's ``find_e0`` over the spectra, not the
        first spectrum's) to give several spectra one E0.
    rbkg : float
        autobk cut-off Rbkg, Å.
    bkg_kweight : float
        k weight of the autobk spline fit.
    bkg_kmin, bkg_kmax : float, float or None
        k range of the spline, Å⁻¹ (``None``: to the end of the data).
    pre1, pre2, norm1, norm2 : float or None
        Pre-edge and normalisation ranges relative to E0, eV (``None``: larch defaults).
    nnorm : int or None
        Degree of the post-edge polynomial (``None``: larch default).
    kmin, kmax, dk : float
        Forward-transform k window and taper, Å⁻¹.
    kweight : float
        k weight of the forward transform.
    window : str
        k-window shape.
    rmax_out : float
        Highest R kept in χ(R), Å.
    """

    e0: float | None = None
    rbkg: float = 0.8
    bkg_kweight: float = 2.0
    bkg_kmin: float = 0.0
    bkg_kmax: float | None = None
    pre1: float | None = None
    pre2: float | None = None
    norm1: float | None = None
    norm2: float | None = None
    nnorm: int | None = None
    kmin: float = 2.0
    kmax: float = 16.5
    dk: float = 1.0
    kweight: float = 2.0
    window: str = "hanning"
    rmax_out: float = 10.0

    def __post_init__(self):
        if self.rbkg <= 0:
            raise ConfigError(f"reduction: rbkg must be > 0 Å, got {self.rbkg}")
        if not 0 <= self.kmin < self.kmax:
            raise ConfigError(f"reduction: need 0 <= kmin < kmax, got kmin={self.kmin}, kmax={self.kmax}")
        if self.dk < 0:
            raise ConfigError(f"reduction: dk must be >= 0, got {self.dk}")
        check_window(self.window, "reduction")

    def fourier_filter(self, *, rmin: float, rmax: float, dr: float = 0.2,
                       rwindow: str = "hanning") -> FourierFilter:
        """The q-space filter with this k window and the R window ``rmin``–``rmax`` (Å)."""
        return FourierFilter(kmin=self.kmin, kmax=self.kmax, dk=self.dk, window=self.window,
                             kweight=self.kweight, rmin=rmin, rmax=rmax, dr=dr, rwindow=rwindow)


@dataclass(frozen=True, eq=False)
class Reduced:
    """A reduced spectrum.

    Attributes
    ----------
    name, source : str
        From the :class:`~xasmpi.exafs.io.Spectrum`.
    energy, mu, norm, flat, bkg : ndarray or None
        Energy (eV), absorbance, normalised and flattened μ, autobk background (``None``
        for a χ(k) input).
    e0, edge_step : float
        Edge energy (eV) and edge step (absorbance units); NaN for a χ(k) input.
    k, chi : ndarray
        Uniform k grid (Å⁻¹, step 0.05 from 0) and χ(k).
    kwin : ndarray
        Forward-transform k window on ``k``.
    r, chir : ndarray
        R grid (Å) and complex χ(R) of k^kweight·χ(k) (larch ``xftf`` convention).
    settings : ReductionSettings
    """

    name: str
    source: str
    energy: np.ndarray | None
    mu: np.ndarray | None
    norm: np.ndarray | None
    flat: np.ndarray | None
    bkg: np.ndarray | None
    e0: float
    edge_step: float
    k: np.ndarray
    chi: np.ndarray
    kwin: np.ndarray
    r: np.ndarray
    chir: np.ndarray
    settings: ReductionSettings = field(default_factory=ReductionSettings)

    @property
    def chi_kw(self) -> np.ndarray:
        """k^kweight · χ(k)."""
        return self.chi * self.k ** self.settings.kweight

    @property
    def chir_mag(self) -> np.ndarray:
        """|χ(R)|."""
        return np.abs(self.chir)


def shared_e0(spectra: Sequence[Spectrum]) -> float:
    """One E0 (eV) for several spectra: the mean of larch's ``find_e0`` over them.

    Use as ``ReductionSettings(e0=shared_e0(spectra))`` so all spectra share the same k scale.

    Raises
    ------
    InputError
        A spectrum is χ(k) (it has no energy axis).
    """
    from larch.xafs import find_e0

    values = []
    for s in spectra:
        if s.kind != "mu":
            raise InputError(f"{s.source}: χ(k) data have no energy axis to find E0 on")
        values.append(float(find_e0(s.energy, s.mu)))
    return float(np.mean(values))


def reduce_spectrum(spectrum: Spectrum, settings: ReductionSettings = ReductionSettings()) -> Reduced:
    """Normalise, remove the background and Fourier transform one spectrum with larch.

    Parameters
    ----------
    spectrum : Spectrum
        μ(E) (``pre_edge``, ``autobk``, ``xftf``) or χ(k) (``xftf`` only).
    settings : ReductionSettings

    Returns
    -------
    Reduced

    Raises
    ------
    InputError
        The edge (tabulated for the spectrum's element and edge, or ``settings.e0``, or the
        E0 larch finds) is outside the energy range, or the data end below ``settings.kmax``.
    """
    from larch import Group
    from larch.xafs import autobk, find_e0, pre_edge, xftf

    s = settings
    g = Group()
    if spectrum.kind == "chi":
        k = np.arange(int(round(spectrum.k[-1] / KSTEP)) + 1) * KSTEP
        g.k, g.chi = k, np.interp(k, spectrum.k, spectrum.chi, left=0.0)
        energy = mu = norm = flat = bkg = None
        e0 = edge_step = float("nan")
    else:
        energy, mu = spectrum.energy, spectrum.mu
        _check_edge(spectrum)
        e0 = s.e0 if s.e0 is not None else float(find_e0(energy, mu))
        if np.count_nonzero(energy < e0) < 3 or e0 >= energy[-3]:
            what = "E0" if s.e0 is not None else "the edge larch finds"
            raise InputError(f"{spectrum.source}: {what} ({e0:.1f} eV) is outside the energy range "
                             f"{energy[0]:.1f}-{energy[-1]:.1f} eV (or at its end)")
        pre_kws = {key: getattr(s, key) for key in ("pre1", "pre2", "norm1", "norm2", "nnorm")
                   if getattr(s, key) is not None}
        pre_edge(energy, mu, group=g, e0=e0, **pre_kws)
        autobk(energy, mu, group=g, e0=e0, rbkg=s.rbkg, kweight=s.bkg_kweight, kmin=s.bkg_kmin,
               kmax=s.bkg_kmax, pre_edge_kws=pre_kws or None)
        norm, flat, bkg = g.norm, g.flat, g.bkg
        edge_step = float(g.edge_step)
        _check_edge_quality(spectrum, e0, edge_step, s)
    kdata = float(np.sqrt(ETOK * (energy[-1] - e0))) if energy is not None else float(g.k[-1])
    if kdata < s.kmax:
        raise InputError(f"{spectrum.source}: data end at k = {kdata:.2f} Å⁻¹, below the "
                         f"transform window kmax = {s.kmax} Å⁻¹")
    xftf(g.k, g.chi, group=g, kmin=s.kmin, kmax=s.kmax, dk=s.dk, kweight=s.kweight,
         window=s.window, kstep=KSTEP, rmax_out=s.rmax_out)
    return Reduced(name=spectrum.name, source=spectrum.source, energy=energy, mu=mu, norm=norm,
                   flat=flat, bkg=bkg, e0=float(e0), edge_step=edge_step, k=np.asarray(g.k),
                   chi=np.asarray(g.chi), kwin=np.asarray(g.kwin), r=np.asarray(g.r),
                   chir=np.asarray(g.chir), settings=s)


#: an edge step must exceed the pre-edge noise (rms about a straight line) this many times
EDGE_STEP_OVER_NOISE = 10.0
#: largest distance (eV) of E0 from the tabulated edge of the spectrum's element: chemical
#: shifts and monochromator calibration errors are a few eV to ~20 eV
E0_TOLERANCE = 50.0


def _check_edge_quality(spectrum: Spectrum, e0: float, edge_step: float, s: ReductionSettings) -> None:
    """InputError for a spectrum without a clear edge, with E0 far from the tabulated edge, or
    sampled too coarsely in k for χ(R) up to ``rmax_out``."""
    energy, mu = spectrum.energy, spectrum.mu
    pre = energy < e0 - 20.0
    noise = 0.0
    if np.count_nonzero(pre) >= 4:
        x, y = energy[pre], mu[pre]
        noise = float(np.std(y - np.polyval(np.polyfit(x, y, 1), x)))
    scale = float(np.max(np.abs(mu))) or 1.0
    if not (edge_step > EDGE_STEP_OVER_NOISE * noise and edge_step > 1e-6 * scale):
        raise InputError(f"{spectrum.source}: no clear absorption edge (edge step {edge_step:.3g} against "
                         f"pre-edge noise {noise:.3g}; need a step > {EDGE_STEP_OVER_NOISE:g} x noise): "
                         "is the absorbance right (columns, transmission/fluorescence)?")
    if spectrum.element and spectrum.edge:
        import xraydb

        tab = xraydb.xray_edge(spectrum.element, spectrum.edge).energy
        if abs(e0 - tab) > E0_TOLERANCE:
            raise InputError(f"{spectrum.source}: E0 = {e0:.1f} eV is {e0 - tab:+.0f} eV from the tabulated "
                             f"{spectrum.element} {spectrum.edge} edge ({tab:.0f} eV; more than "
                             f"{E0_TOLERANCE:g} eV): wrong element/edge, energy calibration or reduction.e0?")
    post = energy > e0
    k = np.sqrt(ETOK * (energy[post] - e0))
    inwin = k[(k >= s.kmin) & (k <= s.kmax)]
    need = np.pi / (2.0 * s.rmax_out)
    step = float(np.median(np.diff(inwin))) if inwin.size > 2 else np.inf
    if step > need:
        raise InputError(f"{spectrum.source}: too few points: {inwin.size} in the k window "
                         f"{s.kmin:g}-{s.kmax:g} Å⁻¹ (median step {step:.3g} Å⁻¹); chi(R) up to "
                         f"rmax_out = {s.rmax_out:g} Å needs steps <= {need:.3g} Å⁻¹")


def _check_edge(spectrum: Spectrum) -> None:
    """InputError when the tabulated edge of the spectrum's element is outside its energy range."""
    if not (spectrum.element and spectrum.edge):
        return
    import xraydb

    try:
        e_edge = xraydb.xray_edge(spectrum.element, spectrum.edge).energy
    except Exception:
        raise InputError(f"{spectrum.source}: unknown element/edge {spectrum.element} "
                         f"{spectrum.edge}") from None
    lo, hi = spectrum.energy[0], spectrum.energy[-1]
    if not lo < e_edge < hi:
        raise InputError(f"{spectrum.source}: the {spectrum.element} {spectrum.edge} edge "
                         f"({e_edge:.0f} eV) is outside the energy range {lo:.1f}-{hi:.1f} eV")
