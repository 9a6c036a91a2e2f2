"""FEFF route (larch feffit) against the model-free fit on the same FEFF paths and real data."""
import numpy as np
import pytest

from xasmpi.exafs.feff import crystal, feff_paths, run_feff
from xasmpi.exafs.feffroute import feffit_route
from xasmpi.exafs.fit import DESettings, fit
from xasmpi.exafs.io import read_spectrum
from xasmpi.exafs.model import FitSpace, Param, PathModel
from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum
from xasmpi.testing import xaslib_dir


@pytest.fixture(scope="module")
def cds(tmp_path_factory):
    run = run_feff(crystal("CdS-wurtzite"), absorber_index=0, radius=6.0,
                   workdir=tmp_path_factory.mktemp("feff"), rmax_path=4.5)
    paths = feff_paths(run, [("S", 2.53), ("Cd", 4.13)], sigma2=0.0)
    red = reduce_spectrum(read_spectrum(xaslib_dir() / "CdS_10K_02.xdi"), ReductionSettings(kmax=14.0))
    return paths, red.chi


def test_optimisers_agree_with_feffit_on_same_model(cds):
    """σ² fixed at 0 (where xasmpi's exp(−2σ²k²) and larch's complex-momentum Debye–Waller
    factor coincide), N and a global ΔE0 free: plain DE, projected DE and larch feffit agree."""
    paths, data = cds
    model = PathModel.build(paths, space=FitSpace(kind="q", kmin=2, kmax=14, rmin=1.2, rmax=4.6), nk=344,
                            sigma2=[Param(0.0, False), Param(0.0, False)], de0_mode="global")
    vp = fit(model, data, settings=DESettings(seed=1, varpro=True))
    plain = fit(model, data, settings=DESettings(seed=1, varpro=False))
    lar = feffit_route(model, data)
    for name in ("n_Cd-S", "n_Cd-Cd"):
        assert plain.value(name) == pytest.approx(vp.value(name), rel=1e-3)
        assert lar.value(name) == pytest.approx(vp.value(name), rel=0.01)
    assert lar.ssr == pytest.approx(vp.ssr, rel=1e-3)
    assert lar.ssr_k2 == pytest.approx(lar.ssr, rel=1e-12)
    assert np.all(np.isfinite(lar.stderr)) and np.all(lar.stderr > 0)


def test_feffit_ssr_is_recomputed_on_model_free_definition(cds):
    paths, data = cds
    model = PathModel.build(paths, space=FitSpace(kind="k", kmin=3, kmax=13), nk=344, de0_mode="global")
    lar = feffit_route(model, data)
    k = model.k
    sel = (k >= 3 - 1e-9) & (k < 13 - 1e-9)
    assert lar.ssr_k2 == pytest.approx(np.sum(((data[:344] - lar.chi_model) * k * k)[sel] ** 2), rel=1e-12)
    # larch's Debye–Waller term differs from exp(−2σ²k²) at σ² != 0, so the model-free optimum on
    # its own model is at least as good as larch's point evaluated on that model
    mf = fit(model, data, settings=DESettings(seed=3))
    assert mf.ssr <= model.ssr(lar.params[None], data)[0] * (1 + 1e-9)


def test_feffit_with_delta_e0_groups_matches_the_model_free_fit(cds):
    """ΔE0 groups (the per-reference default of the fit stage): larch gets one e0 parameter per
    group, named as the model's, and lands on the model-free optimum of the same model."""
    paths, data = cds
    model = PathModel.build(paths, space=FitSpace(kind="q", kmin=2, kmax=14, rmin=1.2, rmax=4.6), nk=344,
                            sigma2=[Param(0.0, False), Param(0.0, False)], de0_mode="group",
                            de0_groups=["first", "second"])
    assert model.names[-2:] == ("de0_first", "de0_second")
    vp = fit(model, data, settings=DESettings(seed=1))
    lar = feffit_route(model, data, start=vp.params)
    assert lar.names == model.names
    for name in model.names:
        assert lar.value(name) == pytest.approx(vp.value(name), rel=0.01, abs=0.05)
    assert lar.ssr == pytest.approx(vp.ssr, rel=1e-3)
    assert abs(lar.value("de0_first") - lar.value("de0_second")) > 0.1  # two independent ΔE0


def test_feff_route_model_has_the_model_free_delta_e0_grouping():
    """paper.toml: the FEFF route builds its model with FEFF paths under the model's path names,
    so both routes get one ΔE0 per reference spectrum and the same free parameters (Table 1's two
    SSRs come from fits with the same number of parameters)."""
    from xasmpi.config import load_job
    from xasmpi.exafs.paths import Path, kgrid
    from xasmpi.stages import fit as fit_stage
    from xasmpi.testing import REPO

    job = load_job(REPO / "jobs" / "examples" / "paper.toml")
    k = kgrid()

    def fake(name, source):
        return Path(name=name, k=k, amp=np.ones_like(k), phase=np.zeros_like(k), r_ref=2.5, n_ref=4,
                    sigma2_ref=0.004, source=source)

    names = [p.name for p in job.paths]
    emp = fit_stage.model_for(job, {n: fake(n, "empirical") for n in names})
    ff = fit_stage.model_for(job, {n: fake(n, "feff") for n in names})
    assert emp.names == ff.names
    assert [n for n in emp.names if n.startswith("de0")] == ["de0_CdO_bulk", "de0_CdS_bulk"]
    assert fit_stage.column_names(emp)[-2:] == ["CdO_bulk.de0", "CdS_bulk.de0"]
    assert fit_stage.de0_group(job, "Cd-Cd") == "CdS_bulk"
