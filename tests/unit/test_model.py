"""PathModel and fit-space operators: checked against larch and Path.chi."""
import numpy as np
import pytest
from larch import Group
from larch.xafs import xftf, xftr

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.model import FitSpace, Param, PathModel
from xasmpi.exafs.paths import Path, kgrid


def _path(name, r, amp_scale=1.0):
    k = kgrid()
    amp = amp_scale * (1.0 + 0.3 * np.exp(-((k - 5.0) / 3.0) ** 2))
    phase = -0.8 - 0.15 * k + 0.004 * k * k
    return Path(name=name, k=k, amp=amp, phase=phase, r_ref=r, n_ref=4.0, sigma2_ref=0.004, source="test")


@pytest.fixture(scope="module")
def chi():
    rng = np.random.default_rng(3)
    k = np.arange(341) * 0.05
    return np.sin(2 * 2.4 * k - 1) * np.exp(-0.01 * k * k) / (k + 1) + 0.01 * rng.normal(size=k.size)


@pytest.mark.parametrize("kw", [1, 2, 3])
def test_q_operator_matches_larch_xftf_xftr(chi, kw):
    k = np.arange(chi.size) * 0.05
    fs = FitSpace(kind="q", kmin=2, kmax=15, kweight=kw, dk=1, rmin=1.2, rmax=3.5, dr=0.2)
    g = Group()
    xftf(k, chi, group=g, kmin=2, kmax=15, dk=1, window="hanning", kweight=kw)
    xftr(g.r, g.chir, group=g, rmin=1.2, rmax=3.5, dr=0.2, window="hanning")
    ref = g.chiq_re[40:300]                       # larch q index range [kmin, kmax)
    out = fs.operator(chi.size) @ chi
    assert out.shape == ref.shape
    assert np.max(np.abs(out - ref)) < 1e-8 * np.max(np.abs(ref))


def test_r_operator_matches_larch_xftf(chi):
    k = np.arange(chi.size) * 0.05
    fs = FitSpace(kind="r", kmin=3, kmax=14, dk=2, window="kaiser", rmin=1.0, rmax=3.0)
    g = Group()
    xftf(k, chi, group=g, kmin=3, kmax=14, dk=2, window="kaiser", kweight=2)
    i0, i1 = int(0.01 + 1.0 / g.r[1]), int(0.01 + 3.0 / g.r[1])
    ref = np.concatenate([g.chir_re[i0:i1], g.chir_im[i0:i1]])
    out = fs.operator(chi.size) @ chi
    assert np.max(np.abs(out - ref)) < 1e-8 * np.max(np.abs(ref))


def test_k_operator_and_paper_ssr(chi):
    fs = FitSpace(kind="k", kmin=2, kmax=16, kweight=3)
    m = PathModel.build([_path("a", 2.5)], space=fs, nk=chi.size)
    k = m.k
    sel = (k >= 2 - 1e-9) & (k < 16 - 1e-9)
    theta = np.array([[3.0, 0.006]])
    diff = chi - m.evaluate(theta)[0]
    assert m.ssr(theta, chi)[0] == pytest.approx(np.sum((diff * k ** 3)[sel] ** 2), rel=1e-12)
    assert m.ssr_k2(theta, chi)[0] == pytest.approx(np.sum((diff * k ** 2)[sel] ** 2), rel=1e-12)


def test_evaluate_matches_path_chi_with_de0():
    p1, p2 = _path("S", 2.5), _path("Cd", 4.1, 2.0)
    m = PathModel.build([p1, p2], space=FitSpace(kind="q"), nk=341,
                        r=[Param(2.5, True, 2.3, 2.7), Param(4.1, False)], de0_mode="global")
    assert m.names == ("n_S", "n_Cd", "sigma2_S", "sigma2_Cd", "r_S", "de0")
    theta = np.array([[3.0, 10.0, 0.005, 0.007, 2.45, 1.5], [4.0, 8.0, 0.002, 0.004, 2.6, -3.0]])
    chi = m.evaluate(theta)
    for t, c in zip(theta, chi):
        ref = (p1.chi(n=t[0], sigma2=t[2], r=t[4], de0=t[5]) + p2.chi(n=t[1], sigma2=t[3], de0=t[5]))[:341]
        np.testing.assert_allclose(c, ref, rtol=1e-9, atol=1e-7)


def test_bad_inputs_raise_user_errors():
    with pytest.raises(ConfigError, match="kind"):
        FitSpace(kind="x")
    with pytest.raises(ConfigError, match="bounds"):
        Param(1.0, True)
    with pytest.raises(InputError, match="kmax"):
        FitSpace(kind="q", kmax=19.8).operator(341)
    m = PathModel.build([_path("a", 2.5)], nk=341)
    with pytest.raises(InputError, match="columns"):
        m.evaluate(np.zeros((2, 5)))
