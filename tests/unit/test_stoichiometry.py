"""Stoichiometry enumeration: the paper's candidates for 5160 ± 20 Da and their CN ranking."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xraydb

from xasmpi.analysis.stoichiometry import enumerate_stoichiometries
from xasmpi.cli import main
from xasmpi.errors import InputError
from tests.unit.conftest import write_results

M_CD = xraydb.atomic_mass("Cd")
M_S = xraydb.atomic_mass("S")
M_O = xraydb.atomic_mass("O")

# paper, stoichiometry paragraph: formula -> (mass / Da, CN = 4y/x), both as printed
PAPER = {"Cd38S28": (5169, 2.95), "Cd39S24": (5154, 2.46), "Cd40S21": (5170, 2.10)}



def test_paper_candidates_masses_and_cn():
    res = enumerate_stoichiometries(5160, tol=20, elements=("Cd", "S"), cn=2.6, cn_sd=0.27)
    for formula, (mass, cn) in PAPER.items():
        cand = res.find(formula)
        assert cand is not None, f"{formula} missing"
        assert abs(cand.mass - mass) < 1.0  # paper rounds to 1 Da
        assert round(cand.cn, 2) == pytest.approx(cn)
        assert abs(cand.mass_error) <= 20


def test_cd39s24_ranks_first():
    res = enumerate_stoichiometries(5160, tol=20, cn=2.6, cn_sd=0.27)
    ranks = {f: res.rank(f) for f in PAPER}
    assert ranks["Cd39S24"] < ranks["Cd38S28"] < ranks["Cd40S21"]
    # it is also the best of all candidates, |2.4615 - 2.6| / 0.27 = 0.51
    assert res.candidates[0].formula == "Cd39S24"
    assert res.candidates[0].z == pytest.approx(abs(4 * 24 / 39 - 2.6) / 0.27)
    zs = [c.z for c in res.candidates]
    assert zs == sorted(zs)


def test_enumeration_is_complete_against_brute_force():
    res = enumerate_stoichiometries(5160, tol=20, physical=False)
    brute = {
        (x, y)
        for x in range(1, 50)
        for y in range(1, 170)
        if abs(x * M_CD + y * M_S - 5160) <= 20
    }
    assert {(c.count("Cd"), c.count("S")) for c in res.candidates} == brute
    assert res.find("CdS157") is not None  # count 1 is not written
    # default drops the formulas with CN = 4y/x > 4 (more S neighbours than four-coordination allows)
    phys = enumerate_stoichiometries(5160, tol=20)
    kept = {(c.count("Cd"), c.count("S")) for c in phys.candidates}
    assert kept == {(x, y) for x, y in brute if y <= x}
    assert phys.n_rejected == len(brute) - len(kept)
    assert all(c.cn <= 4 for c in phys.candidates)


def test_extra_oxygen_and_mass_terms():
    res = enumerate_stoichiometries(5160 + 10 * M_O + 50.0, tol=20, extra={"O": 10}, extra_mass=50.0,
                                    cn=2.6, cn_sd=0.27)
    cand = res.find("Cd39S24O10")
    assert cand is not None
    assert cand.mass == pytest.approx(39 * M_CD + 24 * M_S + 10 * M_O + 50.0)
    assert cand.count("O") == 10
    assert cand.cn == pytest.approx(4 * 24 / 39)  # O does not change CN(Cd-S)
    assert res.candidates[0].formula == "Cd39S24O10"


def test_free_oxygen_enumeration_window():
    res = enumerate_stoichiometries(5160, tol=5, elements=("Cd", "S", "O"), cn=2.6, cn_sd=0.27)
    assert res.candidates
    for c in res.candidates:
        m = c.count("Cd") * M_CD + c.count("S") * M_S + c.count("O") * M_O
        assert c.mass == pytest.approx(m)
        assert abs(m - 5160) <= 5
    # Cd37S20O94 (the paper's InP-like model, 7100.8 Da) is found in its own window
    r2 = enumerate_stoichiometries(37 * M_CD + 20 * M_S + 94 * M_O, tol=0.5, elements=("Cd", "S", "O"))
    assert r2.find("Cd37S20O94") is not None


def test_general_pair_and_coordination():
    # Zn-Se, CN counted for Zn absorber with 3-coordinated Se: CN = 3*y/x
    res = enumerate_stoichiometries(2000, tol=30, elements=("Zn", "Se"), coordination=3)
    assert res.absorber == "Zn" and res.partner == "Se"
    for c in res.candidates:
        assert c.cn == pytest.approx(3 * c.count("Se") / c.count("Zn"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tol": -1},
        {"tol": 20, "elements": ("Cd", "Xx")},
        {"tol": 20, "cn": 2.6},
        {"tol": 20, "cn": 2.6, "cn_sd": 0},
        {"tol": 20, "extra": {"O": -2}},
        {"tol": 20, "elements": ("Cd", "Cd")},
        {"tol": 20, "partner": "O"},
    ],
)
def test_bad_input_raises(kwargs):
    with pytest.raises(InputError):
        enumerate_stoichiometries(5160, **kwargs)


# ----------------------------------------------------------------------------- CLI


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_table(capsys):
    code, out, _ = run_cli(["stoich", "--mass", "5160", "--tol", "20", "--elements", "Cd,S",
                            "--cn", "2.6", "--cn-sd", "0.27"], capsys)
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    rows = [r for r in rows if len(r) == 6]
    assert rows[0][1] == "Cd39S24"
    assert [r[1] for r in rows[:3]] == ["Cd39S24", "Cd38S28", "Cd40S21"]
    assert "fully capped" in out


def test_cli_json_with_extra(capsys):
    code, out, _ = run_cli(["stoich", "--mass", "5160", "--tol", "20", "--cn", "2.6", "--cn-sd", "0.27",
                            "--extra", "O:0", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["candidates"][0]["formula"] == "Cd39S24"
    assert d["candidates"][0]["rank"] == 1
    assert d["atomic_masses_da"]["Cd"] == pytest.approx(M_CD)


def test_cli_from_results(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n = rng.normal(2.57, 0.27, 40)
    params = np.column_stack([n, rng.normal(0.008, 0.001, 40)])
    status = np.ones(40, dtype=np.int8)
    params[5] = [99.0, 99.0]  # a failed replicate with garbage values must be ignored
    status[5] = -1
    status[6] = 0
    path = tmp_path / "res.h5"
    write_results(path, {"MSC-322": (["Cd-S.n", "Cd-S.sigma2"], params, status)})
    code, out, _ = run_cli(["stoich", "--mass", "5160", "--tol", "20", "--from", str(path),
                            "--sample", "MSC-322", "--path", "Cd-S", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    ok = status == 1
    assert d["cn_fit"] == pytest.approx(params[ok, 0].mean())
    assert d["cn_sd"] == pytest.approx(params[ok, 0].std(ddof=1))
    assert d["candidates"][0]["formula"] == "Cd39S24"


def test_cli_from_results_errors(tmp_path, capsys):
    path = tmp_path / "res.h5"
    write_results(path, {"A": (["Cd-O.n"], np.ones((3, 1)), np.ones(3))})
    base = ["stoich", "--mass", "5160", "--tol", "20", "--from"]
    code, _, err = run_cli(base + [str(tmp_path / "nope.h5"), "--sample", "A"], capsys)
    assert code == 2 and "not found" in err and "Traceback" not in err
    code, _, err = run_cli(base + [str(path), "--sample", "B"], capsys)
    assert code == 2 and "no sample 'B'" in err
    code, _, err = run_cli(base + [str(path), "--sample", "A", "--path", "Cd-S"], capsys)
    assert code == 2 and "'Cd-S.n'" in err
    old = tmp_path / "old.h5"
    write_results(old, {"A": (["Cd-S.n"], np.ones((3, 1)), np.ones(3))}, layout_version=0)
    code, _, err = run_cli(base + [str(old), "--sample", "A"], capsys)
    assert code == 2 and "layout" in err
    failed = tmp_path / "failed.h5"
    write_results(failed, {"A": (["Cd-S.n"], np.ones((3, 1)), -np.ones(3))})
    code, _, err = run_cli(base + [str(failed), "--sample", "A"], capsys)
    assert code == 2 and "no successful replicate" in err


def test_cli_bad_extra(capsys):
    code, _, err = run_cli(["stoich", "--mass", "5160", "--extra", "O10"], capsys)
    assert code == 2 and "--extra" in err
