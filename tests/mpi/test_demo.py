"""The README's main command: the demo campaign on simulated data, under mpirun -n 2."""
from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.mpi, pytest.mark.fdmnes, pytest.mark.slow]


def test_demo_runs_the_whole_pipeline_and_recovers_the_truth(tmp_path):
    out = tmp_path / "demo"
    p = run_cli(["demo", "--out", out], n=2, cwd=tmp_path, check=True, timeout=1800)
    assert f"Report: {out / 'report'}" in p.stdout
    assert "recovered vs true values" in p.stdout
    s = json.loads(run_cli(["summary", out / "results.h5", "--json"], check=True).stdout)
    assert s["simulated"] is True and s["failed_tasks"] == 0
    assert "rank MSC_sim: winner" in p.stderr and "rank MSC_iso: winner" in p.stderr
    assert "extraction auto: best-fit SSR of MSC_sim, MSC_iso" in p.stderr   # the default chooses, and says so
    assert s["stages_done"] == ["reduce", "fit", "systematics", "feff", "relax", "xanes", "analysis", "rank"]
    assert s["samples"]["MSC_iso"]["truth"]["Cd-Cd"]["n"] == pytest.approx(1.3 * 5.4)
    smp = s["samples"]["MSC_sim"]
    truth = smp["truth"]
    assert truth["Cd-S"] == {"n": 2.6, "r": 2.49, "sigma2": 0.006, "de0": 1.5}
    assert smp["replicates_done"] == 500 and smp["mode"] == "noise"
    assert set(smp["e0"]) == {"CdS_ref", "CdO_ref"}  # one free ΔE0 per reference (the default)
    # every recovered N lies inside its total 2σ interval (replicate sd ⊕ systematic): the
    # uncertainty the demo prints is honest.  (Issue 10's accuracy target, every N within 5 %,
    # is measured by benchmarks/accuracy.py; today N(Cd-S) comes back ~20 % high.)
    for path in ("Cd-O", "Cd-S", "Cd-Cd"):
        d = smp["paths"][path]
        assert d["N_sys"] is not None and d["N_total_sd"] >= d["N_sd"], path
        assert abs(d["N_mean"] - truth[path]["n"]) <= 2 * d["N_total_sd"], (path, d, truth[path])
    assert "ssr_feff" in smp and smp["ssr_best"] > 0
    assert set(s["xanes"]) == {"zincblende", "rocksalt", "betasn"}
    rep = out / "report"
    for fig in ("fig1a_k2chi", "fig1b_chir", "fig1c_wavelet", "fig2a_fits", "fig2b_n_histograms",
                "fig3a_xanes_measured", "fig3b_xanes_candidates", "fig3c_xanes_lcf", "fig4_bond_angles"):
        assert (rep / f"{fig}.png").stat().st_size > 10_000 and (rep / f"{fig}.pdf").is_file(), fig
    md = (rep / "report.md").read_text()
    assert "SIMULATED" in md and "Recovered vs true" in md
    # the rank stage: every candidate ranked on both samples (EXAFS; + XANES for MSC_sim), and the
    # two-sample comparison of the job's [rank] compare, each with its figure in the report
    assert "## Which structure is it? Candidate ranking" in md and "![ranking](ranking.png)" in md
    ranking = list(csv.DictReader(open(rep / "ranking.csv")))
    assert {r["dataset"] for r in ranking} == {"MSC_sim", "MSC_iso"}
    assert {r["candidate"] for r in ranking} == {"zincblende", "rocksalt", "betasn"}
    for ds in ("MSC_sim", "MSC_iso"):
        post = [float(r["posterior"]) for r in ranking if r["dataset"] == ds]
        assert sum(post) == pytest.approx(1.0) and post == sorted(post, reverse=True)
    assert all(r["xanes_ln_Z"] for r in ranking if r["dataset"] == "MSC_sim")
    assert "## Two samples compared: MSC_sim vs MSC_iso" in md and "| Cd-Cd.n |" in md
    assert (rep / "compare_MSC_sim_MSC_iso.png").stat().st_size > 10_000
    # [rank] joint: both samples fitted together, one ΔE0 per reference shared
    joint = list(csv.DictReader(open(rep / "joint.csv")))
    assert [r["dataset"] for r in joint] == ["MSC_sim", "MSC_iso"] and "## Joint fit across samples" in md
    assert joint[0]["CdS_ref.de0"] == joint[1]["CdS_ref.de0"] and joint[0]["Cd-Cd.n"] != joint[1]["Cd-Cd.n"]
    assert (rep / "ranking.png").stat().st_size > 10_000
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list(rep.glob("*.png")))
    rows = list(csv.reader(line for line in open(rep / "table1.csv") if not line.startswith("#")))
    assert any("Cd-S" in r for r in rows)
    # rerunning the same command resumes: nothing is recomputed
    p2 = run_cli(["demo", "--out", out], n=2, cwd=tmp_path, check=True, timeout=900)
    assert "0 to run" in p2.stderr
