"""store/layout.py: the README's layout table is layout.TABLE; writers and readers come in pairs."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from xasmpi.analysis.distributions import overlap_coefficient
from xasmpi.store import layout

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_table() -> str:
    lines = README.read_text(encoding="utf-8").splitlines()
    i = lines.index("| path | contents |")
    j = i
    while j < len(lines) and lines[j].startswith("|"):
        j += 1
    return "\n".join(lines[i:j]) + "\n"


def test_readme_layout_table_is_layout_table():
    assert _readme_table() == layout.markdown_table()
    assert f"## Results file layout (layout version {layout.LAYOUT_VERSION})" in README.read_text(encoding="utf-8")


def test_groups_written_by_layout_are_in_the_table():
    paths = {p.strip("`").strip() for p, _ in layout.TABLE}
    for group in ("/exafs/<sample>/stats/", "/exafs/<sample>/replicates/", "/exafs/<sample>/fit/",
                  "/analysis/overlap", "/xanes/comparison/lcf/<measured>/<a+b>/", "/xanes/comparison/<measured>/"):
        assert group in paths, group


def test_one_parameter_spelling():
    assert [layout.column_name(n) for n in ("n_Cd-S", "sigma2_Cd-S", "r_Cd-Cd", "de0", "de0_CdS_bulk")] == [
        "Cd-S.n", "Cd-S.sigma2", "Cd-Cd.r", "global.de0", "CdS_bulk.de0"]
    assert layout.split_column("CdS_bulk.de0") == ("CdS_bulk", "de0")
    assert layout.split_column("Cd-S.sigma2") == ("Cd-S", "sigma2")
    assert set(layout.SUMMARY_KEYS) == set(layout.PARAMETERS) == set(layout.UNITS)


def _replicates(g, rng):
    names = ["Cd-S.n", "Cd-S.sigma2", "Cd-Cd.n"]
    params = np.column_stack([rng.normal(4.0, 0.3, 300), rng.normal(0.006, 0.001, 300), rng.normal(9.0, 1.5, 300)])
    status = np.ones(300, dtype=np.int8)
    status[:7] = -1
    status[7:10] = 0
    params[status != 1] = 1e3  # junk rows: never in a statistic
    rep = g.create_group("replicates")
    rep["params"], rep["status"] = params, status
    rep.attrs["names"], rep.attrs["mode"] = names, "noise"
    return names, params[status == 1]


def test_replicates_stats_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        g = f.create_group("exafs/S")
        names, ok = _replicates(g, rng)
        reps = layout.read_replicates(g)
        assert reps.names == tuple(names) and reps.mode == "noise" and reps.values.shape == (290, 3)
        np.testing.assert_array_equal(reps.column("Cd-Cd.n"), ok[:, 2])
        st = layout.Stats.of(reps, bins=20)
        np.testing.assert_array_equal(st.mean, ok.mean(0))
        np.testing.assert_array_equal(st.sd, ok.std(0, ddof=1))
        assert set(st.hist) == {"Cd-S", "Cd-Cd"} and st.hist["Cd-S"][1].sum() == 290
        assert st.hist["Cd-S"][0].size == 21
        layout.write_stats(g, st)
        back = layout.read_stats(g)
    assert back.names == st.names and back.n == 290 and back.mode == "noise"
    np.testing.assert_array_equal(back.mean, st.mean)
    np.testing.assert_array_equal(back.sd, st.sd)
    np.testing.assert_array_equal(back.percentiles[:, 2], np.median(ok, axis=0))
    for p in st.hist:
        np.testing.assert_array_equal(back.hist[p][0], st.hist[p][0])
    assert back.by_column()[("Cd-S", "n")] == (float(st.mean[0]), float(st.sd[0]))


def test_mean_sd_too_few_rows():
    m, s = layout.mean_sd(np.array([[1.0, 2.0]]))
    assert m.tolist() == [1.0, 2.0] and np.isnan(s).all()
    m, s = layout.mean_sd(np.zeros((0, 2)))
    assert np.isnan(m).all() and np.isnan(s).all()


def test_overlap_round_trip_is_the_kde_overlap(tmp_path):
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(4.0, 0.3, 400), rng.normal(4.3, 0.3, 400), rng.normal(9.0, 1.0, 400)
    ov = layout.Overlap.of({"Cd-S": {"B": b, "A": a}, "Cd-Cd": {"A": c, "B": np.array([9.0])}})
    assert ov.rows == (("Cd-S", "A", "B", overlap_coefficient(a, b)),)  # a pair with < 2 values is left out
    # two normals 1 sd apart: OVL = 2 Phi(-1/2) = 0.617 (KDE smoothing: slightly above)
    assert 0.58 < ov.rows[0][3] < 0.68
    with h5py.File(tmp_path / "o.h5", "w") as f:
        layout.write_overlap(f, ov)
        assert layout.text(f["analysis/overlap"].attrs["method"]) == layout.OVERLAP_METHOD
        assert layout.read_overlap(f) == ov
        layout.write_overlap(f, layout.Overlap(()))  # no pairs: no group
        assert "analysis/overlap" not in f and layout.read_overlap(f) is None
    assert ov.by_path() == {"Cd-S": {"A vs B": ov.rows[0][3]}}


def test_lcf_round_trip(tmp_path):
    from xasmpi.xanes.compare import lcf

    e = np.linspace(-10.0, 40.0, 201)
    s1 = 1.0 + np.arctan(e / 2.0) / np.pi
    s2 = 1.0 + np.arctan((e - 3.0) / 4.0) / np.pi + 0.2 * np.exp(-((e - 12.0) / 5.0) ** 2)
    y = 0.7 * s1 + 0.3 * s2
    res = lcf(e, y, {"a": (e, s1), "b": (e, s2)}, sum_to_one=True)
    assert res.weights == pytest.approx([0.7, 0.3], abs=1e-6)
    with h5py.File(tmp_path / "l.h5", "w") as f:
        layout.write_lcf(f.create_group("xanes/comparison/lcf/M/a+b"), e, y, res)
        (fit,) = layout.read_lcf(f)
    assert fit.name == "M/a+b" and fit.measured == "M"
    assert fit.result.names == ("a", "b") and fit.result.r_factor == res.r_factor
    np.testing.assert_array_equal(fit.result.weights, res.weights)
    np.testing.assert_array_equal(fit.result.errors, res.errors)
    np.testing.assert_array_equal(fit.result.model, res.model)
    np.testing.assert_array_equal(fit.data, y)


def test_best_fit_and_feff_route_round_trip(tmp_path):
    k = np.arange(0.0, 16.0, 0.05)
    chi = np.sin(2 * 2.5 * k) * np.exp(-0.01 * k ** 2)
    attrs = {"space": "k", "kmin": 3.0, "kmax": 14.0, "kweight": 2, "ssr_k2": 0.25, "n_free": 3,
             "fixed": '{"Cd-S": {"r": 2.52}}'}
    fit = layout.BestFit(("Cd-S.n", "Cd-S.sigma2", "CdS_bulk.de0"), np.array([4.1, 0.006, 1.5]),
                         np.array([0.2, 0.0004, 0.3]), np.array([[0, 12], [0.001, 0.03], [-10, 10]], float),
                         ("Cd-S",), {"Cd-S": "CdS_bulk"}, attrs, corr=np.eye(3), k=k, data=k ** 2 * chi,
                         model=0.98 * k ** 2 * chi, model_paths=(0.98 * k ** 2 * chi)[None, :])
    route = layout.FeffRoute(fit.names, fit.params * 0.97, fit.stderr, k, 0.95 * k ** 2 * chi, 2,
                             {"ssr_k2": 0.31, "n_free": 3})
    with h5py.File(tmp_path / "f.h5", "w") as f:
        g = f.create_group("exafs/S")
        layout.write_fit(g, fit)
        layout.write_feff_route(g, route)
        assert g["fit/data"].attrs["units"] == "Å^-2" and g["fit/k"].attrs["units"] == "Å^-1"
        back, rb = layout.read_fit(g), layout.read_feff_route(g)
    assert back.names == fit.names and back.paths == ("Cd-S",) and back.de0_groups == {"Cd-S": "CdS_bulk"}
    assert {k_: back.attrs[k_] for k_ in attrs} == attrs
    for key in ("params", "stderr", "bounds", "corr", "k", "data", "model", "model_paths"):
        np.testing.assert_array_equal(getattr(back, key), getattr(fit, key))
    assert back.data_q is None and back.by_column()[("CdS_bulk", "de0")] == 1.5
    assert rb.names == route.names and rb.kweight == 2 and rb.attrs == {"ssr_k2": 0.31, "n_free": 3}
    np.testing.assert_array_equal(rb.model, route.model)


def test_structure_round_trip(tmp_path):
    from ase.build import bulk

    atoms = bulk("CdS", "zincblende", a=5.818).repeat((2, 1, 1))
    with h5py.File(tmp_path / "s.h5", "w") as f:
        g = f.create_group("xanes/zb")
        layout.write_structure(g, atoms)
        back = layout.read_structure(g)
        assert layout.read_structure(f.create_group("xanes/none")) is None
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols() and back.pbc.all()
    np.testing.assert_array_equal(back.get_positions(), atoms.get_positions())
    np.testing.assert_array_equal(np.array(back.get_cell()), np.array(atoms.get_cell()))


def test_measured_xanes_round_trip(tmp_path):
    from xasmpi.xanes.compare import normalize

    e = np.arange(26600.0, 26900.0, 0.5)
    mu = 0.2 + 1.3 * (0.5 + np.arctan((e - 26711.0) / 2.0) / np.pi) + 0.001 * (e - 26600.0)
    n = normalize(e, mu, name="CdS")
    with h5py.File(tmp_path / "x.h5", "w") as f:
        layout.write_measured_xanes(f.require_group("xanes/measured"), "CdS", n)
        back = layout.read_measured_xanes(f)["CdS"]
    assert back.e0 == n.e0 and back.edge_step == n.edge_step and abs(back.e0 - 26711.0) <= 1.0
    for key in ("energy", "norm", "dnorm"):
        np.testing.assert_array_equal(getattr(back, key), getattr(n, key))


def test_angle_model_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    core, surf = rng.normal(109.0, 2.0, 50), np.append(rng.normal(112.0, 6.0, 30), np.nan)
    am = layout.AngleModel("zb", "zincblende", "Cd13S4O12", core, surf, {"core_modes": np.array([109.2]),
                                                                        "bimodal": False})
    with h5py.File(tmp_path / "a.h5", "w") as f:
        layout.write_angle_model(f.require_group("analysis/angles"), am)
        assert f["analysis/angles/zb/core"].attrs["units"] == "deg"
        (back,) = layout.read_angle_models(f)
    assert (back.name, back.source, back.formula) == ("zb", "zincblende", "Cd13S4O12")
    np.testing.assert_array_equal(back.core, core)
    np.testing.assert_array_equal(back.surface, surf[:-1])  # finite angles only
    assert back.modes("core").tolist() == [109.2] and back.modes("surface").size == 0 and not back.attrs["bimodal"]
