"""Uncertainty rules (xasmpi.exafs.uncertainty): systematic term, total, flags; the flags on
real data where a parameter is not determined."""
import numpy as np
import pytest

from xasmpi.exafs.uncertainty import combine, flags, systematic_term


def test_systematic_term_takes_the_largest_shift_per_setting_in_quadrature():
    best = np.array([2.0, 0.005])
    refits = np.array([[2.3, 0.005],    # E0 +1: shift 0.3
                       [1.9, 0.006],    # E0 -1: shift -0.1 (smaller: ignored)
                       [2.0, np.nan],   # kmax: failed for the 2nd parameter
                       [1.6, 0.004]])   # k weight: shift -0.4
    sys, shift, n = systematic_term(best, refits, ["E0", "E0", "kmax", "kw"])
    assert sys[0] == pytest.approx(np.hypot(0.3, 0.4))
    assert sys[1] == pytest.approx(np.hypot(0.001, 0.001))
    np.testing.assert_allclose(shift[:, 0], [0.3, -0.1, 0.0, -0.4])
    assert n.tolist() == [4, 3]
    sys, _, n = systematic_term(best, np.full((2, 2), np.nan), ["a", "b"])
    assert np.all(np.isnan(sys)) and n.tolist() == [0, 0]
    with pytest.raises(ValueError, match="setting names"):
        systematic_term(best, refits, ["E0"])


def test_flags_and_total():
    # sd of a uniform draw over [0, 12] is 12/sqrt(12) = 3.46: 3.3 (the paper's Cd-Cd) is >= 0.8 x that
    assert flags(5.6, 3.3, 0.0, 12.0) == ("undetermined",)
    assert flags(2.6, 0.27, 0.0, 4.0) == ()
    assert flags(4.0, 0.01, 0.0, 4.0) == ("at-bound",)
    assert flags(0.0, np.nan, 0.0, 6.0) == ("at-bound",)
    rng = np.random.default_rng(0)
    rep = np.column_stack([rng.normal(2.6, 0.1, 500), rng.normal(0.005, 0.0005, 500)])
    u = combine(["Cd-S.n", "Cd-S.sigma2"], [2.6, 0.005], [0.05, 0.0002], [[0, 4], [0, 0.03]],
                replicates=rep, mode="noise", sys=np.array([0.2, np.nan]))
    assert u[0].total == pytest.approx(np.hypot(rep[:, 0].std(ddof=1), 0.2))
    assert u[0].total >= u[0].sd and u[1].total == pytest.approx(u[1].sd)
    # restart spread is optimiser stability, not an uncertainty: the Jacobian stderr is the statistical term
    r = combine(["Cd-S.n"], [2.6], [0.05], [[0, 4]], replicates=rep[:, :1], mode="restart", sys=np.array([0.2]))
    assert r[0].stat == 0.05 and r[0].total == pytest.approx(np.hypot(0.05, 0.2))


def test_undetermined_and_at_bound_on_real_data():
    """Pure CdS (real CdS_10K_02) fitted with Cd-O, Cd-S and CdO's Cd-Cd (3.32 Å) paths: there is
    no rock-salt Cd-Cd shell, so N(Cd-Cd) goes to its bound 0, and then σ²(Cd-Cd) has no effect
    on the model: the data do not determine it."""
    from xasmpi.exafs.engine import fit_replicates
    from xasmpi.exafs.fit import DESettings, fit
    from xasmpi.testing import mixture_problem

    model, data, _ = mixture_problem(1.0)
    best = fit(model, data, settings=DESettings(seed=2))
    rep = fit_replicates(model, data, np.random.SeedSequence(11).spawn(150), mode="noise", base=best)
    ok = rep.status == 0
    u = {x.name: x for x in combine(model.names, best.params, best.stderr, model.bounds,
                                    replicates=rep.params[ok], mode="noise")}
    assert "at-bound" in u["n_Cd-Cd"].flags
    assert "undetermined" in u["sigma2_Cd-Cd"].flags
    assert u["n_Cd-S"].flags == () and u["n_Cd-S"].best == pytest.approx(4.0, rel=0.1)
