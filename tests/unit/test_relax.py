"""Relaxation (xasmpi.xanes.relax): known minima, resume from the saved frame, frozen core, CHGNet."""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from xasmpi.errors import ConfigError
from xasmpi.xanes.clusters import DEFAULT_A, DEFAULT_C, build_cluster, check_chemistry
from xasmpi.xanes.relax import RelaxSettings, cap_oxygen, core_mask, make_calculator, relax

LJ = "ase.calculators.lj:LennardJones"


def test_calculator_by_import_path_finds_the_lennard_jones_minimum(tmp_path):
    calc, info = make_calculator(LJ)
    assert info.name == "LennardJones" and info.package.startswith("ase ")
    dimer = Atoms("CdS", positions=[(0, 0, 0), (1.5, 0, 0)])
    res = relax(dimer, calculator=calc, model=info, settings=RelaxSettings(fmax=1e-4, steps=500, optimizer="bfgs"))
    assert res.converged and res.steps > 0
    assert res.final.get_distance(0, 1) == pytest.approx(2 ** (1 / 6), abs=1e-4)  # LJ minimum, sigma = 1
    e_shift = 4 * (3.0 ** -12 - 3.0 ** -6)  # ASE shifts the pair energy to 0 at rc = 3 sigma
    assert res.energy_final == pytest.approx(-1.0 - e_shift, abs=1e-6) and res.energy_final < res.energy_initial
    assert np.allclose(res.initial.positions, dimer.positions)  # first frame kept
    assert not res.final.pbc.any() and res.final.cell.volume == 0  # returned in the input's frame


def test_resume_from_the_last_saved_frame(tmp_path):
    calc, info = make_calculator(LJ)
    rng = np.random.default_rng(3)
    atoms = Atoms("Cd8", positions=rng.uniform(0, 2.5, (8, 3)) + np.arange(8)[:, None] * [1.1, 0, 0])
    ckpt = tmp_path / "frame.extxyz"
    st = RelaxSettings(fmax=1e-3, steps=30, save_every=10)
    first = relax(atoms, calculator=calc, model=info, settings=st, checkpoint=ckpt)
    assert first.steps == 30 and first.resumed_from == 0 and not first.converged
    # a second call (e.g. after a kill) continues from the saved frame, not from the start
    more = relax(atoms, calculator=calc, model=info, settings=RelaxSettings(fmax=1e-3, steps=60, save_every=10),
                 checkpoint=ckpt)
    assert more.resumed_from == 30 and more.steps > 30
    assert more.energy_final <= first.energy_final + 1e-9
    assert more.energy_initial == pytest.approx(first.energy_initial)  # first frame = the input
    # a checkpoint of other atoms is ignored
    other = relax(Atoms("Cd2", positions=[(0, 0, 0), (1.5, 0, 0)]), calculator=calc, model=info,
                  settings=RelaxSettings(steps=5), checkpoint=ckpt)
    assert other.resumed_from == 0


def test_frozen_core_stays_put():
    calc, info = make_calculator(LJ)
    atoms, _ = build_cluster("zincblende", n_atoms=14, terminate_with="O")
    atoms.positions *= 0.5  # LJ sigma = 1: shrink so that the forces are not tiny
    core = core_mask(atoms)
    assert core.any() and (~core).any()
    res = relax(atoms, calculator=calc, model=info, settings=RelaxSettings(steps=20, freeze="core"))
    moved = np.linalg.norm(res.final.positions - atoms.positions, axis=1)
    assert np.all(moved[core] < 1e-12) and moved[~core].max() > 1e-3


def test_unknown_calculator_refused():
    with pytest.raises(ConfigError, match="relax.calculator"):
        RelaxSettings(calculator="nonsense")
    with pytest.raises(ConfigError, match="cannot import"):
        make_calculator("xasmpi.nothing:Here")


def test_chgnet_relaxes_a_small_o_capped_cluster():
    """The default potential (CHGNet 0.3.0, weights in the wheel): energy and forces go down."""
    pytest.importorskip("chgnet")
    atoms, rep = build_cluster("zincblende", n_atoms=14, terminate_with="O")
    res = relax(atoms, settings=RelaxSettings(steps=15))
    assert res.model.name == "CHGNet" and res.model.version == "0.3.0"
    assert res.energy_final < res.energy_initial - 1.0  # eV: an unrelaxed cut is far from a minimum
    f0 = np.abs(make_calculator("chgnet")[0].get_forces(_boxed(atoms))).max()
    assert res.fmax < f0
    sym = np.array(res.final.get_chemical_symbols())
    d = np.linalg.norm(res.final.positions[sym == "O"][:, None] - res.final.positions[sym == "Cd"][None], axis=2)
    assert 2.0 < np.median(d.min(axis=1)) < 2.4  # relaxed Cd-O bonds stay Cd-O bonds (CdO: 2.35 Å)
    assert not any(c[0] == "O-O" for c in check_chemistry(res.final).contacts)
    assert res.final.get_chemical_symbols() == atoms.get_chemical_symbols()


def _boxed(atoms: Atoms) -> Atoms:
    a = atoms.copy()
    a.positions -= a.positions.min(axis=0) - 6.0
    a.set_cell(np.ptp(atoms.positions, axis=0) + 12.0)
    a.pbc = True
    return a


def test_betasn_default_is_the_chgnet_cell():
    """The documented beta-Sn default: CHGNet 0.3.0, I-4m2 kept, 10 GPa, from white tin's c/a."""
    pytest.importorskip("chgnet")
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from ase.units import GPa

    calc, _ = make_calculator("chgnet")
    a0, c0 = 5.264, 5.264 * 0.5456
    cell = Atoms("Cd2S2", scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0, 0.5, 0.25), (0.5, 0, 0.75)],
                 cell=[a0, a0, c0], pbc=True)
    cell.calc = calc
    cell.set_constraint(FixSymmetry(cell))
    BFGS(FrechetCellFilter(cell, scalar_pressure=10 * GPa), logfile=None).run(fmax=0.005, steps=300)
    a, _, c = cell.cell.cellpar()[:3]
    assert a == pytest.approx(DEFAULT_A["betasn"], abs=0.01)
    assert c == pytest.approx(DEFAULT_C["betasn"], abs=0.01)


def test_hydroxide_caps_are_added_for_the_relaxation_and_removed_after():
    atoms, _ = build_cluster("zincblende", n_atoms=14, terminate_with="O")
    capped = cap_oxygen(atoms)
    sym = np.array(capped.get_chemical_symbols())
    n_o = int((sym == "O").sum())
    assert (sym == "H").sum() == n_o and capped.get_chemical_symbols()[: len(atoms)] == atoms.get_chemical_symbols()
    oh = np.linalg.norm(capped.positions[sym == "H"] - capped.positions[sym == "O"], axis=1)
    assert np.allclose(oh, 0.97)
    # every H points away from its O's Cd: H farther from the nearest Cd than its O is
    cd = capped.positions[sym == "Cd"]
    d_h = np.linalg.norm(capped.positions[sym == "H"][:, None] - cd[None], axis=2).min(axis=1)
    d_o = np.linalg.norm(capped.positions[sym == "O"][:, None] - cd[None], axis=2).min(axis=1)
    assert np.all(d_h > d_o)
    calc, info = make_calculator(LJ)
    small = atoms.copy()
    small.positions *= 0.5
    res = relax(small, calculator=calc, model=info, settings=RelaxSettings(steps=3, cap="H"))
    assert res.final.get_chemical_symbols() == small.get_chemical_symbols()  # caps removed
