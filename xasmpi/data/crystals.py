"""The reference crystals of xasmpi (one table, with its sources) and the structure reader.

Every bulk structure the project builds comes from :data:`CRYSTALS` (after ASE's
``ase.data.reference_states``): the FEFF route (``[[paths]] structure = "CdS-zincblende"``,
:func:`xasmpi.exafs.feff.crystal`), the XANES candidates and crystal fragments
(:func:`xasmpi.xanes.clusters.bulk_crystal`, whose default lattice parameters are the ``CdS-*``
rows), the demo's simulated data and the job validation (:mod:`xasmpi.config`).  User structures
enter through :func:`read_model` (any file ``ase.io`` reads); :func:`structure` takes either.

================  =======  ===========================================================
name              a, c Å   Cd neighbours (first shells, Å)
================  =======  ===========================================================
CdS-zincblende    5.818    4 S 2.519 (a√3/4), 12 Cd 4.114 (a/√2)
CdS-wurtzite      4.137,   3 S 2.527 + 1 S 2.532 (u = 0.377), 6 Cd 4.121 + 6 Cd 4.137
                  6.716
CdS-rocksalt      5.42     6 S 2.71 (a/2), 12 Cd 3.83 (a/√2): high-pressure CdS
CdS-betasn        4.737,   4 S 2.526 (flattened tetrahedron), 2 Cd 3.508, 4 S 3.54
                  3.508
CdO-rocksalt      4.695    6 O 2.348 (a/2), 12 Cd 3.320 (a/√2): monteponite
================  =======  ===========================================================

To add a crystal: one :class:`Crystal` row with its citation (and, for a new lattice family, a
branch in :func:`build`), plus its nearest-neighbour distances in ``tests/unit/test_crystals.py``.

This module imports ASE lazily, so the table is cheap to import (the job validation uses it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from xasmpi.errors import ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

#: lattice families :func:`build` knows
LATTICES = ("zincblende", "wurtzite", "rocksalt", "betasn")
#: atoms closer than this (Å) are "overlapping atoms" in :func:`check_overlaps`
MIN_DISTANCE = 1.2


@dataclass(frozen=True)
class Crystal:
    """One reference crystal.

    Attributes
    ----------
    formula : str
        Cation then anion, e.g. ``"CdS"`` (the cation is the absorber: first in the cell).
    lattice : {"zincblende", "wurtzite", "rocksalt", "betasn"}
        Lattice family (see :func:`build`).
    a : float
        Lattice parameter a (Å).
    c : float or None
        Lattice parameter c (Å) of the non-cubic families (wurtzite, β-Sn).
    u : float or None
        Wurtzite internal parameter (fraction of c).
    citation : str
        Where the lattice parameters come from (Table S1 of the report prints it).
    """

    formula: str
    lattice: str
    a: float
    c: Optional[float] = None
    u: Optional[float] = None
    citation: str = ""

    @property
    def name(self) -> str:
        """Table key, ``"<formula>-<lattice>"`` (e.g. ``"CdO-rocksalt"``)."""
        return f"{self.formula}-{self.lattice}"


_ACMP = "Adv. Condens. Matter Phys. 2014, 361328 (doi:10.1155/2014/361328)"

#: the reference crystals by name (``Crystal.name``).  The wurtzite u = 0.377 gives the README's
#: Cd–S distances 1 × 2.532 Å (axial) and 3 × 2.527 Å.
CRYSTALS: dict[str, Crystal] = {c.name: c for c in (
    Crystal("CdS", "zincblende", 5.818,
            citation="a = 5.818 Å: experimental value in the compilation of Table 1 of "
                     "'Revisiting the zinc-blende/wurtzite heterocrystalline structure in CdS', " + _ACMP),
    Crystal("CdS", "wurtzite", 4.137, c=6.716, u=0.377,
            citation="a = 4.137, c = 6.716 Å: XAS Data Library sheet of the measured greenockite "
                     "(shared/data/xaslib/README.md; experimental a = 4.136, c = 6.714 Å in Adv. "
                     "Condens. Matter Phys. 2014, 361328); u = 0.377 chosen to give its Cd–S "
                     "distances 1 × 2.532, 3 × 2.527 Å"),
    Crystal("CdS", "rocksalt", 5.42,
            citation="a = 5.42 Å: NaCl-type high-pressure CdS (stable above ~3 GPa); X-ray diffraction "
                     "under pressure gives a ≈ 5.4 Å, e.g. Kabalkina & Troitskaya, Sov. Phys. Dokl. 8 "
                     "(1964) 800"),
    Crystal("CdS", "betasn", 4.737, c=3.508,
            citation="a = 4.737, c = 3.508 Å: computed (no measured β-Sn CdS exists): CHGNet 0.3.0 "
                     "(Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), 4-atom I-4m2 cell with its "
                     "symmetry kept, cell and positions relaxed under 10 GPa (BFGS, fmax 0.005 eV/Å); "
                     "tests/unit/test_relax.py::test_betasn_default_is_the_chgnet_cell"),
    Crystal("CdO", "rocksalt", 4.695,
            citation="a = 4.695 Å: XAS Data Library sheet of the measured monteponite, Fm-3m "
                     "(shared/data/xaslib/README.md)"),
)}


def build(lattice: str, *, a: float, c: float | None = None, u: float | None = None,
          cation: str = "Cd", anion: str = "S", cubic: bool = False) -> "Atoms":
    """Periodic cell of one lattice family, cation first.

    Parameters
    ----------
    lattice : {"zincblende", "wurtzite", "rocksalt", "betasn"}
        ``zincblende`` F-43m, ``rocksalt`` Fm-3m, ``wurtzite`` P6_3mc (ASE ``bulk`` with ``u``),
        ``betasn`` the I4_1/amd (white tin) site set with cation and anion alternated (I-4m2):
        zinc blende compressed along [001] (zinc blende is the same cell with c/a = √2).
    a, c : float
        Lattice parameters (Å); ``c`` for wurtzite and β-Sn only.
    u : float, optional
        Wurtzite internal parameter (ASE's default when None).
    cation, anion : str
        Chemical symbols.
    cubic : bool
        Conventional cubic cell (8 atoms) instead of the primitive one for zinc blende and rock
        salt; ignored by the other families.

    Returns
    -------
    ase.Atoms

    Raises
    ------
    InputError
        Unknown lattice or missing ``c``.
    """
    from ase import Atoms
    from ase.build import bulk

    name = cation + anion
    if lattice in ("zincblende", "rocksalt"):
        return bulk(name, lattice, a=a, cubic=cubic)
    if lattice not in LATTICES:
        raise InputError(f"lattice {lattice!r}: unknown, choose one of {', '.join(LATTICES)}")
    if c is None:
        raise InputError(f"lattice {lattice}: needs the lattice parameter c")
    if lattice == "wurtzite":
        return bulk(name, "wurtzite", a=a, c=c, u=u)
    return Atoms([cation, cation, anion, anion],
                 scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0, 0.5, 0.25), (0.5, 0, 0.75)],
                 cell=[a, a, c], pbc=True)


def crystal(name: str, *, cubic: bool = False) -> "Atoms":
    """Cell of a reference crystal of :data:`CRYSTALS` (e.g. ``"CdS-zincblende"``, ``"CdO-rocksalt"``).

    Parameters
    ----------
    name : str
        Table key.
    cubic : bool
        Conventional cubic cell for zinc blende and rock salt (default the primitive cell).

    Raises
    ------
    ConfigError
        Unknown name.
    """
    if name not in CRYSTALS:
        raise ConfigError(f"unknown crystal {name!r} (use one of {', '.join(CRYSTALS)})")
    x = CRYSTALS[name]
    cation, anion = _split_formula(x.formula)
    return build(x.lattice, a=x.a, c=x.c, u=x.u, cation=cation, anion=anion, cubic=cubic)


def _split_formula(formula: str) -> tuple[str, str]:
    """``"CdS"`` -> ``("Cd", "S")`` (two elements, one atom each)."""
    import re

    parts = re.findall(r"[A-Z][a-z]?", formula)
    if len(parts) != 2 or "".join(parts) != formula:
        raise ConfigError(f"crystal formula {formula!r}: expected two element symbols (e.g. 'CdS')")
    return parts[0], parts[1]


def check_overlaps(atoms: "Atoms", *, min_distance: float = MIN_DISTANCE, source: str = "model") -> None:
    """Refuse overlapping atoms.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (periodic images are honoured when ``pbc`` is set).
    min_distance : float
        Smallest allowed interatomic distance (Å).
    source : str
        Name used in the error message (a file name, a lattice...).

    Raises
    ------
    InputError
        If two atoms are closer than ``min_distance``.
    """
    import numpy as np
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2:
        return
    i, j, d = neighbor_list("ijd", atoms, min_distance, self_interaction=False)
    if d.size:
        k = int(np.argmin(d))
        sym = atoms.get_chemical_symbols()
        raise InputError(f"{source}: overlapping atoms {sym[i[k]]}{i[k]} and {sym[j[k]]}{j[k]} "
                         f"are {d[k]:.3f} Å apart (minimum {min_distance} Å)")


def read_model(path: str | Path, *, index: int | str = -1,
               min_distance: float = MIN_DISTANCE) -> "Atoms":
    """Read a user-supplied structure (xyz, extxyz, cif, POSCAR... anything ``ase.io`` reads).

    Parameters
    ----------
    path : str or Path
        Structure file.
    index : int or str
        Frame to read from multi-frame files (ASE convention; default the last).
    min_distance : float
        Refuse models with atoms closer than this (Å).

    Raises
    ------
    InputError
        Missing or unreadable file, empty model, or overlapping atoms.
    """
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: structure file not found")
    try:
        # parallel=False: ASE's parallel_function would broadcast from its rank 0 on its own
        # and break the campaign's collectives when only rank 0 reads (under mpirun)
        atoms = read(str(path), index=index, parallel=False)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise InputError(f"{path}: cannot read structure ({type(exc).__name__}: {exc})") from exc
    if len(atoms) == 0:
        raise InputError(f"{path}: structure has no atoms")
    check_overlaps(atoms, min_distance=min_distance, source=str(path))
    return atoms


def structure(spec: str | Path) -> "Atoms":
    """A crystal of :data:`CRYSTALS` by name, else the structure file ``spec`` (:func:`read_model`).

    Parameters
    ----------
    spec : str or Path
        Table key (``"CdO-rocksalt"``) or a path (resolved by the caller, e.g. against the job
        file's folder with :meth:`xasmpi.config.Job.resolve`).

    Raises
    ------
    InputError
        Neither a crystal name nor a readable structure file.
    """
    if str(spec) in CRYSTALS:
        return crystal(str(spec))
    return read_model(spec)


__all__: Sequence[str] = ("CRYSTALS", "Crystal", "LATTICES", "MIN_DISTANCE", "build", "check_overlaps",
                          "crystal", "read_model", "structure")
