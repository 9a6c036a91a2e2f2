"""EXAFS campaign under real mpirun on the real CdS data: 2,000 noise replicates, rank
independence, sane statistics close to the noise-free best fit, summary JSON, analysis."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from xasmpi.testing import xaslib_dir

pytestmark = pytest.mark.mpi

JOB = """
[job]
name = "cds-noise"
seed = 99
output = "{out}"
[[spectra]]
name = "CdS_ref"
file = "{lib}/CdS_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdS"
file = "{lib}/CdS_10K_02.xdi"
[[paths]]
name = "Cd-S"
reference = "CdS_ref"
rmin = 1.3
rmax = 2.9
n = 4
r = 2.53
sigma2 = 0.003
structure = "CdS-wurtzite"
scatterer = "S"
[[paths]]
name = "Cd-Cd"
reference = "CdS_ref"
rmin = 2.9
rmax = 4.4
n = 12
r = 4.13
sigma2 = 0.006
structure = "CdS-wurtzite"
scatterer = "Cd"
[fit]
rmin = 1.3
rmax = 4.4
replicates = 2000
chunk = 250
mode = "noise"
e0 = "fixed"                    # keeps 2,000 replicates fast (free ΔE0 is the per-reference default)
[fit.systematics]
kweights = [2, 3]
[fit.params.Cd-Cd]
n = [0, 24]
[feff]
[analysis]
mass = 5160
angle_paths = ["Cd-S", "Cd-Cd"]
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exafs")
    out = {}
    for n in (1, 2):
        job = tmp / f"job{n}.toml"
        job.write_text(JOB.format(out=f"r{n}.h5", lib=xaslib_dir()))
        p = run_cli(["run", job], n=n, cwd=tmp, check=True, timeout=900)
        out[n] = (tmp / f"r{n}.h5", p)
    return out


def test_one_and_two_ranks_identical(runs):
    with h5py.File(runs[1][0], "r") as a, h5py.File(runs[2][0], "r") as b:
        for key in ("params", "ssr", "status"):
            x, y = a[f"exafs/CdS/replicates/{key}"][:], b[f"exafs/CdS/replicates/{key}"][:]
            assert np.array_equal(x, y), key
        assert a["exafs/CdS/replicates/status"][:].tolist().count(1) == 2000
        # the systematic refits ran as tasks across the ranks and do not depend on their number
        sa, sb = a["exafs/CdS/systematics"], b["exafs/CdS/systematics"]
        assert np.array_equal(sa["params"][:], sb["params"][:]) and np.array_equal(sa["sys"][:], sb["sys"][:])
        assert np.all(sb["status"][:] == 1) and sb["params"].shape[0] == len(sb.attrs["labels"]) == 13
        assert "extraction anchored" in list(sb.attrs["labels"])  # the paths name structure + scatterer
        assert set(sb["rank"][:].tolist()) == {0, 1}  # dynamic queue: both ranks refitted


def test_uncertainty_terms_in_summary_log_and_analysis(runs):
    s = json.loads(run_cli(["summary", runs[2][0], "--json"], check=True).stdout)
    d = s["samples"]["CdS"]["paths"]["Cd-S"]
    for key in ("N_best", "N_stderr", "N_mean", "N_sd", "N_sys", "N_total_sd", "N_flags"):
        assert key in d
    assert d["N_sys"] > 0 and d["N_total_sd"] >= d["N_sd"]
    log = runs[2][1].stderr + runs[2][1].stdout
    assert "systematic" in log and "total" in log and "(stderr)" in log
    assert "from fixed input distances" in log  # both R fixed in this job: no ± for the angle
    with h5py.File(runs[2][0], "r") as f:
        st = f["analysis/stoichiometry/CdS"].attrs
        assert st["cn_sd"] == pytest.approx(d["N_total_sd"])  # the CN carries the total uncertainty
        assert np.isnan(f["analysis/angle/CdS"].attrs["sd"])


def test_summary_json_is_sane_and_close_to_best_fit(runs):
    s = json.loads(run_cli(["summary", runs[2][0], "--json"], check=True).stdout)
    smp = s["samples"]["CdS"]
    assert smp["replicates_done"] == 2000 and smp["replicates_failed"] == 0 and s["failed_tasks"] == 0
    with h5py.File(runs[2][0], "r") as f:
        names = list(f["exafs/CdS/fit/names"].asstr()[:])
        best = dict(zip(names, f["exafs/CdS/fit/params"][:]))
        stderr = dict(zip(names, f["exafs/CdS/fit/stderr"][:]))
        assert f["exafs/CdS/fit"].attrs["ssr_k2"] == pytest.approx(smp["ssr_best"])
    cds, cdcd = smp["paths"]["Cd-S"], smp["paths"]["Cd-Cd"]
    # known answer (wurtzite CdS): N(Cd-S) = 4.0 +- 0.4, N(Cd-Cd) = 12 +- 2
    assert 3.6 < cds["N_mean"] < 4.4 and 10 < cdcd["N_mean"] < 14
    # parametric bootstrap around the best fit: means near the best fit, spreads small but non-zero
    for path, d in (("Cd-S", cds), ("Cd-Cd", cdcd)):
        n_best = best[f"{path}.n"]
        assert 0 < d["N_sd"] < 0.1 * n_best
        assert abs(d["N_mean"] - n_best) < 3 * d["N_sd"] + 1e-3 * n_best
        assert 0 < d["sigma2_sd"] < 0.002
        # the noise bootstrap measures the statistical spread (epsilon_k from the high-R noise),
        # larch's stderr is scaled by the misfit, which for 10 K bulk data is mostly systematic
        assert d["N_sd"] < stderr[f"{path}.n"]


