"""``xasmpi report``: figures, tables and report.md from a synthetic results file (README layout)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from xasmpi.errors import ResultsError
from xasmpi.report import write_report
from xasmpi.analysis.distributions import overlap_from_histograms
from xasmpi.report.figures import FIGURES
from xasmpi.store import layout

PATHS = {  # N, R (Å), sigma2 (Å²), amplitude centre, phase offset
    "Cd-O": (3.2, 2.30, 0.008, 5.0, -1.2),
    "Cd-S": (2.6, 2.49, 0.006, 6.5, -1.6),
    "Cd-Cd": (5.4, 3.98, 0.012, 8.0, -2.3),
}
K = np.arange(0.0, 16.5 + 1e-9, 0.05)
ALL_FIGS = [fid for fid, _, _ in FIGURES]


def _chi(k, scale=None):
    k = np.maximum(k, 1e-6)
    out = np.zeros_like(k)
    for p, (n, r, s2, kc, d0) in PATHS.items():
        n = n * (scale or {}).get(p, 1.0)
        amp = 0.9 * np.exp(-((k - kc) / 6.0) ** 2)
        out += n * amp / (k * r ** 2) * np.exp(-2 * s2 * k ** 2) * np.sin(2 * k * r + d0 - 0.1 * k)
    out[k < 0.5] = 0.0
    return out


def _ft(k, kwchi):
    win = ((k >= 2.0) & (k <= 16.0)).astype(float)
    r = np.arange(0.0, 10.0, 0.0307)
    ph = np.exp(2j * np.outer(r, k))
    chir = (ph * (kwchi * win)).sum(axis=1) * 0.05 / np.sqrt(np.pi)
    return r, chir


def _spectrum(g, k, chi, role, rng):
    g.attrs.update(role=role, file=f"{g.name}.dat", element="Cd", edge="K", e0=26711.0, edge_step=1.0)
    g["k"] = k
    g["chi"] = chi
    g["kwchi"] = k ** 2 * chi
    g["kwchi"].attrs["kweight"] = 2
    r, chir = _ft(k, k ** 2 * chi)
    g["r"] = r
    g["chir_mag"] = np.abs(chir)
    g["chir_re"] = chir.real
    g["chir_im"] = chir.imag
    w = g.create_group("wavelet")
    kk = k[::4]
    rr = np.linspace(0, 6, 60)
    mod = np.zeros((rr.size, kk.size))
    for p, (n, rad, s2, kc, _) in PATHS.items():
        mod += n * np.exp(-((rr[:, None] - rad + 0.4) / 0.25) ** 2 - ((kk[None, :] - kc) / 3.5) ** 2)
    w["k"], w["r"], w["modulus"] = kk, rr, mod * (1 + 0.02 * rng.standard_normal(mod.shape))
    w.attrs.update(kind="cauchy", kweight=2)


def _sample(g, name, scale, rng, *, stats: bool, truth: bool, feff: bool):
    chi = _chi(K, scale) + 0.002 * rng.standard_normal(K.size)
    _spectrum(g, K, chi, "sample", rng)
    sel = (K >= 2) & (K <= 16)
    fit = g.create_group("fit")
    fit["k"] = K[sel]
    fit["data"] = (K ** 2 * chi)[sel]
    fit["model"] = (K ** 2 * _chi(K, scale))[sel]
    names = [f"{p}.{q}" for p in PATHS for q in ("n", "sigma2")]
    fit["names"] = np.array(names, dtype="S")
    fit["params"] = np.array([v for p in PATHS for v in (PATHS[p][0] * scale.get(p, 1), PATHS[p][2])])
    fit.attrs.update(space="k", ssr_k2=float(rng.uniform(0.2, 1.2)), ssr=1.0, rfactor=0.01, redchi=1.0, n_idp=20)
    if feff:
        fe = g.create_group("feff")
        fe["model"] = (K ** 2 * _chi(K, {p: 0.95 * scale.get(p, 1) for p in PATHS}))[sel]
        fe["names"] = np.array(names, dtype="S")
        fe["params"] = fit["params"][()] * 0.97
        fe.attrs.update(ssr_k2=float(rng.uniform(0.3, 1.3)), rfactor=0.02)
    n_rep = 400
    params = np.empty((n_rep, len(names)))
    for j, nm in enumerate(names):
        p, q = nm.split(".")
        n, _, s2, _, _ = PATHS[p]
        mean = n * scale.get(p, 1) if q == "n" else s2
        sd = (0.3 if p != "Cd-Cd" else 3.0) if q == "n" else 0.001
        params[:, j] = mean + sd * rng.standard_normal(n_rep)
    status = np.ones(n_rep, dtype=np.int8)
    status[-20:] = 0
    status[-25:-20] = -1
    params[status != 1] = 1e3  # junk: must never reach a table or histogram
    rep = g.create_group("replicates")
    rep["params"] = params
    rep["params"].attrs["names"] = np.array(names, dtype="S")
    rep["ssr"] = rng.uniform(0.5, 1.0, n_rep)
    rep["status"] = status
    rep["elapsed"] = np.full(n_rep, 0.1)
    rep.attrs["names"] = np.array(names, dtype="S")
    rep.attrs["mode"] = "noise"
    if stats:
        ok = params[status == 1]
        st = g.create_group("stats")
        st["names"] = np.array(names, dtype="S")
        st["mean"] = ok.mean(axis=0)
        st["sd"] = ok.std(axis=0)  # ddof 0 on purpose: the table must copy the file, not recompute
        st["percentiles"] = np.percentile(ok, [2.5, 16, 50, 84, 97.5], axis=0)
        st["percentiles"].attrs["levels"] = [2.5, 16, 50, 84, 97.5]
        for j, nm in enumerate(names):
            p, q = nm.split(".")
            if q == "n":
                counts, edges = np.histogram(ok[:, j], bins=30)
                h = st.create_group(f"hist/{p}")
                h["edges"], h["counts"] = edges, counts
    if truth:
        g.create_group("truth").attrs["values"] = json.dumps(
            {p: {"n": PATHS[p][0] * scale.get(p, 1), "r": PATHS[p][1], "sigma2": PATHS[p][2]} for p in PATHS})


def _xanes(f, rng):
    e = np.arange(26650.0, 26900.0, 0.5)
    for i, name in enumerate(("MSC-311", "MSC-322")):
        e0 = 26711.0 + 0.8 * i
        norm = 0.5 + np.arctan((e - e0) / 2.0) / np.pi + 0.3 * np.exp(-((e - e0 - 12) / 6) ** 2) * (e > e0)
        g = f.create_group(f"xanes/measured/{name}")
        g["energy"], g["norm"] = e, norm
        g["deriv"] = np.gradient(norm, e)
        g.attrs["edge"] = float(e[np.argmax(g["deriv"][()])])
    er = np.arange(-20.0, 60.0, 0.5)
    for i, (c, formula) in enumerate((("zb_Cd39S24O14", "Cd39S24O14"), ("bsn_Cd38S28O10", "Cd38S28O10"))):
        g = f.create_group(f"xanes/{c}")
        g["energy"] = er
        g["mu"] = 1.0 + np.arctan(er / 2.5) / np.pi * 2 + (0.2 + 0.1 * i) * np.exp(-((er - 10 - 4 * i) / 5) ** 2)
        g.attrs.update(formula=formula, n_atoms=77, settings="{}")
    # /xanes/comparison as the xanes stage writes it (xasmpi/stages/xanes_compare.py)
    str_t = h5py.string_dtype()
    cmp_ = f.create_group("xanes/comparison")
    cmp_.attrs["ranking"] = json.dumps({"MSC-322": [
        {"candidate": "zb_Cd39S24O14", "r_factor": 0.012, "shift": 1.3},
        {"candidate": "bsn_Cd38S28O10", "r_factor": 0.034, "shift": -0.4}]})
    t = cmp_.create_group("MSC-322")
    t.create_dataset("candidate", data=np.array(["zb_Cd39S24O14", "bsn_Cd38S28O10"], dtype=object), dtype=str_t)
    t["shift"], t["gauss_fwhm"], t["scale"], t["r_factor"] = [1.3, -0.4], [2.1, 1.5], [0.98, 1.01], [0.012, 0.034]
    lcf = cmp_.create_group("lcf/MSC-322/zb_Cd39S24O14+bsn_Cd38S28O10")
    lcf["energy"] = er
    meas = 0.7 * f["xanes/zb_Cd39S24O14/mu"][()] + 0.3 * f["xanes/bsn_Cd38S28O10/mu"][()]
    lcf["data"] = meas + 0.005 * rng.standard_normal(er.size)
    lcf["model"] = meas
    lcf["weights"] = [0.7, 0.3]
    lcf["errors"] = [0.05, 0.05]
    lcf.create_dataset("names", data=np.array(["zb_Cd39S24O14", "bsn_Cd38S28O10"], dtype=object), dtype=str_t)
    lcf.attrs["r_factor"] = 0.0021


def _analysis(f, rng):
    g = f.create_group("analysis/angles/InP-like")
    g["core"] = rng.normal(109.0, 2.5, 300)
    g["surface"] = np.concatenate([rng.normal(100.0, 6.0, 150), rng.normal(118.0, 5.0, 100)])
    g.attrs["formula"] = "Cd39S24O14"
    # as the analysis stage writes them (xasmpi/stages/analysis.py)
    str_t = h5py.string_dtype()
    s = f.create_group("analysis/stoichiometry")
    s.attrs.update(mass=5160.0, mass_tol=20.0, elements=["Cd", "S"], cn_path="Cd-S")
    sg = s.create_group("MSC-322")
    sg.attrs.update(cn=2.55, cn_sd=0.27, result=json.dumps({"candidates": list(range(20))}))
    sg.create_dataset("formula", data=np.array(["Cd39S24", "Cd38S28", "Cd40S21"], dtype=object), dtype=str_t)
    sg["mass"], sg["cn"], sg["z"] = [5153.6, 5169.4, 5169.8], [2.4615, 2.9474, 2.1], [0.33, 1.46, 1.67]
    a = f.create_group("analysis/angle")
    a.attrs.update(r1_path="Cd-S", r2_path="Cd-Cd")
    ag = a.create_group("MSC-322")
    ag.attrs.update(angle=106.1, sd=0.7, method="analytic", result=json.dumps({"angle_deg": 106.1}))
    ag["angles"] = rng.normal(106.1, 0.7, 200)


def make_results(path: Path, *, simulated: bool = True, parts=("exafs", "fit", "xanes", "analysis"),
                 layout_version: int = 1, seed: int = 7) -> Path:
    """A small results file following the README layout (layout version 1)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs.update(xasmpi_version="0.1.0", layout_version=layout_version, created="2024-01-01T00:00:00",
                       job_toml="", job_file="job.toml", job_overrides="[]", job_resolved="{}",
                       job_fingerprint="x", seed=seed, n_ranks=2, simulated=simulated, complete=True,
                       stages_done=json.dumps(["reduce", "fit", "feff", "xanes", "analysis"]))
        if "exafs" in parts:
            _spectrum(f.create_group("exafs/CdS-bulk"), K, _chi(K, {"Cd-O": 0.0, "Cd-S": 1.54, "Cd-Cd": 2.2}),
                      "reference", rng)
            if "fit" in parts:
                _sample(f.create_group("exafs/MSC-311"), "MSC-311", {"Cd-O": 1.05, "Cd-S": 1.0}, rng,
                        stats=True, truth=False, feff=True)
                _sample(f.create_group("exafs/MSC-322"), "MSC-322", {"Cd-O": 1.0, "Cd-S": 0.98}, rng,
                        stats=False, truth=True, feff=False)
        if "xanes" in parts:
            _xanes(f, rng)
        if "analysis" in parts:
            _analysis(f, rng)
    return path


