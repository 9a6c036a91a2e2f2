"""Wavelet transforms against larch and against analytic single shells."""
import numpy as np
import pytest

from xasmpi.exafs.io import read_spectrum
from xasmpi.exafs.reduce import FourierFilter, reduce_spectrum
from xasmpi.exafs.wavelet import cauchy_wavelet, morlet_wavelet
from xasmpi.testing import xaslib_dir


@pytest.fixture(scope="module")
def cds_red():
    return reduce_spectrum(read_spectrum(xaslib_dir() / "CdS_10K_01.xdi"))


@pytest.mark.parametrize("kweight", [0, 2])
def test_cauchy_matches_larch(cds_red, kweight):
    from larch import Group
    from larch.xafs import cauchy_wavelet as larch_cauchy

    g = Group()
    larch_cauchy(cds_red.k, cds_red.chi, group=g, kweight=kweight)
    r, w = cauchy_wavelet(cds_red.k, cds_red.chi, kweight=kweight)
    assert w.shape == g.wcauchy.shape
    np.testing.assert_array_equal(r, g.wcauchy_r)
    assert np.max(np.abs(w - g.wcauchy)) < 1e-10


def test_cauchy_window_and_peak(cds_red):
    """With a k window the transform is that of the windowed χ; the |W| maximum sits on Cd–S / Cd–Cd."""
    win = FourierFilter().kwindow(cds_red.k)
    r, w = cauchy_wavelet(cds_red.k, cds_red.chi, kweight=2, kwindow=win)
    _, ref = cauchy_wavelet(cds_red.k, cds_red.chi * win, kweight=2)
    np.testing.assert_allclose(w, ref, atol=1e-14)
    mag = np.abs(w)
    first = r[np.argmax(np.where(r[:, None] < 3.0, mag, 0).max(axis=1))]
    assert 1.9 <= first <= 2.3


def test_morlet_single_shell():
    """χ = A sin(2kR0 + φ): |W| ≈ A/2 with its maximum over R at R0 (Funke normalisation)."""
    k = np.arange(0, 25, 0.05)
    chi = 0.5 * np.sin(2 * 2.5 * k + 0.3)
    r, w = morlet_wavelet(k, chi, eta=10, sigma=1, rstep=0.01)
    col = np.abs(w[:, 250])  # k = 12.5, far from the ends
    assert abs(r[np.argmax(col)] - 2.5) < 0.011
    assert abs(col.max() - 0.25) < 2e-3


def test_morlet_matches_direct_integral(cds_red):
    """FFT result equals the defining integral evaluated by quadrature at a few (R, k)."""
    k, chi = cds_red.k, cds_red.chi * cds_red.k ** 2
    eta, sigma = 8.0, 1.2
    r, w = morlet_wavelet(k, chi, eta=eta, sigma=sigma, rstep=0.05, nfft=8192)
    for ir, ik in [(41, 200), (77, 150), (59, 120)]:
        s = 2 * r[ir] / eta
        x = s * (k - k[ik])
        psi = np.exp(1j * eta * x) * np.exp(-x * x / (2 * sigma ** 2)) / (sigma * np.sqrt(2 * np.pi))
        direct = s * np.sum(chi * np.conj(psi)) * (k[1] - k[0])
        assert abs(w[ir, ik] - direct) < 1e-6 * np.max(np.abs(w))


def test_cauchy_order_is_a_setting_independent_of_rmax(cds_red):
    """larch ties the Cauchy order to the number of R points, so the map at a given R changes with
    rmax; with a fixed order it does not (and the default order is larch's at rmax = 6 Å)."""
    from xasmpi.exafs.wavelet import CAUCHY_ORDER, cauchy_order_larch

    assert cauchy_order_larch(6.0) == CAUCHY_ORDER == 196
    r6, w6 = cauchy_wavelet(cds_red.k, cds_red.chi, kweight=2, rmax_out=6.0)
    r6o, w6o = cauchy_wavelet(cds_red.k, cds_red.chi, kweight=2, rmax_out=6.0, order=CAUCHY_ORDER)
    np.testing.assert_array_equal(w6, w6o)
    r10, w10 = cauchy_wavelet(cds_red.k, cds_red.chi, kweight=2, rmax_out=10.0, order=CAUCHY_ORDER)
    _, w10_larch = cauchy_wavelet(cds_red.k, cds_red.chi, kweight=2, rmax_out=10.0)
    n = r6.size
    np.testing.assert_allclose(r10[:n], r6, atol=1e-12)
    scale = np.abs(w6).max()
    assert np.max(np.abs(w10[:n] - w6)) < 1e-9 * scale          # same order: same map
    assert np.max(np.abs(w10_larch[:n] - w6)) > 0.05 * scale   # larch's order: another map
    with pytest.raises(ValueError, match="order"):
        cauchy_wavelet(cds_red.k, cds_red.chi, order=0)