def test_stats_histograms_and_analysis_written(runs):
    with h5py.File(runs[2][0], "r") as f:
        st = f["exafs/CdS/stats"]
        assert st["percentiles"].shape == (4, 5)
        counts = st["hist/Cd-S/counts"][:]
        assert counts.sum() == 2000
        st = f["analysis/stoichiometry/CdS"]
        mass, z = st["mass"][:], st["z"][:]
        assert mass.size > 0 and np.all(np.abs(mass - 5160) <= 20)
        assert np.all(np.diff(z) >= 0)  # ranked by distance to the fitted CN (in sd)
        names = list(f["exafs/CdS/stats/names"].asstr()[:])
        assert st.attrs["cn"] == pytest.approx(f["exafs/CdS/stats/mean"][names.index("Cd-S.n")], rel=1e-9)
        ang = f["analysis/angle/CdS"].attrs
        # both R fixed at the wurtzite reference: 2 asin(4.13 / (2 * 2.53)) = 109.4 deg
        assert ang["angle"] == pytest.approx(2 * np.degrees(np.arcsin(4.13 / (2 * 2.53))), abs=0.01)


def test_feff_route_fits_the_same_model_and_reports_ssr_on_the_same_definition(runs):
    with h5py.File(runs[2][0], "r") as f:
        mf, fe = f["exafs/CdS/fit"], f["exafs/CdS/feff"]
        assert list(fe["names"].asstr()[:]) == list(mf["names"].asstr()[:]) + ["global.de0"]
        n_mf = dict(zip(mf["names"].asstr()[:], mf["params"][:]))
        n_fe = dict(zip(fe["names"].asstr()[:], fe["params"][:]))
        ssr_mf, ssr_fe = mf.attrs["ssr_k2"], fe.attrs["ssr_k2"]
        assert fe["model"].shape == mf["model"].shape
    # FEFF amplitudes differ from the measured ones (paper, Fig. S1), but both routes must
    # describe the same bulk CdS: N(Cd-S) within 25 %, finite comparable SSR
    assert abs(n_fe["Cd-S.n"] / n_mf["Cd-S.n"] - 1) < 0.25
    assert 0 < ssr_mf < ssr_fe * 5 and 0 < ssr_fe < ssr_mf * 50
    s = json.loads(run_cli(["summary", runs[2][0], "--json"], check=True).stdout)
    assert s["samples"]["CdS"]["ssr_feff"] == pytest.approx(ssr_fe)


def test_free_distances_give_the_wurtzite_bond_angle_from_replicate_pairs(tmp_path):
    """R(Cd-S) and R(Cd-Cd) free: known answer 2.53 and 4.13 Å (wurtzite CdS), angle from pairs."""
    job = tmp_path / "rfree.toml"
    job.write_text(JOB.format(out="rfree.h5", lib=xaslib_dir()))
    run_cli(["run", job, "--set", "fit.replicates=200", "--set", "fit.params.Cd-S.r_free=true",
             "--set", "fit.params.Cd-Cd.r_free=true", "--stages", "reduce,fit,analysis"],
            cwd=tmp_path, check=True, timeout=600)
    s = json.loads(run_cli(["summary", tmp_path / "rfree.h5", "--json"], check=True).stdout)
    p = s["samples"]["CdS"]["paths"]
    assert p["Cd-S"]["R_mean"] == pytest.approx(2.53, abs=0.02)
    assert p["Cd-Cd"]["R_mean"] == pytest.approx(4.13, abs=0.03)
    with h5py.File(tmp_path / "rfree.h5", "r") as f:
        a = f["analysis/angle/CdS"]
        assert "replicate" in a.attrs["method"]
        assert a["angles"].shape == (200,)
        expected = 2 * np.degrees(np.arcsin(p["Cd-Cd"]["R_mean"] / (2 * p["Cd-S"]["R_mean"])))
        assert a.attrs["angle"] == pytest.approx(expected, abs=0.05)
        assert abs(a.attrs["angle"] - 109.47) < 1.0  # a tetrahedral bulk crystal
    # the CLI reads the same replicate pairs
    out = run_cli(["angle", "--from", tmp_path / "rfree.h5", "--sample", "CdS", "--r1-path", "Cd-S",
                   "--r2-path", "Cd-Cd", "--json"], check=True).stdout
    assert json.loads(out)["angle_deg"] == pytest.approx(expected, abs=0.05)