def _read_csv(p: Path) -> tuple[list[str], list[dict]]:
    lines = p.read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    return comments, rows


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    res_file = make_results(d / "results.h5")
    return res_file, write_report(res_file, d / "report")


def test_all_figures_written_png_and_pdf(full_report):
    _, res = full_report
    assert [fid for fid, _ in res.figures] == ALL_FIGS
    assert not [s for s in res.skipped if s[0] in ALL_FIGS]
    for fid, files in res.figures:
        assert sorted(p.suffix for p in files) == [".pdf", ".png"], fid
        for p in files:
            assert p.is_file() and p.stat().st_size > 5000, p
        png = [p for p in files if p.suffix == ".png"][0]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.report.is_file() and res.report in res.written
    md = res.report.read_text()
    for fid, files in res.figures:
        for p in files:
            assert p.name in md


def test_table1_numbers_equal_file(full_report):
    res_file, res = full_report
    comments, rows = _read_csv(res.out_dir / "table1.csv")
    assert comments and "SIMULATED DATA" in comments[0]
    by = {(r["sample"], r["path"]): r for r in rows}
    assert set(by) == {(s, p) for s in ("MSC-311", "MSC-322") for p in PATHS}
    assert "r_mean" not in rows[0]  # R fixed in this file: no empty R columns
    with h5py.File(res_file, "r") as f:
        # MSC-311: copied from /stats (its sd is ddof 0, so recomputing would differ)
        st = f["exafs/MSC-311/stats"]
        names = [n.decode() for n in st["names"][()]]
        for j, nm in enumerate(names):
            p, q = nm.split(".")
            col = {"n": "n_s02", "sigma2": "sigma2"}[q]
            assert float(by[("MSC-311", p)][f"{col}_mean"]) == st["mean"][j]
            assert float(by[("MSC-311", p)][f"{col}_sd"]) == st["sd"][j]
            assert by[("MSC-311", p)]["source"] == "stats"
        # MSC-322: no stats, computed from status == 1 replicates (ddof 1)
        rep = f["exafs/MSC-322/replicates"]
        ok = rep["status"][()] == 1
        params = rep["params"][()][ok]
        names = [n.decode() for n in rep["params"].attrs["names"]]
        for j, nm in enumerate(names):
            p, q = nm.split(".")
            col = {"n": "n_s02", "sigma2": "sigma2"}[q]
            assert float(by[("MSC-322", p)][f"{col}_mean"]) == pytest.approx(params[:, j].mean(), rel=1e-12)
            assert float(by[("MSC-322", p)][f"{col}_sd"]) == pytest.approx(params[:, j].std(ddof=1), rel=1e-12)
            assert int(by[("MSC-322", p)]["n_replicates"]) == int(ok.sum())
        for s in ("MSC-311", "MSC-322"):
            ssr = f[f"exafs/{s}/fit"].attrs["ssr_k2"]
            for p in PATHS:
                assert float(by[(s, p)]["ssr_model_free"]) == ssr
        assert float(by[("MSC-311", "Cd-S")]["ssr_feff_route"]) == f["exafs/MSC-311/feff"].attrs["ssr_k2"]
        assert by[("MSC-322", "Cd-S")]["ssr_feff_route"] == ""  # no FEFF route for that sample
        md = res.report.read_text()
        assert f"{f['exafs/MSC-311/stats/mean'][2]:.4g}" in md  # Cd-S N mean in the Markdown table
        assert f"{f['exafs/MSC-311/fit'].attrs['ssr_k2']:.4g}" in md


