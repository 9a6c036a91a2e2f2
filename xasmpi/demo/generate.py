"""SIMULATED demo data: Cd K-edge μ(E) of bulk CdS, bulk CdO and an "MSC-like" sample from FEFF.

Everything written here is **simulated** and says so in every file.  The recipe:

1. Bulk CdS (zinc blende, a = 5.818 Å) and bulk CdO (rock salt, a = 4.695 Å)
   (:data:`xasmpi.data.crystals.CRYSTALS`) are written as FEFF6 inputs with multiple scattering
   (``NLEG 4``, ``RMAX`` :data:`FEFF_RMAX`) and run with larch's bundled ``feff6l``.  FEFF finds
   4 paths in CdS (Cd–S, Cd–Cd and two triangles Cd–S–S, Cd–Cd–S at 4.58 Å) and 12 in CdO
   (Cd–O, Cd–Cd, Cd–O 4.07 Å, Cd–Cd 4.70 Å and eight multiple-scattering paths at 4.01 and
   4.70 Å, among them the collinear focusing paths).
2. χ(k) of every spectrum is the sum of larch ``path2chi`` over the FEFF paths it contains,
   S0² = 1 (FEFF's complex momentum, mean free path, σ² and ΔR terms, all by larch):

   * every path's atoms must belong to a :class:`Shell` of the spectrum (element and bulk
     distance); a single-scattering path gets the shell's N; a multiple-scattering path gets
     FEFF's degeneracy times the occupancy ``min over its shells of (N/N_bulk)^m`` (m atoms
     of that shell in the path): atoms of one shell are independent sites, and an atom of an
     outer shell is reached through a bridging atom of an inner one, which exists when it does
     (e.g. Cd–Cd–S triangles scale as N(Cd–Cd), Cd–S–S triangles as (N(Cd–S)/4)²);
   * its ΔR is half the sum of its legs' ΔR and its σ² a quarter of the sum of its legs' σ²
     (independent legs; a single-scattering path gets the shell's R and σ²).  A leg from the
     absorber takes the values of its atom's shell; a leg between two scatterers those of the
     shell with the same bulk length (e.g. S–S 4.11 Å ↔ Cd–Cd 4.11 Å);
   * the bulk references contain all FEFF paths (:data:`REFERENCE_SHELLS` lists every shell up
     to ``RMAX``); the sample (:data:`SAMPLE_SHELLS`) contains the Cd–S, Cd–Cd shells of CdS
     with the two CdS triangles that they imply, and the first shell of CdO (Cd–O) as a
     ligand shell, single scattering only (:data:`SAMPLE_MS`);
   * every path of a structure gets the sample's ΔE0 of that structure (:data:`SAMPLE_DE0`,
     larch's ``e0``), i.e. the sample's Cd–S and Cd–O parts have E0s 1–2 eV away from the
     edge of the sample, as the references' E0s are from theirs.
3. χ(k) is multiplied by a turn-on ``t(k)`` (0 below 0.3 Å⁻¹, 1 above 1.8 Å⁻¹, cosine in
   between) so that μ(E) is smooth at the edge, and turned into an absorbance::

       μ(E) = c0 + c1·(E − E0) + J·[s(E)·D(E) + χ(k(E))·t(k(E))]

   with the spectrum's edge energy ``E0`` (:data:`EDGES`: the E0s larch finds on the real
   CdS_10K_01 and CdO_10K_01 scans for the references), the edge step ``J``, an arctan step
   ``s(E) = 1/2 + atan((E − E0)/(Γ/2))/π`` (Γ = :data:`EDGE_WIDTH`), a Victoreen-like decay
   ``D(E) = (E/E0)^-2.7`` and ``k = sqrt(0.2624683·(E − E0))``.  χ enters in larch's
   convention (normalised to the edge step at E0), so ``pre_edge`` + ``autobk`` recover it.
4. Gaussian noise of standard deviation ``noise·J`` is added to every μ point.  The noise in
   χ(k) is then ≈ ``noise`` at every k; the defaults (:data:`NOISE`) are larch
   ``estimate_noise`` ε_k of the real scans (CdS_10K_01: 1.64e-4, CdO_10K_01: 2.64e-4; the
   sample gets the CdS_10K_01 level).

Energy grid: pre-edge E0 − 261 … E0 − 21 eV in 5 eV steps, XANES E0 − 20 … E0 + 30 eV in
0.5 eV steps, then constant k steps of 0.05 Å⁻¹ up to k = 17 Å⁻¹.

Files (XDI 1.0, read by ``larch.io.read_xdi`` and :func:`xasmpi.exafs.io.read_spectrum`
with ``absorbance="mu"``): ``CdS_ref.xdi``, ``CdO_ref.xdi``, ``MSC_sim.xdi`` with columns
``energy mu``, a ``# SIMULATED by xasmpi ...`` comment line, the true values as JSON in the
``# Xasmpi.truth:`` header field (:func:`read_truth`; ``{path: {"n", "r", "sigma2",
"de0"}}``) and the simulation (every FEFF path with its larch parameters) in
``# Xasmpi.simulation:``; ``truth.json`` holds all of them (:attr:`DemoData.truth`);
``feff/CdS``, ``feff/CdO`` hold the FEFF runs.

The job-file template ``demo.toml`` (next to this module) uses these names; render it
with :func:`render_job`.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Mapping, Sequence

import numpy as np

from xasmpi.errors import InputError
from xasmpi.exafs.kernel import ETOK, KSTEP

#: edge energy E0 of each simulated spectrum, eV (references: larch ``find_e0`` of the real
#: CdS_10K_01 and CdO_10K_01 scans)
EDGES = {"CdS_ref": 26712.7, "CdO_ref": 26709.9, "MSC_sim": 26711.5, "MSC_iso": 26711.5}
#: edge energy of a spectrum not listed in :data:`EDGES`, eV
E0 = 26711.5
#: width Γ of the arctan edge step, eV
EDGE_WIDTH = 5.0
#: exponent of the post-edge decay D(E) = (E/E0)^-VICTOREEN
VICTOREEN = 2.7
#: highest k of the energy grid, Å⁻¹
KMAX = 17.0
#: default seed of :func:`generate`
DEFAULT_SEED = 20240607
#: larch ``estimate_noise`` ε_k of the real 10 K scans (xasmpi reduction defaults), measured
#: on ``../shared/data/xaslib`` (see the tests)
REAL_NOISE = {"CdS_10K_01": 1.64e-4, "CdO_10K_01": 2.64e-4}
#: default noise (σ of the noise in χ, i.e. in edge-step units) of each simulated spectrum
NOISE = {"CdS_ref": REAL_NOISE["CdS_10K_01"], "CdO_ref": REAL_NOISE["CdO_10K_01"],
         "MSC_sim": REAL_NOISE["CdS_10K_01"], "MSC_iso": REAL_NOISE["CdS_10K_01"]}

#: FEFF structures (:data:`xasmpi.data.crystals.CRYSTALS` names) and their RMAX (Å)
FEFF_STRUCTURES = {"CdS": "CdS-zincblende", "CdO": "CdO-rocksalt"}
FEFF_RMAX = {"CdS": 4.7, "CdO": 4.75}
#: distance tolerance when matching atoms and legs to shells, Å
MATCH_TOL = 0.03


@dataclass(frozen=True)
class Shell:
    """One shell of a simulated spectrum.

    Attributes
    ----------
    path : str
        Label, e.g. ``"Cd-S"`` (the name of the fit path it is the truth of).
    structure : str
        FEFF structure it comes from: ``"CdS"`` or ``"CdO"``.
    scatterer : str
        Element of its atoms.
    r_bulk : float
        Its distance in the FEFF structure, Å (identifies the shell).
    n : float
        Coordination number (S0² = 1).
    r : float
        Distance, Å.
    sigma2 : float
        Debye–Waller factor σ², Å².
    """

    path: str
    structure: str
    scatterer: str
    r_bulk: float
    n: float
    r: float
    sigma2: float

    def to_dict(self) -> dict:
        """JSON-able ``{"n", "r", "sigma2", "structure", "scatterer", "r_bulk"}`` (Å, Å²)."""
        return {"n": self.n, "r": self.r, "sigma2": self.sigma2, "structure": self.structure,
                "scatterer": self.scatterer, "r_bulk": self.r_bulk}


#: true shells of the two bulk references: every shell up to FEFF_RMAX (``r_bulk``: the shells of
#: the crystals, tests/unit/test_crystals.py)
REFERENCE_SHELLS: dict[str, tuple[Shell, ...]] = {
    "CdS_ref": (Shell("Cd-S", "CdS", "S", 2.519, 4.0, 2.519, 0.004),
                Shell("Cd-Cd", "CdS", "Cd", 4.114, 12.0, 4.114, 0.008)),
    "CdO_ref": (Shell("Cd-O", "CdO", "O", 2.348, 6.0, 2.348, 0.005),
                Shell("Cd-Cd", "CdO", "Cd", 3.320, 12.0, 3.320, 0.006),
                Shell("Cd-O.3", "CdO", "O", 4.066, 8.0, 4.066, 0.007),
                Shell("Cd-Cd.4", "CdO", "Cd", 4.695, 6.0, 4.695, 0.007)),
}
#: true shells of the "MSC-like" sample (Cd–O from CdO, Cd–S and Cd–Cd from CdS)
SAMPLE_SHELLS: dict[str, tuple[Shell, ...]] = {
    "MSC_sim": (Shell("Cd-O", "CdO", "O", 2.348, 3.2, 2.30, 0.008),
                Shell("Cd-S", "CdS", "S", 2.519, 2.6, 2.49, 0.006),
                Shell("Cd-Cd", "CdS", "Cd", 4.114, 5.4, 3.98, 0.015)),
    # an "isomer" of MSC_sim that differs only in N(Cd–Cd), 30 % more (the demo compares the two)
    "MSC_iso": (Shell("Cd-O", "CdO", "O", 2.348, 3.2, 2.30, 0.008),
                Shell("Cd-S", "CdS", "S", 2.519, 2.6, 2.49, 0.006),
                Shell("Cd-Cd", "CdS", "Cd", 4.114, 7.02, 3.98, 0.015)),
}
#: structures whose multiple-scattering paths a sample contains: its own lattice (CdS); its
#: Cd–O is a shell of surface ligands (tetrahedral Cd: no collinear O–Cd–O of rock salt)
SAMPLE_MS = ("CdS",)
#: ΔE0 (eV, larch ``e0``) of the sample's paths by structure, relative to the sample's edge
SAMPLE_DE0 = {"MSC_sim": {"CdS": 1.5, "CdO": -1.2}, "MSC_iso": {"CdS": 1.5, "CdO": -1.2}}
#: edge steps J (absorbance units) of the simulated spectra
EDGE_STEPS = {"CdS_ref": 1.2, "CdO_ref": 0.9, "MSC_sim": 0.6}
#: pre-edge lines (c0, c1 per eV) of the simulated spectra
PRE_EDGE = {"CdS_ref": (0.35, -6.0e-5), "CdO_ref": (0.28, -5.0e-5), "MSC_sim": (0.42, -8.0e-5)}


@dataclass(frozen=True, eq=False)
class DemoSpectrum:
    """One simulated spectrum and its true parameters.

    Attributes
    ----------
    name : str
        E.g. ``"CdS_ref"``, ``"CdO_ref"``, ``"MSC_sim"``.
    role : str
        ``"reference"`` or ``"sample"``.
    file : str
        The XDI file written.
    shells : tuple of Shell
        True shells (N, R in Å, σ² in Å²); S0² = 1.
    de0 : dict of str to float
        ΔE0 (eV) of the paths of each structure, relative to ``e0``.
    paths : tuple of dict
        Every FEFF path used: ``{"file", "nleg", "reff", "degen", "s02", "deltar", "sigma2",
        "e0"}`` (larch ``path2chi`` parameters; amplitude = degen · s02).
    energy, mu : ndarray
        Energy grid (eV) and the noisy absorbance written to the file.
    k, chi : ndarray
        Common grid ``0, 0.05, …, 17`` Å⁻¹ and the true (noise-free) χ(k), turn-on applied,
        in larch's normalisation: what ``autobk`` should recover.
    e0, edge_step, noise : float
        Edge energy (eV), edge step J (absorbance units) and σ of the noise in χ.
    """

    name: str
    role: str
    file: str
    shells: tuple
    de0: dict
    paths: tuple
    energy: np.ndarray
    mu: np.ndarray
    k: np.ndarray
    chi: np.ndarray
    e0: float
    edge_step: float
    noise: float

    def truth(self) -> dict:
        """JSON-able true values ``{path: {"n", "r", "sigma2", "de0"}}`` (Å, Å², eV; S0² = 1).

        The shape stored in ``/exafs/<spectrum>/truth`` and read by the report.  ``de0`` is
        relative to the spectrum's own edge (larch ``find_e0`` lands within ~0.5 eV of it).
        """
        return {s.path: {"n": s.n, "r": s.r, "sigma2": s.sigma2, "de0": self.de0.get(s.structure, 0.0)}
                for s in self.shells}

    def info(self) -> dict:
        """JSON-able description of the simulation (role, E0 in eV, edge step, noise, shells, paths)."""
        return {"simulated": True, "role": self.role, "e0": self.e0, "edge_step": self.edge_step,
                "noise": self.noise, "s02": 1.0, "de0": dict(self.de0), "chi_formula": "larch path2chi",
                "shells": [{"path": s.path, **s.to_dict()} for s in self.shells],
                "feff_paths": list(self.paths)}


@dataclass(frozen=True, eq=False)
class DemoData:
    """What :func:`generate` wrote.

    Attributes
    ----------
    out_dir : str
        The folder holding the files.
    seed : int
        Seed of the noise.
    spectra : dict of str to DemoSpectrum
        ``CdS_ref``, ``CdO_ref`` and the sample(s).
    truth_file : str
        ``truth.json`` (the same as :attr:`truth`).
    feff_dirs : dict of str to str
        FEFF run folders by structure (``"CdS"``, ``"CdO"``).
    """

    out_dir: str
    seed: int
    spectra: dict
    truth_file: str
    feff_dirs: dict = field(default_factory=dict)

    @property
    def truth(self) -> dict:
        """JSON-able content of ``truth.json``.

        ``{"simulated": true, "generator", "seed", "samples": [...], "references": [...],
        "info": {name: DemoSpectrum.info()}, <name>: {path: {"n", "r", "sigma2", "de0"}} ...}``:
        each spectrum's true values sit under its own name.
        """
        out = {"simulated": True, "generator": "xasmpi.demo.generate", "seed": self.seed,
               "samples": [n for n, s in self.spectra.items() if s.role == "sample"],
               "references": [n for n, s in self.spectra.items() if s.role == "reference"],
               "info": {n: s.info() for n, s in self.spectra.items()}}
        out.update({n: s.truth() for n, s in self.spectra.items()})
        return out

    @property
    def files(self) -> dict:
        """Spectrum name → XDI file path."""
        return {name: s.file for name, s in self.spectra.items()}


# ----------------------------------------------------------------------------- FEFF
def feff_input(structure: str) -> str:
    """FEFF6 input text (multiple scattering, ``NLEG 4``) for a Cd absorber in bulk CdS or CdO.

    Parameters
    ----------
    structure : {"CdS", "CdO"}
        Zinc-blende CdS (a = 5.818 Å) or rock-salt CdO (a = 4.695 Å).

    Returns
    -------
    str
        The ``feff.inp`` text (cluster radius 6 Å, ``RMAX`` :data:`FEFF_RMAX`).
    """
    from xasmpi.data.crystals import crystal
    from xasmpi.exafs import feff

    if structure not in FEFF_STRUCTURES:
        raise InputError(f"demo: unknown structure {structure!r} (use {', '.join(FEFF_STRUCTURES)})")
    atoms = crystal(FEFF_STRUCTURES[structure])
    absorber = atoms.get_chemical_symbols().index("Cd")
    text = feff.feff_input(atoms, absorber_index=absorber, radius=6.0, rmax_path=FEFF_RMAX[structure],
                           title=f"xasmpi demo (SIMULATED): bulk {FEFF_STRUCTURES[structure]}, Cd K edge")
    text, n = re.subn(r"(?m)^NLEG 2$", "NLEG 4", text)
    if n != 1:
        raise InputError("demo: xasmpi.exafs.feff.feff_input no longer writes one 'NLEG 2' line")
    return text


def run_feff(structure: str, folder: str | FilePath) -> list:
    """Run larch's ``feff6l`` (multiple scattering) for bulk CdS or CdO; return its paths.

    Parameters
    ----------
    structure : {"CdS", "CdO"}
    folder : path-like
        Where ``feff.inp`` and the outputs go (created, emptied first).

    Returns
    -------
    list of larch FeffPathGroup
        All paths, ``feff0001.dat`` first.

    Raises
    ------
    InputError
        FEFF produced no path.
    """
    from larch.xafs import feff6l

    folder = FilePath(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "feff.inp").write_text(feff_input(structure))
    feff6l(folder=str(folder), feffinp="feff.inp", verbose=False)
    return load_feff(folder)


def load_feff(folder: str | FilePath) -> list:
    """The paths (larch FeffPathGroup) of a finished FEFF run, ``feff0001.dat`` first.

    Raises
    ------
    InputError
        The folder holds no ``feffNNNN.dat``.
    """
    from larch.xafs import feffpath

    files = sorted(FilePath(folder).glob("feff[0-9][0-9][0-9][0-9].dat"))
    if not files:
        raise InputError(f"{folder}: no feffNNNN.dat (see feffrun_feff6l.log)")
    return [feffpath(str(f)) for f in files]


def _atoms(path) -> list[tuple[str, np.ndarray]]:
    """(element, position in Å) of a FEFF path's atoms, absorber first."""
    return [(str(g[0]), np.array([float(g[4]), float(g[5]), float(g[6])])) for g in path.geom]


