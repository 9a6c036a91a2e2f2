"""Reduction of the real Cd K-edge spectra with the paper's settings."""
import dataclasses

import numpy as np
import pytest

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.io import read_spectrum
from xasmpi.exafs.reduce import FourierFilter, ReductionSettings, reduce_spectrum, shared_e0
from xasmpi.testing import xaslib_dir


@pytest.fixture(scope="module")
def cds():
    return read_spectrum(xaslib_dir() / "CdS_10K_01.xdi")


@pytest.fixture(scope="module")
def cds_red(cds):
    return reduce_spectrum(cds, ReductionSettings())


def test_paper_defaults():
    s = ReductionSettings()
    assert (s.rbkg, s.kmin, s.kmax, s.kweight, s.dk, s.window, s.e0) == (0.8, 2.0, 16.5, 2.0, 1.0, "hanning", None)


def test_cds_e0_and_first_shell(cds_red):
    """E0 within 3 eV of the Cd K edge (26711 eV); first |χ(R)| peak (Cd–S 2.53 Å, uncorrected) at 2.0–2.2 Å."""
    assert abs(cds_red.e0 - 26711.0) < 3.0
    r, mag = cds_red.r, cds_red.chir_mag
    first = r[np.argmax(np.where(r < 3.0, mag, 0))]
    assert 2.0 <= first <= 2.2
    # second shell Cd–Cd 4.13 Å appears ~0.3 Å short, as the first
    second = r[np.argmax(np.where((r > 3.0) & (r < 5.0), mag, 0))]
    assert 3.6 <= second <= 4.1
    assert cds_red.edge_step > 0 and abs(cds_red.flat[-20:].mean() - 1) < 0.1


def test_chi_matches_larch_directly(cds, cds_red):
    """Same numbers as calling larch by hand with the same settings."""
    from larch import Group
    from larch.xafs import autobk, pre_edge, xftf

    g = Group(energy=cds.energy, mu=cds.mu)
    pre_edge(g)
    autobk(g, rbkg=0.8, kweight=2)
    xftf(g, kmin=2, kmax=16.5, dk=1, kweight=2, window="hanning")
    np.testing.assert_allclose(cds_red.chi, g.chi, atol=1e-12)
    np.testing.assert_allclose(cds_red.chir, g.chir[: cds_red.chir.size], atol=1e-12)


def test_fixed_and_shared_e0(cds):
    cdo = read_spectrum(xaslib_dir() / "CdO_10K_01.xdi")
    e0 = shared_e0([cds, cdo])
    assert abs(e0 - 26711.0) < 3.0
    settings = ReductionSettings(e0=e0)
    reds = [reduce_spectrum(s, settings) for s in (cds, cdo)]
    assert all(r.e0 == e0 for r in reds)
    # a 5 eV change of E0 moves the k grid's origin: χ changes
    other = reduce_spectrum(cds, dataclasses.replace(settings, e0=e0 + 5))
    n = min(other.chi.size, reds[0].chi.size)
    assert np.max(np.abs(other.chi[:n] - reds[0].chi[:n])) > 1e-3


def test_chi_input_is_transformed_only(tmp_path, cds_red):
    f = tmp_path / "cds.chi"
    np.savetxt(f, np.column_stack([cds_red.k, cds_red.chi]), header="k chi")
    red = reduce_spectrum(read_spectrum(f))
    assert np.isnan(red.e0)
    np.testing.assert_allclose(red.chir, cds_red.chir, atol=1e-12)


def test_edge_outside_energy_range(tmp_path, cds):
    lines = (xaslib_dir() / "CdS_10K_01.xdi").read_text().splitlines(keepends=True)
    keep = [s for s in lines if not s.strip() or s.lstrip().startswith("#") or float(s.split()[0]) > 26800.0]
    f = tmp_path / "post_edge_only.xdi"
    f.write_text("".join(keep))
    with pytest.raises(InputError) as err:
        reduce_spectrum(read_spectrum(f))
    assert str(f) in str(err.value) and "outside the energy range" in str(err.value)
    # no element known: a fixed E0 outside the range is caught too
    with pytest.raises(InputError, match="outside the energy range"):
        reduce_spectrum(dataclasses.replace(cds, element=None), ReductionSettings(e0=25000.0))


def test_data_too_short_for_window(cds):
    with pytest.raises(InputError, match="below the transform window"):
        reduce_spectrum(cds, ReductionSettings(kmax=18.0))


@pytest.mark.parametrize("bad", [dict(rbkg=0.0), dict(kmin=10.0, kmax=5.0), dict(window="box")])
def test_bad_settings(bad):
    with pytest.raises(ConfigError):
        ReductionSettings(**bad)


def test_fourier_filter_adjacent_windows_add_up(cds_red):
    """Hanning R windows sharing an edge and taper sum to the window over their union."""
    k = cds_red.k
    whole = FourierFilter(rmin=1.3, rmax=4.4).apply(k, cds_red.chi)
    parts = FourierFilter(rmin=1.3, rmax=2.9).apply(k, cds_red.chi) + \
        FourierFilter(rmin=2.9, rmax=4.4).apply(k, cds_red.chi)
    assert np.max(np.abs(whole - parts)) < 1e-9 * np.max(np.abs(whole))