def test_recovered_vs_true(full_report):
    res_file, res = full_report
    _, rows = _read_csv(res.out_dir / "recovered_vs_true.csv")
    assert {r["sample"] for r in rows} == {"MSC-322"}
    cds = {r["parameter"]: r for r in rows if r["path"] == "Cd-S"}
    assert float(cds["N·S0²"]["true"]) == pytest.approx(2.6 * 0.98)
    with h5py.File(res_file, "r") as f:
        rep = f["exafs/MSC-322/replicates"]
        ok = rep["status"][()] == 1
        n = rep["params"][()][ok, 2]
    assert float(cds["N·S0²"]["recovered_mean"]) == pytest.approx(n.mean(), rel=1e-12)
    assert float(cds["N·S0²"]["deviation"]) == pytest.approx(n.mean() - 2.6 * 0.98, rel=1e-9)
    assert cds["R (Å)"]["recovered_mean"] == ""  # R fixed: nothing recovered
    assert "Recovered vs true" in res.report.read_text()


def test_xanes_and_analysis_tables(full_report):
    _, res = full_report
    _, rows = _read_csv(res.out_dir / "xanes_ranking.csv")
    assert [(r["measured"], r["rank"], r["candidate"]) for r in rows] == [
        ("MSC-322", "1", "zb_Cd39S24O14"), ("MSC-322", "2", "bsn_Cd38S28O10")]
    assert float(rows[0]["r_factor"]) == 0.012
    _, rows = _read_csv(res.out_dir / "xanes_lcf.csv")
    assert [(r["component"], float(r["weight"]), float(r["weight_sd"])) for r in rows] == [
        ("zb_Cd39S24O14", 0.7, 0.05), ("bsn_Cd38S28O10", 0.3, 0.05)]
    assert float(rows[0]["rfactor"]) == 0.0021
    _, rows = _read_csv(res.out_dir / "xanes_comparison.csv")
    assert [(r["measured"], r["candidate"], float(r["shift"])) for r in rows] == [
        ("MSC-322", "zb_Cd39S24O14", 1.3), ("MSC-322", "bsn_Cd38S28O10", -0.4)]
    md = res.report.read_text()
    assert "Key analysis numbers" in md and "Cd39S24" in md and "106.1" in md
    _, rows = _read_csv(res.out_dir / "analysis_angle.csv")
    q = {r["quantity"]: r["value"] for r in rows}
    assert q["MSC-322: angle"] == "106.1" and "result" not in " ".join(q)
    assert q["MSC-322: angles: n, mean, sd, median"].startswith("200, ")
    _, rows = _read_csv(res.out_dir / "analysis_stoichiometry_MSC-322.csv")
    assert [(r["formula"], float(r["cn"])) for r in rows] == [("Cd39S24", 2.4615), ("Cd38S28", 2.9474), ("Cd40S21", 2.1)]


