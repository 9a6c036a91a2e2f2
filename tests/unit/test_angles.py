"""Bond angles: the paper's 106.1° from two shells, ideal and strained zinc blende, core/surface split."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

from xasmpi.analysis.angles import (
    TETRAHEDRAL_ANGLE_DEG,
    angle_from_replicates,
    angle_from_shells,
    bond_angle_distribution,
    bond_cutoffs,
)
from xasmpi.cli import main
from xasmpi.errors import InputError
from tests.unit.conftest import write_results

A_ZB = 5.818  # Å, zinc-blende CdS
BOND_ZB = A_ZB * math.sqrt(3) / 4  # 2.519 Å


def zb_sphere(radius: float = 7.5, *, strain_z: float = 1.0) -> Atoms:
    """Zinc-blende CdS sphere centred on a Cd atom, optionally stretched along z."""
    b = bulk("CdS", "zincblende", a=A_ZB, cubic=True).repeat((5, 5, 5))
    pos = b.positions.copy()
    pos[:, 2] *= strain_z
    cd = np.flatnonzero(np.array(b.get_chemical_symbols()) == "Cd")
    centre = pos[cd[np.argmin(np.linalg.norm(pos[cd] - pos.mean(0), axis=1))]]
    keep = np.linalg.norm(pos - centre, axis=1) < radius
    return Atoms(np.array(b.get_chemical_symbols())[keep], positions=pos[keep] - centre)



# ---------------------------------------------------------------- angle from two shells


def test_paper_angle_and_analytic_uncertainty():
    res = angle_from_shells(2.4881, 3.9769, r1_sd=0.0098, r2_sd=0.0096)
    assert round(res.angle, 1) == 106.1
    assert round(res.sd, 2) == 0.70
    assert "analytic" in res.method
    # independent check: central finite differences of theta(R1, R2), errors in quadrature
    th = lambda r1, r2: math.degrees(2 * math.asin(r2 / (2 * r1)))  # noqa: E731
    h = 1e-6
    d1 = (th(2.4881 + h, 3.9769) - th(2.4881 - h, 3.9769)) / (2 * h)
    d2 = (th(2.4881, 3.9769 + h) - th(2.4881, 3.9769 - h)) / (2 * h)
    assert res.sd == pytest.approx(math.hypot(d1 * 0.0098, d2 * 0.0096), rel=1e-6)
    assert res.deviation == pytest.approx(res.angle - 109.4712, abs=1e-4)


def test_tetrahedral_ratio_gives_109_47():
    assert TETRAHEDRAL_ANGLE_DEG == pytest.approx(109.4712206, abs=1e-6)
    res = angle_from_shells(2.5, 2.5 * math.sqrt(8 / 3))
    assert res.angle == pytest.approx(109.4712206, abs=1e-6)
    assert res.sd == 0.0


@pytest.mark.parametrize("r1,r2,kw", [(2.0, 4.0, {}), (-1, 3, {}), (2.5, 4.0, {"r1_sd": -0.1})])
def test_angle_from_shells_bad_input(r1, r2, kw):
    with pytest.raises(InputError):
        angle_from_shells(r1, r2, **kw)


def test_replicates_independent_match_analytic():
    rng = np.random.default_rng(7)
    r1 = rng.normal(2.4881, 0.0098, 20000)
    r2 = rng.normal(3.9769, 0.0096, 20000)
    res = angle_from_replicates(r1, r2)
    assert res.n == 20000 and res.n_invalid == 0
    # Monte Carlo sd of a 0.70° linear propagation: relative error ~ 1/sqrt(2n) = 0.5 %
    assert res.mean == pytest.approx(106.10, abs=0.03)
    assert res.sd == pytest.approx(0.704, rel=0.03)
    assert dict(res.percentiles)[50.0] == pytest.approx(res.median)


def test_replicates_keep_correlation():
    # R2 tied to R1 by the tetrahedral ratio in every replicate: the angle is exactly 109.47°
    # although R1 and R2 each scatter by 0.01 Å; independent propagation would give ~0.8°.
    rng = np.random.default_rng(1)
    r1 = rng.normal(2.52, 0.01, 500)
    r2 = r1 * math.sqrt(8 / 3)
    res = angle_from_replicates(r1, r2)
    assert res.correlation == pytest.approx(1.0)
    assert res.mean == pytest.approx(109.4712206, abs=1e-6)
    assert res.sd < 1e-9
    indep = angle_from_shells(r1.mean(), r2.mean(), r1_sd=r1.std(ddof=1), r2_sd=r2.std(ddof=1))
    assert indep.sd > 0.5


def test_replicates_drop_invalid_pairs():
    res = angle_from_replicates([2.5, 2.5, 2.0, np.nan], [4.0, 4.1, 4.5, 4.0])
    assert res.n == 2 and res.n_invalid == 2
    with pytest.raises(InputError):
        angle_from_replicates([2.5, 2.5], [4.0])


# ---------------------------------------------------------------- distributions in models


def test_ideal_zincblende_all_tetrahedral():
    cl = zb_sphere(7.5)
    dist = bond_angle_distribution(cl)
    assert np.all(np.abs(dist.angles - 109.4712) < 0.01)
    assert not dist.surface.any() and dist.n_surface_centres == 0
    # number of angles = sum over atoms of k(k-1)/2, k = Cd-S bonds (independent count)
    d = np.linalg.norm(cl.positions[:, None] - cl.positions[None], axis=2)
    sym = np.array(cl.get_chemical_symbols())
    bonded = (d < BOND_ZB + 0.1) & (d > 0) & (sym[:, None] != sym[None, :])
    k = bonded.sum(1)
    assert dist.angles.size == int((k * (k - 1) // 2).sum())
    assert set(dist.kind.tolist()) == {"S-Cd-S", "Cd-S-Cd"}
    assert dist.kinds == ("Cd-S-Cd", "S-Cd-S")
    assert dist.select(kind="X-Cd-X").size == dist.select(kind="S-Cd-S").size > 0


def test_periodic_bulk_cell():
    dist = bond_angle_distribution(bulk("CdS", "zincblende", a=A_ZB))
    assert dist.angles.size == 12  # 6 angles around each of the 2 atoms
    assert np.allclose(dist.angles, TETRAHEDRAL_ANGLE_DEG, atol=1e-8)


def test_uniaxial_strain_splits_angles():
    s = 1.1  # z stretched by 10 %: bonds (±1, ±1, ±s)·a/4
    cos_a = (s * s - 2) / (2 + s * s)  # pairs with opposite x, y signs: 104.25°
    cos_b = -s * s / (2 + s * s)  # the other four pairs: 112.15°
    ta, tb = math.degrees(math.acos(cos_a)), math.degrees(math.acos(cos_b))
    dist = bond_angle_distribution(zb_sphere(7.5, strain_z=s))
    near_a = np.abs(dist.angles - ta) < 0.01
    near_b = np.abs(dist.angles - tb) < 0.01
    assert np.all(near_a | near_b)
    assert near_a.sum() > 0 and near_b.sum() > 0
    # fully coordinated centres contribute 2 angles of the first kind and 4 of the second
    assert near_b.sum() > 1.5 * near_a.sum()
    p = bulk("CdS", "zincblende", a=A_ZB, cubic=True)
    p.set_cell(p.cell * [1, 1, s], scale_atoms=True)
    bd = bond_angle_distribution(p)
    assert np.sum(np.abs(bd.angles - ta) < 0.01) * 2 == np.sum(np.abs(bd.angles - tb) < 0.01)


def test_core_surface_classification():
    cl = zb_sphere(7.5)
    sym = np.array(cl.get_chemical_symbols())
    r = np.linalg.norm(cl.positions, axis=1)
    sym[(sym == "S") & (r > 6.0)] = "O"  # outer anions become O at the same positions
    cl.set_chemical_symbols(sym.tolist())
    dist = bond_angle_distribution(cl, cutoffs={("Cd", "O"): 2.7, ("S", "Cd"): 2.7})
    d = np.linalg.norm(cl.positions[:, None] - cl.positions[None], axis=2)
    bonded = (d < 2.7) & (d > 0) & ((sym[:, None] == "Cd") ^ (sym[None, :] == "Cd"))
    has_o = (bonded & (sym[None, :] == "O")).any(1) | (sym == "O")
    assert np.array_equal(dist.surface, has_o[dist.centre])
    assert dist.surface.any() and (~dist.surface).any()
    # S-centred angles are core (S is bonded only to Cd); O-centred are surface
    assert not dist.surface[sym[dist.centre] == "S"].any()
    assert dist.surface[sym[dist.centre] == "O"].all()
    assert dist.core_angles.size + dist.surface_angles.size == dist.angles.size
    # geometry unchanged: still all tetrahedral
    assert np.all(np.abs(dist.angles - 109.4712) < 0.01)


def test_bond_cutoffs_defaults_and_override():
    from ase.data import atomic_numbers, covalent_radii

    cut = bond_cutoffs(["Cd", "S", "O"], tol=0.2, cutoffs={("S", "Cd"): 3.1})
    rc = covalent_radii[atomic_numbers["S"]] + covalent_radii[atomic_numbers["O"]]
    assert cut[("O", "S")] == pytest.approx(1.2 * rc)  # covalent-radius rule for other pairs
    assert cut[("Cd", "O")] == 2.65  # sees carboxylate-like Cd-O up to 2.6 Å (covalent rule: 2.52)
    assert cut[("Cd", "S")] == 3.1
    with pytest.raises(InputError):
        bond_cutoffs(["Cd"], cutoffs={("Cd", "Qq"): 3.0})
    # a cutoff shorter than the bond leaves no angles: clear error
    with pytest.raises(InputError):
        bond_angle_distribution(zb_sphere(5.0), cutoffs={("Cd", "S"): 2.0})
    with pytest.raises(InputError):
        bond_angle_distribution(Atoms("ZnS", positions=[[0, 0, 0], [0, 0, 2.3]]))


# ---------------------------------------------------------------- CLI


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_angle_analytic(capsys):
    code, out, _ = run_cli(["angle", "--r1", "2.4881", "--r1-sd", "0.0098", "--r2", "3.9769",
                            "--r2-sd", "0.0096"], capsys)
    assert code == 0
    assert "106.10 ± 0.70 deg" in out
    assert "method: analytic" in out and "109.47" in out
    code, out, _ = run_cli(["angle", "--r1", "2.4881", "--r1-sd", "0.0098", "--r2", "3.9769",
                            "--r2-sd", "0.0096", "--json"], capsys)
    d = json.loads(out)
    assert round(d["angle_deg"], 1) == 106.1 and round(d["sd_deg"], 2) == 0.70


def test_cli_angle_from_replicates(tmp_path, capsys):
    rng = np.random.default_rng(2)
    r1 = rng.normal(2.4881, 0.0098, 300)
    r2 = r1 * (3.9769 / 2.4881) + rng.normal(0, 0.002, 300)  # strongly correlated
    params = np.column_stack([r1, r2, np.full(300, 2.6)])
    status = np.ones(300, dtype=np.int8)
    params[0, :2] = [1.0, 9.0]  # failed row with nonsense distances: must be ignored
    status[0] = -1
    path = tmp_path / "res.h5"
    write_results(path, {"MSC-322": (["Cd-S.r", "Cd-Cd.r", "Cd-S.n"], params, status)})
    code, out, _ = run_cli(["angle", "--from", str(path), "--sample", "MSC-322", "--r1-path", "Cd-S",
                            "--r2-path", "Cd-Cd", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    ok = status == 1
    expect = np.degrees(2 * np.arcsin(params[ok, 1] / (2 * params[ok, 0])))
    assert d["n"] == 299 and d["n_invalid"] == 0
    assert d["angle_deg"] == pytest.approx(expect.mean())
    assert d["sd_deg"] == pytest.approx(expect.std(ddof=1))
    assert "replicates" in d["method"]
    # correlated errors partly cancel: replicate sd is well below the independent-error estimate
    assert d["sd_deg"] < 0.5 * d["analytic_from_replicate_mean_sd"]["sd_deg"]
    code, out, _ = run_cli(["angle", "--from", str(path), "--sample", "MSC-322"], capsys)
    assert code == 0 and "method: replicates" in out


def test_cli_angle_errors(tmp_path, capsys):
    path = tmp_path / "fixedR.h5"
    write_results(path, {"S": (["Cd-S.n", "Cd-Cd.n"], np.ones((4, 2)), np.ones(4))})
    code, _, err = run_cli(["angle", "--from", str(path), "--sample", "S"], capsys)
    assert code == 2 and "not free parameters" in err and "Traceback" not in err
    code, _, err = run_cli(["angle", "--r1", "2.5"], capsys)
    assert code == 2 and "--r2" in err
    code, _, err = run_cli(["angle", "--from", str(tmp_path / "missing.h5")], capsys)
    assert code == 2 and "not found" in err


def test_cli_angles_ideal_and_strained(tmp_path, capsys):
    f = tmp_path / "zb.xyz"
    write(f, zb_sphere(7.5))
    code, out, _ = run_cli(["angles", str(f), "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    core = d["classes"]["core"]
    assert core["n"] > 100 and d["classes"]["surface"]["n"] == 0
    assert abs(core["min"] - 109.4712) < 0.01 and abs(core["max"] - 109.4712) < 0.01
    assert core["modes"] == [pytest.approx(109.4712, abs=0.01)]
    g = tmp_path / "strained.xyz"
    write(g, zb_sphere(7.5, strain_z=1.1))
    code, out, _ = run_cli(["angles", str(g), "--cutoff", "Cd-S=3.0", "--bw", "0.1"], capsys)
    assert code == 0
    modes_line = [ln for ln in out.splitlines() if ln.startswith("all")][0]
    modes = [float(v) for v in modes_line.split("  ")[-1].split(",")]
    assert sorted(round(m) for m in modes) == [104, 112]


def test_cli_angles_bad_input(tmp_path, capsys):
    code, _, err = run_cli(["angles", str(tmp_path / "none.xyz")], capsys)
    assert code == 2 and "not found" in err
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not\na structure\n")
    code, _, err = run_cli(["angles", str(bad)], capsys)
    assert code == 2 and "cannot read" in err
    f = tmp_path / "zb.xyz"
    write(f, zb_sphere(5.0))
    code, _, err = run_cli(["angles", str(f), "--cutoff", "Cd-S3.0"], capsys)
    assert code == 2 and "--cutoff" in err


def test_angle_kinds_and_carboxylate_like_cd_o():
    """S-Cd-O / O-Cd-O / Cd-O-Cd kinds, and a 2.58 Å Cd-O bond counted (covalent rule misses it)."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    # Cd at the origin: two S at 2.52, two O at 2.58 Å; a second Cd sharing the first O
    pos = [(0, 0, 0), 2.52 * v[0], 2.52 * v[1], 2.58 * v[2], 2.58 * v[3]]
    cd2 = 2.58 * v[2] + 2.58 * np.array([0, 0, -1.0])
    model = Atoms("CdS2O2Cd", positions=pos + [cd2])
    dist = bond_angle_distribution(model)
    counts = {k: int((dist.kind == k).sum()) for k in dist.kinds}
    assert counts == {"S-Cd-S": 1, "S-Cd-O": 4, "O-Cd-O": 1, "Cd-O-Cd": 1}
    assert dist.select(kind="S-Cd-S")[0] == pytest.approx(TETRAHEDRAL_ANGLE_DEG)
    cos = np.dot(-v[2], [0, 0, -1.0])
    assert dist.select(kind="Cd-O-Cd")[0] == pytest.approx(math.degrees(math.acos(cos)), abs=1e-6)
    assert dist.surface.all()  # every centre is bonded to O (or is O)
