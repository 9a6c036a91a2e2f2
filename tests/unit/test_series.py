"""Two-sample comparison (xasmpi.analysis.series).

Known answers: two normal samples with a known shift (z, p, OVL = 2Φ(−d/2)); simulated isomers
(FEFF paths of zinc-blende CdS) that differ only in N(Cd–Cd) by 30 %, fitted with noise
replicates: the N(Cd–Cd) shift is significant, the N(Cd–S) difference of 0 is not, and the
wavelet maps differ most at the second shell.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from xasmpi.analysis.series import compare_parameter, compare_samples, wavelet_difference
from xasmpi.errors import InputError


def test_shift_significance_and_overlap_of_known_normals():
    from scipy.special import ndtr

    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, 4000)
    b = rng.normal(1.0, 1.0, 4000)
    s = compare_parameter(a, b, name="x")
    assert s.shift == pytest.approx(1.0, abs=0.05)
    assert s.sigma == pytest.approx(math.sqrt(2), rel=0.03)
    assert s.z == pytest.approx(1 / math.sqrt(2), abs=0.05)
    assert s.p == pytest.approx(2 * ndtr(-s.z))
    assert s.ovl == pytest.approx(2 * ndtr(-0.5), abs=0.03)  # 0.617
    assert not s.significant
    # a systematic term on each sample widens sigma in quadrature; shared systematics cancel
    t = compare_parameter(a, b, name="x", sys_a=1.0, sys_b=1.0)
    assert t.sigma == pytest.approx(2.0, rel=0.03)
    u = compare_parameter(a, b, name="x", sys_a=1.0, sys_b=1.0, shared_systematics=True)
    assert u.sigma == pytest.approx(s.sigma)
    with pytest.raises(InputError):
        compare_parameter([1.0], b, name="x")
    with pytest.raises(InputError):
        compare_samples({"a": a}, {"b": b})
    with pytest.raises(InputError):
        compare_parameter(a, b, name="x", sys_shift=0.5, shared_systematics=True)


def test_paired_systematic_of_the_shift():
    """Refits of both samples under the same variations: a choice that moves both alike cancels,
    one that moves them differently counts with the systematics stage's rule (max over the ±
    variations of a setting, settings in quadrature)."""
    from xasmpi.analysis.series import paired_systematic

    settings = ["E0", "E0", "kmin", "kmin", "kweight"]
    best_a, best_b = np.array([4.0, 6.0]), np.array([4.0, 7.8])
    ra = best_a + np.array([[0.3, 0.5], [-0.3, -0.5], [0.2, 1.0], [0.0, -0.2], [-0.4, -1.0]])
    rb = best_b + np.array([[0.3, 0.5], [-0.3, -0.5], [0.2, 1.6], [0.0, -0.2], [-0.4, -1.4]])
    sys = paired_systematic(best_a, ra, best_b, rb, settings)
    assert sys[0] == 0.0                                   # parameter 0: every variation moves both alike
    assert sys[1] == pytest.approx(math.hypot(0.6, 0.4))   # kmin +0.6, kweight -0.4, E0 cancels
    rng = np.random.default_rng(2)
    a, b = rng.normal(6.0, 0.1, 2000), rng.normal(7.8, 0.1, 2000)
    s = compare_samples({"Cd-Cd.n": a}, {"Cd-Cd.n": b}, sys_a={"Cd-Cd.n": 1.5}, sys_b={"Cd-Cd.n": 1.5},
                        sys_shift={"Cd-Cd.n": sys[1]})[0]
    assert s.sigma == pytest.approx(math.sqrt(0.02 + sys[1] ** 2), rel=0.03) and s.sys_shift == sys[1]
    assert s.significant
    indep = compare_samples({"Cd-Cd.n": a}, {"Cd-Cd.n": b}, sys_a={"Cd-Cd.n": 1.5}, sys_b={"Cd-Cd.n": 1.5})[0]
    assert not indep.significant and math.isnan(indep.sys_shift)  # 1.8 ± 2.1: the double-counted systematics
    with pytest.raises(InputError):
        paired_systematic(best_a, ra, best_b, rb[:4], settings)


@pytest.fixture(scope="module")
def zb_paths(tmp_path_factory):
    from xasmpi.exafs.feff import crystal, feff_paths, run_feff

    run = run_feff(crystal("CdS-zincblende"), absorber_index=0, radius=5.0, rmax_path=4.3,
                   workdir=tmp_path_factory.mktemp("feff-zb"))
    return feff_paths(run, [("S", 2.519), ("Cd", 4.114)], sigma2=[0.005, 0.008])


def test_isomers_differing_in_second_shell_n(zb_paths):
    from xasmpi.exafs.engine import fit_replicates
    from xasmpi.exafs.fit import DESettings, fit
    from xasmpi.exafs.model import FitSpace, Param, PathModel
    from xasmpi.exafs.wavelet import cauchy_wavelet

    space = FitSpace(kind="q", kmin=2.5, kmax=14.0, kweight=2, rmin=1.2, rmax=4.4)
    model = PathModel.build(zb_paths, space=space,
                            n=[Param(4.0, True, 0.0, 12.0), Param(12.0, True, 0.0, 24.0)],
                            sigma2=[Param(0.005, True, 0.0, 0.03), Param(0.008, True, 0.0, 0.03)])
    k = model.k
    rng = np.random.default_rng(7)
    reps, chis = {}, {}
    for name, n_cd in (("MSC-311", 6.0), ("MSC-322", 7.8)):  # +30 % N(Cd-Cd), the same N(Cd-S)
        truth = np.array([[4.0, n_cd, 0.005, 0.008]])
        chi = model.evaluate(truth)[0] + rng.normal(0.0, 0.0005, k.size)
        best = fit(model, chi, settings=DESettings(seed=1))
        seeds = np.random.SeedSequence(11).spawn(60) if name == "MSC-311" else np.random.SeedSequence(12).spawn(60)
        batch = fit_replicates(model, chi, seeds, mode="noise", base=best)
        reps[name] = {f"{p.split('_', 1)[1]}.{p.split('_', 1)[0]}": batch.params[:, i]
                      for i, p in enumerate(model.names)}
        chis[name] = chi
    shifts = {s.name: s for s in compare_samples(reps["MSC-311"], reps["MSC-322"])}
    cdcd, cds = shifts["Cd-Cd.n"], shifts["Cd-S.n"]
    print(f"N(Cd-Cd): shift {cdcd.shift:.3f} ± {cdcd.sigma:.3f}, z {cdcd.z:.1f}, p {cdcd.p:.2g}, OVL {cdcd.ovl:.3f}; "
          f"N(Cd-S): shift {cds.shift:.3f} ± {cds.sigma:.3f}, z {cds.z:.2f}, p {cds.p:.2g}, OVL {cds.ovl:.3f}")
    assert cdcd.significant and cdcd.shift > 0 and abs(cdcd.shift - 1.8) < 3 * cdcd.sigma and cdcd.ovl < 0.2
    assert not cds.significant and cds.ovl > 0.3
    w = {n: cauchy_wavelet(k, c, kweight=2, rmax_out=6.0) for n, c in chis.items()}
    (ra, wa), (_, wb) = w["MSC-311"], w["MSC-322"]
    d = wavelet_difference(k, ra, np.abs(wa), np.abs(wb))
    assert 3.3 < d.peak_r < 4.3  # the Cd-Cd shell at 4.11 Å appears at ~3.8 Å uncorrected
    assert d.diff.max() > 0  # more Cd-Cd in MSC-322


def test_joint_fit_of_a_temperature_series_with_shared_n(zb_paths):
    """Three simulated temperatures: N(Cd–S) = 4 and N(Cd–Cd) = 12 shared, σ² rising with T."""
    from xasmpi.analysis.series import joint_fit
    from xasmpi.exafs.model import FitSpace, Param, PathModel

    space = FitSpace(kind="q", kmin=2.5, kmax=14.0, kweight=2, rmin=1.2, rmax=4.4)
    model = PathModel.build(zb_paths, space=space,
                            n=[Param(4.0, True, 0.0, 12.0), Param(12.0, True, 0.0, 24.0)],
                            sigma2=[Param(0.005, True, 0.0, 0.03), Param(0.008, True, 0.0, 0.03)])
    truth = {"10K": (0.0030, 0.0060), "150K": (0.0045, 0.0095), "300K": (0.0065, 0.0140)}
    rng = np.random.default_rng(5)
    data = {t: model.evaluate(np.array([[4.0, 12.0, s1, s2]]))[0] + rng.normal(0.0, 0.0005, model.nk)
            for t, (s1, s2) in truth.items()}
    jf = joint_fit({t: model for t in truth}, data, shared=("n_Cd-S", "n_Cd-Cd"))
    n_s, e_s = jf.value("n_Cd-S")
    n_cd, e_cd = jf.value("n_Cd-Cd")
    print(f"joint: N(Cd-S) {n_s:.3f} ± {e_s:.3f}, N(Cd-Cd) {n_cd:.2f} ± {e_cd:.2f}; sigma2 "
          + ", ".join(f"{t}: {jf.value('sigma2_Cd-S', t)[0]:.5f}/{jf.value('sigma2_Cd-Cd', t)[0]:.5f}" for t in truth)
          + "; R-factors " + ", ".join(f"{t} {jf.rfactor[t]:.2g}" for t in truth))
    assert n_s == pytest.approx(4.0, rel=0.03) and n_cd == pytest.approx(12.0, rel=0.08)
    s_s = [jf.value("sigma2_Cd-S", t)[0] for t in truth]
    s_cd = [jf.value("sigma2_Cd-Cd", t)[0] for t in truth]
    assert s_s == sorted(s_s) and s_cd == sorted(s_cd)  # σ² rises with temperature
    for (t, (a, b)), x, y in zip(truth.items(), s_s, s_cd):
        assert x == pytest.approx(a, abs=0.0004) and y == pytest.approx(b, abs=0.0015)
    rows = jf.table()
    assert [r["dataset"] for r in rows] == list(truth) and all(r["rfactor"] < 0.01 for r in rows)
    assert len(jf.names) == 2 + 2 * 3  # shared N once, σ² per data set