def test_simulated_marked_on_every_figure_and_table(tmp_path, monkeypatch):
    import matplotlib.figure

    titles = []
    orig = matplotlib.figure.Figure.savefig

    def spy(self, *a, **k):
        titles.append(self._suptitle.get_text() if self._suptitle else "")
        return orig(self, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    res = write_report(make_results(tmp_path / "r.h5"), tmp_path / "out", formats=["png"])
    assert len(titles) == len(ALL_FIGS)
    assert all("SIMULATED DATA" in t for t in titles)
    md = res.report.read_text()
    assert md.startswith("# xasmpi report — SIMULATED DATA")
    assert md.count("— SIMULATED DATA**") >= 5  # every table title
    titles.clear()
    res = write_report(make_results(tmp_path / "m.h5", simulated=False), tmp_path / "out2", formats=["png"])
    assert titles and not any("SIMULATED" in t for t in titles)
    assert "SIMULATED" not in res.report.read_text()
    assert not _read_csv(res.out_dir / "table1.csv")[0]


def test_absent_data_skipped_and_listed(tmp_path):
    res = write_report(make_results(tmp_path / "r.h5", parts=("exafs",)), tmp_path / "out")
    drawn = [fid for fid, _ in res.figures]
    assert drawn == ["fig1a", "fig1b", "fig1c"]
    skipped = dict(res.skipped)
    for fid in ("fig2a", "fig2b", "fig3a", "fig3b", "fig3c", "fig4", "table1"):
        assert fid in skipped, fid
    assert "fit" in skipped["fig2a"] and "angles" in skipped["fig4"]
    assert not (tmp_path / "out" / "fig2a_fits.png").exists()
    assert not (tmp_path / "out" / "table1.csv").exists()
    md = res.report.read_text()
    skipped_section = md.split("## Skipped", 1)[1]
    for desc in ("Fig. 2a", "Fig. 2b", "Fig. 3a", "Fig. 3b", "Fig. 3c", "Fig. 4", "table1"):
        assert desc in skipped_section, desc


def test_empty_file_still_reports(tmp_path):
    res = write_report(make_results(tmp_path / "r.h5", parts=()), tmp_path / "out", formats=["png"])
    assert res.figures == ()
    assert {s for s, _ in res.skipped} >= set(ALL_FIGS)
    assert "No figure could be drawn" in res.report.read_text()


def test_histograms_from_replicates_and_overlap_from_file(tmp_path):
    """Without stats/hist the histograms come from replicates; a stored OVL is used as is."""
    from xasmpi.report.figures import n_distributions, overlaps

    p = make_results(tmp_path / "r.h5")
    with h5py.File(p, "r+") as f:
        del f["exafs/MSC-311/stats"]
        layout.write_overlap(f, layout.Overlap((("Cd-S", "MSC-311", "MSC-322", 0.4242),)))
    with h5py.File(p, "r") as f:
        d = n_distributions(f)
        ovl = overlaps(f, d)
    assert set(d["Cd-S"]) == {"MSC-311", "MSC-322"}
    assert all(v[3] == "replicates" for v in d["Cd-S"].values())
    assert all(v[2].max() < 100 for v in d["Cd-S"].values())  # junk rows (status != 1) excluded
    assert ovl["Cd-S"] == {"MSC-311 vs MSC-322": (0.4242, "file")}
    assert ovl["Cd-O"]["MSC-311 vs MSC-322"][1] == "computed"
    assert 0.0 < ovl["Cd-O"]["MSC-311 vs MSC-322"][0] < 1.0
    res = write_report(p, tmp_path / "out", formats=["png"])
    assert "fig2b" in dict(res.figures)


def test_overlap_columns_as_written_by_fit_stage(tmp_path):
    from xasmpi.report.figures import overlaps

    p = make_results(tmp_path / "r.h5")
    str_t = h5py.string_dtype()
    with h5py.File(p, "r+") as f:
        og = f.create_group("analysis/overlap")
        og.attrs["method"] = "KDE"
        for k, v in (("path", ["Cd-O", "Cd-S", "Cd-Cd"]), ("sample1", ["MSC-311"] * 3), ("sample2", ["MSC-322"] * 3)):
            og.create_dataset(k, data=np.array(v, dtype=object), dtype=str_t)
        og["ovl"] = [0.61, 0.87, 0.93]
    with h5py.File(p, "r") as f:
        ovl = overlaps(f)
    assert ovl == {"Cd-O": {"MSC-311 vs MSC-322": (0.61, "file")}, "Cd-S": {"MSC-311 vs MSC-322": (0.87, "file")},
                   "Cd-Cd": {"MSC-311 vs MSC-322": (0.93, "file")}}


def test_overlap_from_histograms():
    e = np.array([0.0, 1.0, 2.0])
    assert overlap_from_histograms(e, np.array([0.5, 0.5]), e, np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert overlap_from_histograms(e, np.array([1.0, 0.0]), e, np.array([0.0, 1.0])) == pytest.approx(0.0)
    # different bins: [0, 2) uniform vs [1, 3) uniform overlap on [1, 2) -> 0.5
    assert overlap_from_histograms(e, np.array([0.5, 0.5]), e + 1, np.array([0.5, 0.5])) == pytest.approx(0.5)
    e2 = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    assert overlap_from_histograms(e, np.array([0.5, 0.5]), e2, np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(0.5)


def test_bad_files_give_one_line_results_error(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        write_report(tmp_path / "missing.h5", tmp_path / "out")
    with pytest.raises(ResultsError, match="layout 2"):
        write_report(make_results(tmp_path / "v2.h5", layout_version=2, parts=()), tmp_path / "out")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ResultsError, match="not a readable HDF5"):
        write_report(tmp_path / "junk.h5", tmp_path / "out")
    with pytest.raises(ResultsError, match="unsupported figure format"):
        write_report(make_results(tmp_path / "ok.h5", parts=()), tmp_path / "out", formats=["bmpx"])


def test_cli(tmp_path, capsys):
    from xasmpi.cli import main

    p = make_results(tmp_path / "r.h5", parts=("exafs",))
    with pytest.raises(SystemExit) as exc:
        main(["report", str(p), "--out", str(tmp_path / "o"), "--formats", "png"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "SIMULATED DATA" in out and "skipped fig4" in out
    assert (tmp_path / "o" / "fig1a_k2chi.png").is_file()
    assert not (tmp_path / "o" / "fig1a_k2chi.pdf").exists()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("xasmpi: error:") and err.count("\n") == 1 and "Traceback" not in err