def _match(shells: Sequence[Shell], dist: float, element: str | None = None) -> Shell | None:
    """The shell of bulk distance ``dist`` (Å; and ``element``, when given); else ``None``."""
    found = [s for s in shells if abs(s.r_bulk - dist) <= MATCH_TOL and (element is None or s.scatterer == element)]
    return found[0] if found else None


def path_parameters(path, shells: Sequence[Shell], bulk_n: Mapping[Shell, float],
                    de0: float) -> dict | None:
    """larch ``path2chi`` parameters of one FEFF path in a spectrum with these shells.

    Parameters
    ----------
    path : larch FeffPathGroup
    shells : sequence of Shell
        The spectrum's shells of this path's structure.
    bulk_n : mapping of Shell to float
        Each shell's coordination number in the bulk structure (summed FEFF degeneracy).
    de0 : float
        ΔE0 of the path, eV.

    Returns
    -------
    dict or None
        ``{"file", "nleg", "reff", "degen", "s02", "deltar", "sigma2", "e0", "shells"}``;
        ``None`` when an atom or leg of the path belongs to no shell of the spectrum.
    """
    atoms = _atoms(path)
    by_atom = []
    for el, pos in atoms[1:]:
        if not pos.any():  # the absorber visited again (e.g. Cd–O–Cd–O′): no occupancy factor
            continue
        sh = _match(shells, float(np.linalg.norm(pos)), el)
        if sh is None:
            return None
        by_atom.append(sh)
    nleg = len(atoms)
    if nleg == 2:  # single scattering: the shell's N, R and σ²
        sh = by_atom[0]
        s02, deltar, sigma2 = sh.n / bulk_n[sh], sh.r - float(path.reff), sh.sigma2
    else:
        # an atom of an outer shell is reached through a bridging atom of an inner one, which
        # exists when it does (the cluster is connected): the least occupied shell counts; the
        # atoms of one shell are independent sites: its occupancy to the power of their number
        s02 = float(min((sh.n / bulk_n[sh]) ** by_atom.count(sh) for sh in set(by_atom)))
        ring = atoms + [atoms[0]]
        deltar = sigma2 = 0.0
        for (ea, pa), (eb, pb) in zip(ring[:-1], ring[1:]):
            length = float(np.linalg.norm(pb - pa))
            if not pa.any() or not pb.any():  # a leg from the absorber: its atom's shell
                sh = _match(shells, length, eb if not pa.any() else ea)
            else:  # between two scatterers: the shell of that bond type and length, else of that length
                pair = {ea, eb}
                el = (pair - {"Cd"}).pop() if "Cd" in pair and len(pair) == 2 else ("Cd" if pair == {"Cd"} else None)
                sh = _match(shells, length, el) or _match(shells, length)
            if sh is None:
                return None
            deltar += (sh.r - sh.r_bulk) / 2.0   # half path length
            sigma2 += sh.sigma2 / 4.0            # independent legs
    return {"file": FilePath(path.filename).name, "nleg": nleg, "reff": float(path.reff),
            "degen": float(path.degen), "s02": float(s02), "deltar": float(deltar),
            "sigma2": float(sigma2), "e0": float(de0), "shells": [s.path for s in by_atom]}


