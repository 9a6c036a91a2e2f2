"""Cluster builders, cuts, strain, O termination and absorber grouping against known geometry."""
from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from ase.neighborlist import neighbor_list

from xasmpi.errors import InputError
from xasmpi.xanes.clusters import (LATTICES, SHELL_SIZE, build_cluster, build_inp_like, bulk_crystal,
                                   check_chemistry, check_overlaps, cluster_report, cut_cluster,
                                   estimate_cost, read_model, symmetry_deviation, terminate,
                                   unique_absorbers)


def _neighbours(atoms, index, cutoff):
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    sym = atoms.get_chemical_symbols()
    return sorted((round(float(dd), 4), sym[jj]) for ii, jj, dd in zip(i, j, d) if ii == index)


def test_zincblende_core_cd_has_four_s_at_2519():
    atoms, rep = build_cluster("zincblende", a=5.818, n_atoms=35)
    assert atoms[0].symbol == "Cd" and np.allclose(atoms.positions[0], 0)  # centred on a Cd
    assert _neighbours(atoms, 0, 3.1) == [(2.5193, "S")] * 4
    assert 5.818 * np.sqrt(3) / 4 == pytest.approx(2.5193, abs=1e-4)
    assert rep.n_core_cd >= 1 and rep.shortest["Cd-S"] == pytest.approx(2.5193, abs=1e-4)


@pytest.mark.parametrize("lattice, shell, cutoff", [
    ("rocksalt", [(2.71, "S")] * 6, 2.95),
    ("wurtzite", [(2.527, "S")] * 3 + [(2.532, "S")], 2.95),
    # CHGNet cell at 10 GPa: 4 S in a flattened tetrahedron, then 2 Cd (c) and 4 S, no short contact
    ("betasn", [(2.5257, "S")] * 4 + [(3.508, "Cd")] * 2 + [(3.540, "S")] * 4, 3.6),
])
def test_first_shells_of_other_polymorphs(lattice, shell, cutoff):
    crystal = bulk_crystal(lattice)
    got = _neighbours(crystal, 0, cutoff)
    assert [s for _, s in got] == [s for _, s in shell]
    assert np.allclose([d for d, _ in got], [d for d, _ in shell], atol=2e-3)


def test_rocksalt_cdo_reference():
    cdo = bulk_crystal("rocksalt", a=4.695, anion="O")
    assert _neighbours(cdo, 0, 3.0) == [(2.3475, "O")] * 6


def test_uniaxial_strain_shortens_bonds_along_z():
    strained = bulk_crystal("zincblende", strain=(0.0, 0.0, -0.05))
    expected = 5.818 / 4 * np.sqrt(1 + 1 + 0.95 ** 2)
    assert [d for d, _ in _neighbours(strained, 0, 3.0)] == pytest.approx([expected] * 4, abs=1e-4)
    iso = bulk_crystal("zincblende", strain=0.02)
    assert iso.cell.cellpar()[0] == pytest.approx(5.818 * 1.02)


@pytest.mark.parametrize("bad", [0.4, (0.0, 0.1), (0.0, 0.0, -0.35)])
def test_bad_strain_refused(bad):
    with pytest.raises(InputError, match="strain"):
        bulk_crystal("zincblende", strain=bad)


def test_formula_cut_gives_exact_composition():
    cluster = cut_cluster(bulk_crystal("zincblende"), formula="Cd37S20")
    assert cluster_report(cluster).formula == "Cd37S20"
    # the 20 S are the 20 S nearest the centre Cd: none of the 37 Cd is farther in than an S gap
    r = np.linalg.norm(cluster.positions, axis=1)
    assert r[0] == 0.0


def test_shell_mode_takes_complete_shells():
    # around a Cd in zinc blende: 1 Cd, 4 S (2.52), 12 Cd (4.11), 12 S (4.82), ...
    cluster = cut_cluster(bulk_crystal("zincblende"), n_atoms=18, mode="shell")
    assert len(cluster) == 17


@pytest.mark.parametrize("lattice", LATTICES)
def test_termination_completes_every_cd_shell(lattice):
    atoms, rep = build_cluster(lattice, formula="Cd37S20", terminate_with="O")
    assert rep.counts["Cd"] == 37 and rep.counts["S"] == 20 and rep.counts["O"] > 0
    assert rep.min_coordination >= SHELL_SIZE[lattice]
    assert rep.n_core_cd + rep.n_surface_cd == 37
    # every O is bonded to a Cd at the requested distance (bridging O may be slightly longer)
    o_idx = [k for k, s in enumerate(atoms.get_chemical_symbols()) if s == "O"]
    cd = atoms.positions[[k for k, s in enumerate(atoms.get_chemical_symbols()) if s == "Cd"]]
    nearest = [np.min(np.linalg.norm(cd - atoms.positions[k], axis=1)) for k in o_idx]
    assert min(nearest) == pytest.approx(2.3, abs=0.01) and max(nearest) < 2.75
    check_overlaps(atoms)  # no overlapping atoms


