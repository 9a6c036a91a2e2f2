"""Replicate data sets: restart / noise / residual, seeded per replicate."""
import numpy as np
import pytest

from xasmpi.errors import ConfigError
from xasmpi.exafs.model import FitSpace, PathModel
from xasmpi.exafs.paths import Path, kgrid
from xasmpi.exafs.replicates import block_length, replicate_data


@pytest.fixture(scope="module")
def setup():
    k = kgrid()
    p = Path(name="a", k=k, amp=np.ones_like(k), phase=-0.5 - 0.1 * k, r_ref=2.5, n_ref=4,
             sigma2_ref=0.004, source="test")
    model = PathModel.build([p], space=FitSpace(kind="q", kmin=2, kmax=14, rmin=1.2, rmax=3.5), nk=341)
    chi_model = model.evaluate(np.array([[4.0, 0.005]]))[0]
    rng = np.random.default_rng(0)
    data = chi_model + 0.002 * rng.standard_normal(chi_model.size)
    return model, data, chi_model


def test_restart_is_the_data(setup):
    model, data, _ = setup
    out = replicate_data(model, data, np.random.SeedSequence(1).spawn(3), mode="restart")
    np.testing.assert_array_equal(out, np.tile(data, (3, 1)))


def test_noise_has_requested_sigma_and_depends_only_on_seed(setup):
    model, data, chi_model = setup
    seeds = np.random.SeedSequence(5).spawn(200)
    out = replicate_data(model, data, seeds, mode="noise", chi_model=chi_model, eps_k=0.01)
    assert np.std(out - chi_model) == pytest.approx(0.01, rel=0.02)
    assert abs(np.mean(out - chi_model)) < 1e-3
    # same seed, different batch -> same data; seeds are not consumed (no spawn on them)
    again = replicate_data(model, data, seeds[10:12], mode="noise", chi_model=chi_model, eps_k=0.01)
    np.testing.assert_array_equal(again, out[10:12])


def test_residual_blocks_resample_weighted_residuals(setup):
    model, data, chi_model = setup
    assert block_length(model) == int(np.ceil(np.pi / 2.3 / 0.05))       # 28 points = 1.4 Å⁻¹
    seeds = np.random.SeedSequence(9).spawn(50)
    out = replicate_data(model, data, seeds, mode="residual", chi_model=chi_model)
    k = model.k
    lo, hi = model.space.kspan()
    sup = (k >= lo) & (k <= hi)
    res_w = ((data - chi_model) * k ** 2)[sup]
    boot_w = ((out - chi_model) * k ** 2)[:, sup]
    np.testing.assert_array_equal(out[:, ~sup], np.tile(chi_model[~sup], (50, 1)))
    # every bootstrap value is one of the original weighted residuals, in runs of the block length
    assert np.all(np.isin(np.round(boot_w, 12), np.round(res_w, 12)))
    first = np.flatnonzero(np.isclose(res_w, boot_w[0, 0]))[0]
    np.testing.assert_allclose(boot_w[0, :28], res_w[first:first + 28])
    assert boot_w.std() == pytest.approx(res_w.std(), rel=0.2)


def test_bad_mode_and_missing_inputs(setup):
    model, data, chi_model = setup
    seeds = np.random.SeedSequence(1).spawn(2)
    with pytest.raises(ConfigError, match="mode"):
        replicate_data(model, data, seeds, mode="jackknife")
    with pytest.raises(ConfigError, match="eps_k"):
        replicate_data(model, data, seeds, mode="noise", chi_model=chi_model)
    with pytest.raises(ConfigError, match="SeedSequence"):
        replicate_data(model, data, [1, 2], mode="restart")