def spectrum_chi(feff: Mapping[str, Sequence], shells: Sequence[Shell], k: np.ndarray, *,
                 de0: Mapping[str, float] | None = None,
                 ms: Sequence[str] | None = None) -> tuple[np.ndarray, list[dict]]:
    """χ(k) of a spectrum with these shells: Σ larch ``path2chi`` over its FEFF paths.

    Parameters
    ----------
    feff : mapping of structure name to list of FeffPathGroup
        :func:`run_feff` output per structure (``"CdS"``, ``"CdO"``).
    shells : sequence of Shell
        The spectrum's shells (N, R in Å, σ² in Å²); S0² = 1.
    k : ndarray
        Wavenumbers, Å⁻¹ (values ≤ 0 give χ = 0).
    de0 : mapping of structure name to float
        ΔE0 (eV, larch ``e0``) of that structure's paths (default 0).
    ms : sequence of str or None
        Structures whose multiple-scattering paths are included (``None``: all).

    Returns
    -------
    (ndarray, list of dict)
        χ(k) (dimensionless, no turn-on) and the parameters of every path used
        (:func:`path_parameters`, plus ``"structure"``).
    """
    from larch.xafs import path2chi

    de0 = dict(de0 or {})
    k = np.asarray(k, dtype=float)
    out = np.zeros_like(k)
    pos = k > 0
    used: list[dict] = []
    if not pos.any():
        return out, used
    # larch overwrites chi[0] by a linear extrapolation: prepend a sacrificial point
    kk = np.concatenate([[0.5 * k[pos].min()], k[pos]])
    for structure in sorted({s.structure for s in shells}):
        mine = [s for s in shells if s.structure == structure]
        paths = feff[structure]
        bulk_n = {}
        for s in mine:
            ss = [p for p in paths if int(p.nleg) == 2 and abs(float(p.reff) - s.r_bulk) <= MATCH_TOL
                  and _atoms(p)[1][0] == s.scatterer]
            if not ss:
                raise InputError(f"demo: no FEFF single-scattering path for shell {s.path} "
                                 f"({s.scatterer} at {s.r_bulk} Å in {structure})")
            bulk_n[s] = float(sum(float(p.degen) for p in ss))
        for p in paths:
            if ms is not None and structure not in ms and int(p.nleg) > 2:
                continue
            par = path_parameters(p, mine, bulk_n, de0.get(structure, 0.0))
            if par is None:
                continue
            # path2chi takes the amplitude as degen · s02 (a ``degen`` keyword is ignored)
            path2chi(p, k=kk, s02=par["s02"], e0=par["e0"], deltar=par["deltar"], sigma2=par["sigma2"])
            out[pos] += np.asarray(p.chi, dtype=float)[1:]
            used.append({"structure": structure, **par})
    return out, used