@pytest.mark.parametrize("lattice", ["zincblende", "wurtzite", "betasn"])
def test_termination_never_distorts_the_shell_angles(lattice):
    """Terminal O on the bond direction, bridging O at the crystal site: every X-Cd-X angle of the
    terminated cluster is an angle of the crystal (the old slide-to-2.3 Å merge gave up to 127°)."""
    from xasmpi.analysis.angles import bond_angle_distribution

    atoms, _ = build_cluster(lattice, formula="Cd37S20", terminate_with="O")
    crystal = bond_angle_distribution(bulk_crystal(lattice).repeat(2)).angles
    got = bond_angle_distribution(atoms).select(kind="X-Cd-X")
    allowed = np.unique(np.round(crystal, 1))
    assert np.all(np.min(np.abs(got[:, None] - allowed[None]), axis=1) < 0.6)


def test_inp_like_model_composition_symmetry_and_bonds():
    """Cd37S20 after In37P20 (Gary et al. 2016): C2v, zinc-blende bonds, S all bonded to Cd."""
    core, rep = build_inp_like(terminate_with=None)
    assert rep.formula == "Cd37S20"
    assert symmetry_deviation(core) < 1e-9  # C2 about z and mirrors x = +-y, exactly
    # broken symmetry is detected: move one atom by 0.1 Å
    moved = core.copy()
    moved.positions[5] += (0.1, 0, 0)
    assert symmetry_deviation(moved) == pytest.approx(0.1, abs=1e-6)
    i, j, d = neighbor_list("ijd", core, 3.0)
    sym = np.array(core.get_chemical_symbols())
    cds = (sym[i] == "Cd") & (sym[j] == "S")
    assert np.allclose(d[cds], 5.818 * np.sqrt(3) / 4)  # every Cd-S bond 2.519 Å
    assert cds.sum() == 78  # 78 Cd-S bonds
    s_cn = np.bincount(j[cds], minlength=len(core))[sym == "S"]
    cd_cn = np.bincount(i[cds], minlength=len(core))[sym == "Cd"]
    assert np.bincount(s_cn, minlength=5).tolist() == [0, 0, 0, 2, 18]
    assert np.bincount(cd_cn, minlength=5).tolist() == [0, 12, 12, 10, 3]
    assert rep.shortest["Cd-Cd"] == pytest.approx(5.818 / np.sqrt(2), abs=1e-4)
    assert rep.shortest["S-S"] == pytest.approx(5.818 / np.sqrt(2), abs=1e-4)


def test_inp_like_termination_counts_one_o_per_missing_bond():
    atoms, rep = build_inp_like()
    core, _ = build_inp_like(terminate_with=None)
    assert rep.counts["Cd"] == 37 and rep.counts["S"] == 20
    missing = 4 * 37 - 78  # one O per missing Cd-S bond ...
    o = atoms.positions[np.array(atoms.get_chemical_symbols()) == "O"]
    cd = atoms.positions[np.array(atoms.get_chemical_symbols()) == "Cd"]
    n_cd = (np.linalg.norm(o[:, None] - cd[None], axis=2) < 2.6).sum(axis=1)
    assert set(n_cd.tolist()) <= {1, 2, 3}  # terminal, mu2- and mu3-O (shared empty sites)
    assert rep.counts["O"] == missing - int(np.sum(n_cd - 1))  # ... minus the sharing
    assert rep.formula == "Cd37S20O54" and rep.min_coordination == 4
    assert symmetry_deviation(atoms) < 1e-9  # termination keeps C2v
    assert check_chemistry(atoms).passed


def test_chemistry_check_flags_forbidden_contacts_and_undercoordination():
    ok = Atoms("CdS4", positions=[(0, 0, 0)] + list(2.52 / np.sqrt(3) * np.array(
        [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])))
    res = check_chemistry(ok, min_s=1)
    assert res.passed and res.flags == ()
    bad = ok.copy()
    bad.positions[2] = bad.positions[1] + (0, 0, 2.08)  # a 2.08 Å S-S bond (what CHGNet made)
    res = check_chemistry(bad, min_s=1)
    assert not res.passed
    assert any(c[0] == "S-S" and c[3] == pytest.approx(2.08, abs=1e-3) for c in res.contacts)
    lone = Atoms("CdSO", positions=[(0, 0, 0), (2.5, 0, 0), (0, 6, 0)])
    flags = check_chemistry(lone).flags
    assert any("under-coordinated Cd0" in f for f in flags) and any("under-coordinated O2" in f for f in flags)


def test_termination_of_user_model_completes_tetrahedron():
    # Cd with two S of a perfect tetrahedron: the two O go to the two empty vertices
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    model = Atoms("CdS2", positions=[(0, 0, 0), 2.52 * v[0], 2.52 * v[1]])
    out = terminate(model, element="O", distance=2.3)
    o = out.positions[out.get_atomic_numbers() == 8]
    assert len(o) == 2
    got = sorted(map(tuple, np.round(o / 2.3, 6)))
    assert np.allclose(got, sorted(map(tuple, np.round(v[2:], 6))), atol=1e-5)


