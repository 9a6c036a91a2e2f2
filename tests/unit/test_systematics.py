"""Systematics stage on a real-data mixture made at the μ(E) level (so its E0 differs from each
reference's by 1-2 eV, the issue's hard case): the variations planned, refits that re-extract
the paths, a non-zero systematic term, totals that cover the known N, the summary JSON keys and
Table 1's columns."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from xasmpi.config import load_job
from xasmpi.testing import xaslib_dir

X = 0.5  # known answer: N(Cd-S) = 4x = 2, N(Cd-O) = 6(1 - x) = 3, N(Cd-Cd 3.32 Å) = 12(1 - x) = 6

JOB = """
[job]
name = "mixture-systematics"
seed = 7
output = "out.h5"
[reduction]
kmax = 14.0
[[spectra]]
name = "CdS_ref"
file = "{lib}/CdS_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdO_ref"
file = "{lib}/CdO_10K_01.xdi"
role = "reference"
alternatives = ["{lib}/CdO_10K_02.xdi"]
[[spectra]]
name = "mix"
file = "mix.dat"
format = "ascii"
absorbance = "mu"
[[paths]]
name = "Cd-O"
reference = "CdO_ref"
rmin = 1.2
rmax = 2.45
n = 6
r = 2.348
sigma2 = 0.004
[[paths]]
name = "Cd-S"
reference = "CdS_ref"
rmin = 1.2
rmax = 3.5
n = 4
r = 2.53
sigma2 = 0.003
[[paths]]
name = "Cd-Cd"
reference = "CdO_ref"
rmin = 2.45
rmax = 3.5
n = 12
r = 3.32
sigma2 = 0.004
[fit]
kmin = 2.0
kmax = 14.0
rmin = 1.2
rmax = 3.5
replicates = {reps}
chunk = 30
{systematics}"""


def _write(tmp, *, reps=30, systematics=""):
    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum

    lib = xaslib_dir()
    st = ReductionSettings(kmax=14.0)
    a = reduce_spectrum(read_spectrum(lib / "CdS_10K_02.xdi"), st)
    b = reduce_spectrum(read_spectrum(lib / "CdO_10K_02.xdi"), st)
    mu = X * a.norm + (1 - X) * np.interp(a.energy, b.energy, b.norm)  # normalised μ(E) mixture
    np.savetxt(tmp / "mix.dat", np.c_[a.energy, mu], header="energy mu")
    job = tmp / "job.toml"
    job.write_text(JOB.format(lib=lib, reps=reps, systematics=systematics))
    return job


def test_variations_of_a_job(tmp_path):
    from xasmpi.stages.systematics import variations, varied_job

    job = load_job(_write(tmp_path, systematics="[fit.systematics]\nkmin_shift = 0.0\n"))
    assert job.fit.e0 == "per-reference" and job.fit.mode == "noise"  # the defaults
    vs = variations(job, {"CdS_ref": 26711.0, "CdO_ref": 26712.5})
    labels = [v.label for v in vs]
    # references in the order of the fitted paths (Cd-O first)
    assert labels[:4] == ["E0(CdO_ref) +1 eV", "E0(CdO_ref) -1 eV", "E0(CdS_ref) +1 eV", "E0(CdS_ref) -1 eV"]
    assert {"fit rmin +0.1 Å", "fit rmin -0.1 Å", "fit rmax +0.1 Å", "fit rmax -0.1 Å",
            "edge CdO_ref 2.45 Å +0.1 Å", "edge CdO_ref 2.45 Å -0.1 Å", "kmax -2 Å^-1",
            "k weight 1", "k weight 3"} <= set(labels)
    assert not any(lab.startswith("kmin") for lab in labels)  # kmin_shift = 0: left out
    assert [v.setting for v in vs].count("scan(CdO_ref)") == 1
    # moving the fit window's rmin moves every extraction window that starts there (they keep tiling)
    v = next(v for v in vs if v.label == "fit rmin +0.1 Å")
    vj = varied_job(job, v)
    assert vj.fit.rmin == pytest.approx(1.3)
    assert {p.name: p.rmin for p in vj.paths} == pytest.approx({"Cd-O": 1.3, "Cd-S": 1.3, "Cd-Cd": 2.45})
    v = next(v for v in vs if v.label == "edge CdO_ref 2.45 Å -0.1 Å")
    vj = varied_job(job, v)
    assert (vj.path("Cd-O").rmax, vj.path("Cd-Cd").rmin) == pytest.approx((2.35, 2.35))
    v = next(v for v in vs if v.label == "E0(CdO_ref) -1 eV")
    assert varied_job(job, v).spectrum("CdO_ref").reduction["e0"] == pytest.approx(26711.5)
    v = next(v for v in vs if v.setting == "scan(CdO_ref)")
    assert varied_job(job, v).spectrum("CdO_ref").file.endswith("CdO_10K_02.xdi")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sys")
    job = _write(tmp)
    run_cli(["run", job], cwd=tmp, check=True, timeout=900)
    return tmp / "out.h5", json.loads(run_cli(["summary", tmp / "out.h5", "--json"], check=True).stdout)


@pytest.mark.slow
def test_systematic_term_present_nonzero_and_total_covers_it(campaign):
    out, s = campaign
    smp = s["samples"]["mix"]
    assert smp["e0_mode"] == "group" and set(smp["e0"]) == {"CdS_ref", "CdO_ref"}
    # the defaults: E0 ±1 eV of 2 references, fit rmin/rmax ±0.1 Å, CdO's inner edge ±0.1 Å,
    # kmin ±0.5, kmax −2, k weight 1 and 3, CdO's alternative scan
    assert smp["systematics"]["ok"] == len(smp["systematics"]["variations"]) == 16
    keys = {f"{p}_{t}" for p in ("N", "sigma2") for t in ("best", "stderr", "mean", "sd", "sys", "total_sd", "flags")}
    truth = {"Cd-S": 4 * X, "Cd-O": 6 * (1 - X), "Cd-Cd": 12 * (1 - X)}
    for path, d in smp["paths"].items():
        assert keys <= set(d), path
        assert d["N_sys"] > 0 and d["N_total_sd"] >= d["N_sd"] > 0
        assert d["N_total_sd"] == pytest.approx(np.hypot(d["N_sd"], d["N_sys"]))
        assert d["N_flags"] == [] and d["N_stderr"] > 0
        # the systematic term is what makes the interval honest (the bootstrap sd alone is ~10x smaller)
        assert abs(d["N_best"] - truth[path]) <= 2 * d["N_total_sd"], path
    for g in ("CdS_ref", "CdO_ref"):  # E0 ±1 eV of a reference moves its ΔE0 by about 1 eV
        assert 0.5 < smp["e0"][g]["dE0_sys"] < 2.0
    with h5py.File(out, "r") as f:
        sg = f["exafs/mix/systematics"]
        assert sg["params"].shape == (16, 8) and np.all(sg["status"][:] == 1)
        assert "largest" in sg.attrs["rule"] or "max" in sg.attrs["rule"]
        assert json.loads(sg.attrs["variations"])[0]["label"] == "E0(CdO_ref) +1 eV"


@pytest.mark.slow
def test_refit_is_deterministic_and_table1_shows_every_term(campaign):
    from xasmpi.report.tables import table1
    from xasmpi.stages import systematics

    out, s = campaign
    job = load_job(out.parent / "job.toml")
    plan = systematics.plan(job, {})
    task = next(t for t in plan.tasks if plan.context["variations"][t.payload[1]].label == "edge CdO_ref 2.45 Å +0.1 Å")
    res = systematics.run_batch([task], plan.context)[0]
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(res.values["params"], f["exafs/mix/systematics/params"][task.row])
        t = table1(f)
    for c in ("n_s02_best", "n_s02_stderr", "n_s02_mean", "n_s02_sd", "n_s02_sys", "n_s02_total",
              "sigma2_sys", "de0_group", "de0_total", "flags", "mode"):
        assert c in t.columns
    row = next(r for r in t.rows if r["path"] == "Cd-S")
    d = s["samples"]["mix"]["paths"]["Cd-S"]
    assert row["n_s02_total"] == pytest.approx(d["N_total_sd"]) and row["mode"] == "noise"
    assert row["de0_group"] == "CdS_ref"
    assert "total" in t.to_markdown()


def test_angle_systematic_from_refit_distance_pairs(tmp_path):
    """The bond angle's systematic term: the angle of each refit's (R1, R2) against the best fit's,
    largest shift per setting, in quadrature (the same rule as every parameter)."""
    from xasmpi.analysis.angles import angle_from_shells
    from xasmpi.store.results import angle_systematic

    ang = lambda r1, r2: angle_from_shells(r1, r2).angle  # noqa: E731
    names = ["Cd-S.n", "Cd-S.r", "Cd-Cd.r"]
    best = [2.6, 2.4881, 3.9769]
    refits = np.array([[2.7, 2.50, 3.99], [2.5, 2.48, 3.97], [2.6, 2.49, 3.95], [0, 0, 0]])
    with h5py.File(tmp_path / "a.h5", "w") as f:
        g = f.create_group("exafs/S")
        g.create_group("fit")["params"] = best
        sg = g.create_group("systematics")
        sg["params"], sg["status"] = refits, np.array([1, 1, 1, -1], dtype=np.int8)
        sg.attrs["names"], sg.attrs["settings"] = names, ["E0", "E0", "kmax", "kw"]
        got = angle_systematic(g, "Cd-S.r", "Cd-Cd.r")
        assert np.isnan(angle_systematic(g, "Cd-S.r", "Cd-O.r"))
    b = ang(2.4881, 3.9769)
    e0 = max(abs(ang(2.50, 3.99) - b), abs(ang(2.48, 3.97) - b))
    assert got == pytest.approx(np.hypot(e0, ang(2.49, 3.95) - b))


@pytest.mark.slow
def test_rerun_resumes_the_refits_from_the_journal(campaign):
    out, _ = campaign
    with h5py.File(out, "r") as f:
        before = f["exafs/mix/systematics/params"][()]
    p = run_cli(["run", out.parent / "job.toml"], cwd=out.parent, check=True, timeout=900)
    assert "stage systematics: 16 tasks, 16 already done (0 failed), 0 to run" in p.stderr + p.stdout
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["exafs/mix/systematics/params"][()], before)


def test_fingerprints_keep_replicates_and_refits_independent(tmp_path):
    """Changing the refits' settings (or the alternative scans) must not invalidate 10,000
    journalled replicates, and changing the replicates must not invalidate the refits."""
    job = _write(tmp_path)
    base = load_job(job)
    for ov in (["fit.systematics.kweights=[2]"], ["fit.systematics.e0_shift=2.0"],
               ["spectra.1.alternatives=[]"]):
        j = load_job(job, ov)
        assert j.fingerprint("fit") == base.fingerprint("fit"), ov
        assert j.fingerprint("systematics") != base.fingerprint("systematics"), ov
    for ov in (["fit.replicates=500"], ["fit.mode=residual"], ["fit.chunk=10"]):
        j = load_job(job, ov)
        assert j.fingerprint("systematics") == base.fingerprint("systematics"), ov
        assert j.fingerprint("fit") != base.fingerprint("fit"), ov
    j = load_job(job, ["fit.kmax=12.0"])  # the model changes: both are recomputed
    assert j.fingerprint("fit") != base.fingerprint("fit") and j.fingerprint("systematics") != base.fingerprint("systematics")