# ----------------------------------------------------------------------------- μ(E)
def energy_grid(*, e0: float = E0, kmax: float = KMAX) -> np.ndarray:
    """Realistic scan grid, eV.

    Pre-edge 26450–26690 eV in 5 eV steps (shifted with ``e0``), XANES E0 − 20 … E0 + 30 eV
    in 0.5 eV steps, then constant k steps of 0.05 Å⁻¹ up to ``kmax`` (Å⁻¹).
    """
    pre = e0 + np.arange(-261.0, -21.0 + 1e-9, 5.0)
    xanes = e0 + np.arange(-20.0, 30.0 + 1e-9, 0.5)
    k0 = np.sqrt(ETOK * 30.0)
    kk = np.arange(np.floor(k0 / KSTEP) + 1, np.round(kmax / KSTEP) + 1) * KSTEP
    return np.concatenate([pre, xanes, e0 + kk ** 2 / ETOK])


def turn_on(k: np.ndarray) -> np.ndarray:
    """Smooth turn-on of χ near the edge: 0 below 0.3 Å⁻¹, 1 above 1.8 Å⁻¹ (cosine)."""
    x = np.clip((np.asarray(k, dtype=float) - 0.3) / 1.5, 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(np.pi * x))


def mu_from_chi(energy: np.ndarray, chi_of_k, *, e0: float = E0, edge_step: float = 1.0,
                pre_edge: tuple[float, float] = (0.3, -5e-5), width: float | None = None,
                victoreen: float = VICTOREEN) -> np.ndarray:
    """Noise-free absorbance from χ(k) (see the module docstring for the formula).

    Parameters
    ----------
    energy : ndarray
        Energies, eV.
    chi_of_k : callable
        χ as a function of k (Å⁻¹), turn-on included; called on k > 0 only.
    e0 : float
        Edge energy, eV.
    edge_step : float
        J, absorbance units.
    pre_edge : (float, float)
        Pre-edge line c0 (absorbance) and c1 (absorbance per eV), about E0.
    width : float
        Γ of the arctan step, eV.
    victoreen : float
        Exponent of the post-edge decay (E/E0)^-victoreen.

    Returns
    -------
    ndarray
        μ(E), absorbance units.
    """
    e = np.asarray(energy, dtype=float)
    width = EDGE_WIDTH if width is None else width
    step = 0.5 + np.arctan((e - e0) / (width / 2.0)) / np.pi
    decay = (e / e0) ** (-victoreen)
    chi = np.zeros_like(e)
    above = e > e0
    chi[above] = chi_of_k(np.sqrt(ETOK * (e[above] - e0)))
    return pre_edge[0] + pre_edge[1] * (e - e0) + edge_step * (step * decay + chi)


