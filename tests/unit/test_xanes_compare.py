"""XANES normalisation, edge, broadening, alignment, LCF and ranking against known answers."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from xasmpi.errors import InputError
from xasmpi.xanes.compare import (AlignSettings, NormSettings, align, align_fixed, aligned_on, broaden,
                                  calibrate_shift, core_hole_fwhm, edge_energy, lcf, normalize,
                                  rank_candidates)


def _xanes(e, e0, *, white=0.6, width=3.0):
    """Error-function edge of height 1 at e0 plus a Gaussian white line 6 eV above it
    (both flat within 1e-6 outside e0-18 .. e0+30, so the true edge step is exactly 1)."""
    return 0.5 * (1 + erf((e - e0) / width)) + white * np.exp(-(((e - e0 - 6) / 4) ** 2))


def _measured_like(e0=26711.0):
    e = np.arange(e0 - 200, e0 + 400, 0.5)
    return e, 0.3 * _xanes(e, e0) + 1.5  # offset 1.5, edge step 0.3


def test_edge_is_max_of_derivative():
    e = np.arange(-50, 50, 0.7)
    e0, d = edge_energy(e, 0.5 + np.arctan((e - 3.21) / 2) / np.pi)
    assert e0 == pytest.approx(3.21, abs=0.02)
    assert d.max() == pytest.approx(1 / (2 * np.pi), rel=0.05)  # finite differences


def test_normalize_recovers_step_and_edge():
    e, mu = _measured_like()
    n = normalize(e, mu)
    assert n.edge_step == pytest.approx(0.3, rel=0.01)
    assert np.allclose(n.norm, _xanes(e, 26711.0), atol=0.01)  # offset and step removed
    assert np.allclose(n.dnorm, np.gradient(n.norm, e))


def test_normalize_errors():
    e = np.linspace(0, 10, 50)
    with pytest.raises(InputError, match="pre-edge"):
        normalize(e, 0.5 + np.arctan(e - 5) / np.pi)
    with pytest.raises(InputError, match="strictly increasing"):
        normalize(e[::-1], e)
    with pytest.raises(InputError):
        NormSettings(pre1=-5, pre2=-10)


def test_broaden_gaussian_widths_add_in_quadrature():
    e = np.arange(-60, 60, 0.1)
    s1 = 2.0
    peak = np.exp(-e ** 2 / (2 * s1 ** 2))
    out = broaden(e, peak, gauss_fwhm=2.355 * 3.0)
    sigma = np.sqrt(np.sum(out * e ** 2) / np.sum(out))
    assert sigma == pytest.approx(np.hypot(s1, 3.0), rel=0.01)
    assert np.sum(out) == pytest.approx(np.sum(peak), rel=1e-3)  # area kept
    lor = broaden(e, peak, lorentz_fwhm=4.0)
    assert lor.max() < peak.max() and np.sum(lor) == pytest.approx(np.sum(peak), rel=0.05)
    assert np.array_equal(broaden(e, peak), peak)


def test_align_recovers_shift_broadening_and_scale():
    sim_e = np.arange(-20.0, 100.1, 1.0)
    sim = normalize(sim_e, _xanes(sim_e, 4.0, width=1.0), name="sim")
    e = np.arange(26680.0, 26850.0, 0.5)
    # measured = simulated shifted by 26707 eV, Gaussian 6 eV FWHM, scaled by 0.95
    truth = 0.95 * np.interp(e - 26707.0, sim_e, broaden(sim_e, sim.norm, gauss_fwhm=6.0))
    meas = normalize(e, 2.0 + 0.4 * truth, name="meas", settings=NormSettings())
    a = align(sim, meas)
    assert a.shift == pytest.approx(26707.0, abs=0.3)
    assert a.gauss_fwhm == pytest.approx(6.0, abs=1.0) and a.lorentz_fwhm < 1.5
    assert a.r_factor < 1e-4 and a.at_bounds == ()
    assert np.allclose(aligned_on(sim, a, a.energy), a.model)
    shift_only = align(sim, meas, settings=AlignSettings(fit_broadening=False))
    assert shift_only.gauss_fwhm < 1e-6 and shift_only.r_factor > 3 * a.r_factor


def test_rank_candidates_orders_by_r_factor():
    sim_e = np.arange(-20.0, 100.1, 1.0)
    good = normalize(sim_e, _xanes(sim_e, 4.0, white=0.6), name="good")
    bad = normalize(sim_e, _xanes(sim_e, 4.0, white=0.0), name="bad")
    e = np.arange(26680.0, 26850.0, 0.5)
    meas = normalize(e, _xanes(e, 26711.0, white=0.6), name="meas")
    rows = rank_candidates(meas, {"bad": bad, "good": good})
    assert [r.name for r in rows] == ["good", "bad"]
    assert rows[0].alignment.r_factor < 1e-4 < rows[1].alignment.r_factor


def test_lcf_exact_mixture():
    e = np.linspace(0, 100, 300)
    a, b, c = _xanes(e, 30), _xanes(e, 35, white=0.0), _xanes(e, 40, white=1.2)
    y = 0.6 * a + 0.4 * c
    comps = {"a": (e, a), "b": (e, b), "c": (e, c)}
    for s2one in (False, True):
        r = lcf(e, y, comps, sum_to_one=s2one)
        assert r.weights == pytest.approx([0.6, 0.0, 0.4], abs=1e-8)
        assert r.r_factor < 1e-15 and r.errors[1] == 0.0
    # sum-to-one forces a compromise when the data are scaled
    r = lcf(e, 1.2 * y, comps, sum_to_one=True)
    assert r.weights.sum() == pytest.approx(1.0) and r.r_factor > 1e-4
    # a shifted component is found when shifts are fitted
    r = lcf(e, 0.5 * np.interp(e - 1.0, e, a) + 0.5 * c, comps, max_shift=2.0)
    assert r.shifts[0] == pytest.approx(1.0, abs=0.02) and r.weights[0] == pytest.approx(0.5, abs=0.01)


def test_lcf_errors():
    e = np.linspace(0, 1, 20)
    with pytest.raises(InputError, match="no components"):
        lcf(e, e, {})
    with pytest.raises(InputError, match="max_shift"):
        lcf(e, e, {"a": (e, e)}, max_shift=-1)


def _measured(name):
    from larch.io import read_xdi

    from xasmpi.testing import xaslib_dir

    d = read_xdi(str(xaslib_dir() / f"{name}.xdi"))
    return normalize(d.energy, np.log(d.i0 / d.itrans), name=name)


def test_known_answer_lcf_on_real_mixture():
    """0.7 norm(CdS_10K_02) + 0.3 norm(CdO_10K_02), fitted with the _01 scans."""
    s1, s2, o1, o2 = (_measured(n) for n in ("CdS_10K_01", "CdS_10K_02", "CdO_10K_01", "CdO_10K_02"))
    e = s2.energy
    window = (e >= s2.e0 - 20) & (e <= s2.e0 + 100)
    mix = 0.7 * s2.norm + 0.3 * np.interp(e, o2.energy, o2.norm)
    comps = {"CdS": (s1.energy, s1.norm), "CdO": (o1.energy, o1.norm)}
    for sum_to_one in (False, True):
        # the _01 and _02 scans differ in energy calibration by up to ~1.5 eV: fit the shifts
        r = lcf(e[window], mix[window], comps, sum_to_one=sum_to_one, max_shift=3.0)
        assert r.weights == pytest.approx([0.7, 0.3], abs=0.05)
        assert np.all(r.errors > 0) and r.r_factor < 1e-4


def test_calibrated_shift_and_fixed_comparison_on_real_scans():
    """A real scan displaced by a known shift is found back; with that one shift and the fixed
    resolution, the same-compound scan (CdS _02) beats CdO _01 and nothing else is fitted."""
    s1, s2, o1 = (_measured(n) for n in ("CdS_10K_01", "CdS_10K_02", "CdO_10K_01"))
    # the "simulation": CdS _01 on a relative scale (minus 26700 eV) -> shift 26700 (+ scan offset)
    sim = normalize(s1.energy - 26700.0, s1.mu, name="CdS_01 relative")
    gauss = 1.4e-4 * s2.e0
    assert gauss == pytest.approx(3.74, abs=0.01)  # the paper's dE/E at the Cd K edge
    shift = calibrate_shift(sim, s1, gauss_fwhm=0.0)
    assert shift == pytest.approx(26700.0, abs=0.02)
    a_self = align_fixed(sim, s1, shift=shift, gauss_fwhm=0.0)
    assert a_self.r_factor < 1e-8 and a_self.scale == 1.0
    sim_o = normalize(o1.energy - 26700.0, o1.mu, name="CdO_01 relative")
    same, other = (align_fixed(x, s2, shift=shift, gauss_fwhm=gauss) for x in (sim, sim_o))
    assert same.r_factor < 0.1 * other.r_factor
    # broadening the model costs it against the unbroadened truth: the width is not a free knob
    assert align_fixed(sim, s1, shift=shift, gauss_fwhm=gauss).r_factor > 10 * a_self.r_factor
    with pytest.raises(InputError, match="covers less than 80"):
        align_fixed(sim, s1, shift=shift + 5000.0, gauss_fwhm=0.0)


def test_core_hole_table():
    assert core_hole_fwhm("Cd", "K") == pytest.approx(7.28)  # Krause & Oliver 1979
    assert core_hole_fwhm("Cd", "L3") == pytest.approx(2.62)
    with pytest.raises(InputError, match="gamma_hole"):
        core_hole_fwhm("Zn", "K")


def test_joint_lcf_shift_keeps_components_on_one_scale():
    """Components already on one energy scale, data displaced by 1.3 eV: one joint shift recovers
    it and the weights; per-component shifts would be free to trade shift against weight."""
    s1, o1 = (_measured(n) for n in ("CdS_10K_01", "CdO_10K_01"))
    e = s1.energy
    window = (e >= s1.e0 - 20) & (e <= s1.e0 + 100)
    true = 0.6 * s1.norm + 0.4 * np.interp(e, o1.energy, o1.norm)
    data = np.interp(e[window] - 1.3, e, true)
    comps = {"CdS": (s1.energy, s1.norm), "CdO": (o1.energy, o1.norm)}
    r = lcf(e[window], data, comps, sum_to_one=True, max_shift=3.0, joint=True)
    assert r.shifts == pytest.approx([1.3, 1.3], abs=0.02)
    assert r.weights == pytest.approx([0.6, 0.4], abs=0.005)


def test_fdm_selection_takes_the_best_per_spectrum_and_the_calibration_candidates(tmp_path):
    """xanes_fdm.select on real spectra standing in for screening results: a candidate that is the
    CdS_01 scan itself (on a shifted energy scale; also the calibration candidate) ranks first on
    CdS_01, the CdO_01 one first on CdO_01 (with the shift calibrated on CdS_01); fdm_best = 1
    takes those two, not the CdS_02 scan, and skips a candidate already screened with FDM."""
    from xasmpi.config import load_job
    from xasmpi.stages.reduce import read_spec
    from xasmpi.stages.xanes_fdm import select
    from xasmpi.testing import xaslib_dir
    from xasmpi.xanes.compare import normalize
    from xasmpi.xanes.fdmnes import FdmnesSettings

    lib = xaslib_dir()
    (tmp_path / "j.toml").write_text(f"""