def test_octahedral_termination_of_user_model():
    model = Atoms("CdS", positions=[(0, 0, 0), (2.7, 0, 0)])
    out = terminate(model, geometry="octahedral")
    rep = cluster_report(out, shell_size=6)
    assert rep.formula == "CdSO5" and rep.min_coordination == 6
    o = out.positions[2:]
    assert np.allclose(np.linalg.norm(o, axis=1), 2.3)
    assert np.sum(np.isclose(o[:, 0], -2.3, atol=1e-6)) == 1  # trans to the S


def test_overlapping_atoms_refused(tmp_path):
    path = tmp_path / "bad.xyz"
    write(str(path), Atoms("CdS", positions=[(0, 0, 0), (0.5, 0, 0)]))
    with pytest.raises(InputError, match="overlapping atoms"):
        read_model(path)
    with pytest.raises(InputError, match="not found"):
        read_model(tmp_path / "missing.xyz")


def test_read_model_roundtrip(tmp_path):
    atoms, _ = build_cluster("rocksalt", n_atoms=27, terminate_with="O")
    write(str(tmp_path / "m.extxyz"), atoms)
    back = read_model(tmp_path / "m.extxyz")
    assert back.get_chemical_formula() == atoms.get_chemical_formula()
    assert np.allclose(back.positions, atoms.positions)


def test_unique_absorbers_known_groups():
    assert unique_absorbers(bulk_crystal("zincblende"), radius=6.0) == [(0, 1.0)]
    assert unique_absorbers(bulk_crystal("wurtzite"), radius=6.0) == [(0, 1.0)]
    # Cd13S4 (complete shells around a Cd): centre Cd, and 12 equivalent outer Cd (Td symmetry)
    cluster = cut_cluster(bulk_crystal("zincblende"), n_atoms=17)
    groups = unique_absorbers(cluster, radius=5.0)
    assert [(i, round(w, 6)) for i, w in groups] == [(0, round(1 / 13, 6)), (1, round(12 / 13, 6))]
    with pytest.raises(InputError, match="no Zn"):
        unique_absorbers(cluster, element="Zn")


def test_estimate_cost_is_atoms_within_radius_cubed():
    crystal = bulk_crystal("zincblende")
    assert estimate_cost(crystal, 0, 4.5) == 17 ** 3  # 1 + 4 S + 12 Cd
    assert estimate_cost(crystal, 0, 3.0) == 5 ** 3


def test_cli_cluster_build_json(tmp_path, capsys):
    from xasmpi.cli import main

    out = tmp_path / "zb.xyz"
    with pytest.raises(SystemExit) as exc:
        main(["cluster", "build", "--lattice", "zincblende", "--formula", "Cd37S20",
              "--terminate", "O", "-o", str(out), "--json"])
    assert exc.value.code == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["formula"].startswith("Cd37S20O") and rep["min_coordination"] == 4
    assert len(read_model(out)) == rep["n_atoms"]


def test_cli_cluster_build_inp_like(tmp_path, capsys):
    from xasmpi.cli import main

    out = tmp_path / "inp.xyz"
    with pytest.raises(SystemExit) as exc:
        main(["cluster", "build", "--model", "inp-like", "-o", str(out), "--json"])
    assert exc.value.code == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["formula"] == "Cd37S20O54" and rep["model"] == "inp-like" and rep["chemistry"]["passed"]
    assert rep["c2v_deviation"] < 1e-9
    assert len(read_model(out)) == 111


def test_coordination_shells_of_rock_salt_cdo_and_zinc_blende_cds():
    """The Fig. S3 shells: rock-salt CdO (a = 4.695 Å) has 6 O at a/2, 12 Cd at a/√2, 8 O at a·√3/2
    (the xaslib README's 2.348, 3.320, 4.067 Å); zinc-blende CdS 4 S at a·√3/4, 12 Cd at a/√2."""
    from xasmpi.xanes.clusters import coordination_shells

    a = 4.695
    cdo = bulk_crystal("rocksalt", a=a, anion="O")
    sh = coordination_shells(cdo, cdo.get_chemical_symbols().index("Cd"), 3)
    assert [s.elements for s in sh] == [{"O": 6}, {"Cd": 12}, {"O": 8}]
    assert [s.distance for s in sh] == pytest.approx([a / 2, a / np.sqrt(2), a * np.sqrt(3) / 2], abs=1e-6)
    assert [s.atoms_within for s in sh] == [7, 19, 27]
    # each radius lies between its shell and the next one (midpoint)
    assert sh[0].radius == pytest.approx((a / 2 + a / np.sqrt(2)) / 2)
    assert sh[2].radius == pytest.approx((a * np.sqrt(3) / 2 + a) / 2)
    zb = bulk_crystal("zincblende", a=5.818)
    s2 = coordination_shells(zb, zb.get_chemical_symbols().index("Cd"), 2)
    assert [s.elements for s in s2] == [{"S": 4}, {"Cd": 12}]
    assert s2[0].distance == pytest.approx(5.818 * np.sqrt(3) / 4, abs=1e-6)
    with pytest.raises(InputError):
        coordination_shells(zb, 0, 0)