# ----------------------------------------------------------------------------- files
TRUTH_FIELD = "Xasmpi.truth"
INFO_FIELD = "Xasmpi.simulation"


def write_xdi(path: str | FilePath, energy: np.ndarray, mu: np.ndarray, *, name: str,
              truth: dict, info: dict, comment: str, simulated: bool = True) -> None:
    """Write a simulated μ(E) (or a mixture of measured ones) as an XDI 1.0 file, columns ``energy mu``.

    Parameters
    ----------
    path : path-like
    energy, mu : ndarray
        eV and absorbance.
    name : str
        Sample name (``Sample.name``).
    truth : dict
        JSON-able true values, stored in the ``# Xasmpi.truth:`` field.
    info : dict
        JSON-able description of the simulation, in the ``# Xasmpi.simulation:`` field.
    comment : str
        One line after ``# SIMULATED by xasmpi`` in the comment block.
    simulated : bool
        ``False`` for a mixture of measured spectra (:func:`xasmpi.testing.write_mixture`): the
        header says ``MIXTURE of measured spectra`` instead of ``SIMULATED``.
    """
    from xasmpi import __version__

    what = "SIMULATED" if simulated else "mixture of measured spectra"
    head = [
        "# XDI/1.0 xasmpi-demo/1",
        "# Column.1: energy eV",
        "# Column.2: mu",
        "# Element.symbol: Cd",
        "# Element.edge: K",
        f"# Mono.name: {'Si(311) (simulated)' if simulated else 'Si(220) (source scans)'}",
        f"# Sample.name: {name} ({what})",
        f"# Facility.name: {'none (simulated data)' if simulated else 'SSRL (source scans)'}",
        f"# Beamline.name: {'none (simulated data)' if simulated else '4-3 (source scans)'}",
        f"# Xasmpi.simulated: {'true' if simulated else 'false'}",
        f"# Xasmpi.version: {__version__}",
        f"# {TRUTH_FIELD}: {json.dumps(truth, sort_keys=True)}",
        f"# {INFO_FIELD}: {json.dumps(info, sort_keys=True)}",
        "# ///",
        (f"# SIMULATED by xasmpi {__version__} (xasmpi.demo.generate): not measured data." if simulated else
         f"# MIXTURE by xasmpi {__version__} (xasmpi.testing.write_mixture) of measured spectra: "
         "not a measured sample."),
        f"# {comment}",
        "#----",
        "# energy mu",
    ]
    body = [f"{e:.4f} {m:.8f}" for e, m in zip(energy, mu)]
    FilePath(path).write_text("\n".join(head + body) + "\n")