[job]
name = "sel"
[[spectra]]
name = "CdS_01"
file = "{lib}/CdS_10K_01.xdi"
[[spectra]]
name = "CdO_01"
file = "{lib}/CdO_10K_01.xdi"
[[spectra]]
name = "CdS_02"
file = "{lib}/CdS_10K_02.xdi"
[xanes]
measured = ["CdS_01", "CdO_01"]
calibrate = [["S1", "CdS_01"]]
fdm_best = 1
""" + "".join(f'[[xanes.candidates]]\nname = "{c}"\ncrystal = true\nbuild = {{lattice = "zincblende"}}\n'
              for c in ("S1", "O1", "S2")))
    job = load_job(tmp_path / "j.toml")
    sims = {}
    for cand, spec in (("S1", "CdS_01"), ("O1", "CdO_01"), ("S2", "CdS_02")):
        s = read_spec(job.spectrum(spec))
        sims[cand] = normalize(s.energy - 26450.0, s.mu, name=cand)  # a simulation's own energy origin
    info = {c: {"settings": FdmnesSettings()} for c in sims}
    assert select(job, info, sims) == {"S1": ["CdS_01 #1", "calibration CdS_01"], "O1": ["CdO_01 #1"]}
    info["O1"] = {"settings": FdmnesSettings(mode="fdm")}
    assert select(job, info, sims) == {"S1": ["CdS_01 #1", "calibration CdS_01"]}
    job0 = load_job(tmp_path / "j.toml", overrides=["xanes.fdm_best=0"])
    assert select(job0, info, sims) == {}