def read_truth(path: str | FilePath) -> dict | None:
    """True values stored in a simulated spectrum's header, or ``None`` for other files.

    Parameters
    ----------
    path : path-like
        An XDI file written by :func:`generate` (any text file is accepted).

    Returns
    -------
    dict or None
        The JSON of the ``# Xasmpi.truth:`` field, ``{path: {"n", "r", "sigma2"}}`` (see
        :meth:`DemoSpectrum.truth`).
    """
    prefix = f"# {TRUTH_FIELD}:"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                if line.startswith(prefix):
                    return json.loads(line[len(prefix):])
    except (OSError, json.JSONDecodeError):
        return None
    return None


def _describe(shells: Sequence[Shell], de0: Mapping[str, float]) -> str:
    return ("true values (S0^2=1): " + ", ".join(
        f"{s.path} N={s.n:g} R={s.r:g} A sigma2={s.sigma2:g} A^2 dE0={de0.get(s.structure, 0.0):g} eV"
        for s in shells))


# ----------------------------------------------------------------------------- main entry
def generate(out_dir: str | FilePath, *, seed: int = DEFAULT_SEED,
             samples: Mapping[str, Sequence[Shell]] | None = None,
             sample_de0: Mapping[str, Mapping[str, float]] | None = None,
             noise: Mapping[str, float] | None = None, feff_dir: str | FilePath | None = None) -> DemoData:
    """Write the simulated spectra (FEFF paths through larch ``path2chi``) into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Folder (created).  Gets ``CdS_ref.xdi``, ``CdO_ref.xdi``, one ``<sample>.xdi`` per
        sample, ``truth.json`` and (unless ``feff_dir``) ``feff/{CdS,CdO}/``.
    seed : int
        Seed of the noise (``numpy.random.SeedSequence(seed)``, one child per spectrum in
        the order CdS_ref, CdO_ref, then the samples): the same seed gives identical files.
    samples : mapping of str to sequence of Shell
        Sample name → its shells (default :data:`SAMPLE_SHELLS`: ``MSC_sim`` and its isomer ``MSC_iso``).
    sample_de0 : mapping of str to mapping of str to float
        Sample name → ΔE0 (eV) of its CdS and CdO paths (default :data:`SAMPLE_DE0`, 0 for
        samples not there).
    noise : mapping of str to float
        Spectrum name → σ of the Gaussian noise in units of its edge step, ≈ the noise in
        χ(k) (dimensionless, ≥ 0).  Missing names get :data:`NOISE` (the larch
        ``estimate_noise`` level of the real scans; samples: that of CdS_10K_01).
    feff_dir : path-like
        Reuse the FEFF runs in ``feff_dir/{CdS,CdO}`` (written by an earlier call) instead of
        running FEFF again.

    Returns
    -------
    DemoData

    Raises
    ------
    InputError
        Negative noise, a reserved sample name, or FEFF failed.
    """
    samples = dict(SAMPLE_SHELLS if samples is None else samples)
    sample_de0 = dict(SAMPLE_DE0 if sample_de0 is None else sample_de0)
    noise = dict(noise or {})
    for name in samples:
        if name in REFERENCE_SHELLS:
            raise InputError(f"demo: sample name {name!r} is a reference's name")
    order = [(n, "reference", REFERENCE_SHELLS[n]) for n in REFERENCE_SHELLS]
    order += [(n, "sample", tuple(sh)) for n, sh in samples.items()]
    sigma = {n: float(noise.get(n, NOISE.get(n, NOISE["MSC_sim"]))) for n, _, _ in order}
    bad = {n: v for n, v in sigma.items() if not v >= 0}
    if bad:
        raise InputError(f"demo: noise must be >= 0 (got {bad})")
    out = FilePath(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if feff_dir is not None:
        feff_dirs = {s: FilePath(feff_dir) / s for s in FEFF_STRUCTURES}
        feff = {s: load_feff(d) for s, d in feff_dirs.items()}
    else:
        feff_dirs = {s: out / "feff" / s for s in FEFF_STRUCTURES}
        feff = {s: run_feff(s, d) for s, d in feff_dirs.items()}

    kgrid = np.arange(int(round(KMAX / KSTEP)) + 1) * KSTEP
    rngs = [np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(len(order))]
    specs: dict[str, DemoSpectrum] = {}
    for (name, role, shells), rng in zip(order, rngs):
        de0 = {s: float(v) for s, v in sample_de0.get(name, {}).items()} if role == "sample" else {}
        e0 = EDGES.get(name, E0)
        ms = SAMPLE_MS if role == "sample" else None
        chi, used = spectrum_chi(feff, shells, kgrid, de0=de0, ms=ms)
        chi = chi * turn_on(kgrid)
        jump = EDGE_STEPS.get(name, EDGE_STEPS["MSC_sim"])
        energy = energy_grid(e0=e0)
        mu = mu_from_chi(energy, lambda k: spectrum_chi(feff, shells, k, de0=de0, ms=ms)[0] * turn_on(k), e0=e0,
                         edge_step=jump,
                         pre_edge=PRE_EDGE.get(name, PRE_EDGE["MSC_sim"]))
        mu = mu + rng.normal(0.0, sigma[name] * jump, size=mu.shape)
        spec = DemoSpectrum(name=name, role=role, file=str(out / f"{name}.xdi"), shells=tuple(shells),
                            de0=de0, paths=tuple(used), energy=energy, mu=mu, k=kgrid, chi=chi, e0=e0,
                            edge_step=jump, noise=sigma[name])
        what = "bulk reference" if role == "reference" else "MSC-like sample"
        write_xdi(spec.file, energy, mu, name=name, truth=spec.truth(), info=spec.info(),
                  comment=f"{what} from FEFF6 paths ({len(used)} with multiple scattering) through larch "
                          f"path2chi; {_describe(shells, de0)}; noise sigma={sigma[name]:g} x edge step; "
                          f"seed={seed}")
        specs[name] = spec
    data = DemoData(out_dir=str(out), seed=seed, spectra=specs, truth_file=str(out / "truth.json"),
                    feff_dirs={s: str(d) for s, d in feff_dirs.items()})
    FilePath(data.truth_file).write_text(json.dumps(data.truth, indent=2, sort_keys=True) + "\n")
    return data


# ----------------------------------------------------------------------------- job template
TEMPLATE = FilePath(__file__).with_name("demo.toml")


def render_job(path: str | FilePath, *, datadir: str | FilePath, output: str = "results.h5",
               seed: int = DEFAULT_SEED) -> FilePath:
    """Write the demo job file from the ``demo.toml`` template.

    Parameters
    ----------
    path : path-like
        Job file to write.
    datadir : path-like
        Folder of the files written by :func:`generate`; replaces ``{datadir}`` (absolute, or
        relative to the job file's folder).
    output : str
        Results file; replaces ``{output}`` (relative paths resolve against the job folder).
    seed : int
        Campaign seed; replaces the value of the ``[job]`` ``seed`` line.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    def esc(s: str) -> str:  # TOML basic-string escaping (JSON's is compatible)
        return json.dumps(str(s))[1:-1]

    text = TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("{datadir}", esc(datadir)).replace("{output}", esc(output))
    text, n = re.subn(r"(?m)^seed = \d+$", f"seed = {int(seed)}", text)
    if n != 1:
        raise InputError(f"{TEMPLATE}: expected one 'seed = <integer>' line, found {n}")
    p = FilePath(path)
    p.write_text(text, encoding="utf-8")
    return p
