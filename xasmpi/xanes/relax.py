"""Relax candidate clusters with an ASE calculator (default: the CHGNet universal potential).

Pure: ASE ``Atoms`` + any ASE calculator -> relaxed ``Atoms`` (no MPI, no HDF5).  A relaxation
saves its current frame every ``save_every`` optimiser steps to a checkpoint file (extended XYZ,
written atomically); :func:`relax` given an existing checkpoint restarts from its last frame, so a
killed relaxation loses at most ``save_every`` steps.  The optimiser's internal state (FIRE
velocities, BFGS Hessian) is not saved: a resumed run restarts the optimiser from that frame.

Calculators
-----------
``"chgnet"`` (default)
    CHGNet with its pretrained 0.3.0 weights (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)),
    which ship inside the ``chgnet`` wheel (offline).  Install: ``pip install torch==2.13.0 chgnet``
    (the ``relax`` extra; ``scripts/bootstrap.sh`` pins the CPU build of torch first).
``"sevennet"``
    SevenNet-0 (``pip install sevenn``), ``SevenNetCalculator("7net-0")``.
``"module.path:factory"``
    Any importable callable returning an ASE calculator (e.g. ``"ase.calculators.emt:EMT"``).

What the relaxation may do wrong is checked afterwards with
:func:`xasmpi.xanes.clusters.check_chemistry` (S-S, O-O, Cd-Cd contacts, under-coordinated atoms):
in a 141-atom O-capped CdS cut, CHGNet formed four surface S-S bonds of 2.08 Å.  ``freeze="core"``
keeps the core fixed (S and Cd without O neighbours) and relaxes only the O-capped surface;
``cap="H"`` relaxes with a hydroxide H on every O (bare O turned surface S into SO3/SO4 groups with
CHGNet; with the caps the InP-like model relaxes without a flagged contact) and drops the H after.
"""
from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from xasmpi.errors import ConfigError, InputError

CALCULATORS = ("chgnet", "sevennet")
OPTIMIZERS = ("fire", "bfgs")
FREEZE = ("none", "core")
CAPS = ("none", "H")
#: vacuum (Å) around a cluster in the periodic box handed to the calculator (> 2 x CHGNet's 5 Å cutoff)
VACUUM = 12.0


@dataclass(frozen=True)
class RelaxSettings:
    """Settings of one relaxation.

    Attributes
    ----------
    calculator : str
        ``"chgnet"``, ``"sevennet"`` or ``"module.path:factory"`` (see module docstring).
    fmax : float
        Convergence: largest force component norm (eV/Å), default 0.05.
    steps : int
        Most optimiser steps in all (resumed steps count), default 2000.
    optimizer : {"fire", "bfgs"}
        ASE optimiser, default FIRE.
    freeze : {"none", "core"}
        ``"core"`` fixes S and the Cd not bonded to O (Cd-O < 2.65 Å).
    save_every : int
        Checkpoint interval (steps), default 10.
    cap : {"none", "H"}
        ``"H"``: relax with one H on every O (hydroxide, a stand-in for the carboxylate the O
        belongs to; see :func:`cap_oxygen`), removed again from the final frame.  Bare terminal O
        are radicals to a universal potential (CHGNet oxidised surface S to SO3/SO4).
    """

    calculator: str = "chgnet"
    fmax: float = 0.05
    steps: int = 2000
    optimizer: str = "fire"
    freeze: str = "none"
    save_every: int = 10
    cap: str = "none"

    def __post_init__(self) -> None:
        if self.calculator not in CALCULATORS and ":" not in self.calculator:
            raise ConfigError(f"relax.calculator = {self.calculator!r}: choose {', '.join(CALCULATORS)} "
                              "or 'module.path:factory'")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"relax.optimizer = {self.optimizer!r}: choose {', '.join(OPTIMIZERS)}")
        if self.cap not in CAPS:
            raise ConfigError(f"relax.cap = {self.cap!r}: choose {', '.join(CAPS)}")
        if self.freeze not in FREEZE:
            raise ConfigError(f"relax.freeze = {self.freeze!r}: choose {', '.join(FREEZE)}")
        if not self.fmax > 0 or self.steps < 0 or self.save_every < 1:
            raise ConfigError("relax: need fmax > 0 eV/Å, steps >= 0 and save_every >= 1")


@dataclass(frozen=True)
class ModelInfo:
    """Which potential did the relaxation: ``name`` (e.g. ``"CHGNet"``), ``version`` (of the
    weights, e.g. ``"0.3.0"``) and ``package`` (``"chgnet 0.4.2"``)."""

    name: str
    version: str
    package: str

    def to_dict(self) -> dict:
        """Plain ``dict``."""
        return {"name": self.name, "version": self.version, "package": self.package}


@dataclass(frozen=True)
class RelaxResult:
    """A finished (or step-limited) relaxation.

    Attributes
    ----------
    initial, final : ase.Atoms
        First frame (the input) and last frame.
    steps : int
        Optimiser steps taken in all (including those before a resume).
    converged : bool
        Largest force norm below ``fmax`` at the end.
    fmax : float
        Largest force norm of the final frame (eV/Å; frozen atoms excluded).
    energy_initial, energy_final : float
        Potential energies (eV).
    resumed_from : int
        Step of the checkpoint the run started from (0 for a fresh start).
    elapsed : float
        Wall time of this call (s).
    model : ModelInfo
    """

    initial: Atoms = field(repr=False)
    final: Atoms = field(repr=False)
    steps: int
    converged: bool
    fmax: float
    energy_initial: float
    energy_final: float
    resumed_from: int
    elapsed: float
    model: ModelInfo


def make_calculator(spec: str = "chgnet"):
    """An ASE calculator and its :class:`ModelInfo` from a calculator spec.

    Raises
    ------
    ConfigError
        Unknown spec, package not installed, or the factory cannot be imported.
    """
    if spec == "chgnet":
        try:
            import chgnet
            from chgnet.model import CHGNet, CHGNetCalculator
        except ImportError as exc:
            raise ConfigError("relax.calculator = 'chgnet': the chgnet package is not installed "
                              "(pip install torch==2.13.0 chgnet, or scripts/bootstrap.sh)") from exc
        model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
        calc = CHGNetCalculator(model=model, use_device="cpu")
        return calc, ModelInfo("CHGNet", str(getattr(model, "version", "0.3.0")), f"chgnet {chgnet.__version__}")
    if spec == "sevennet":
        try:
            import sevenn
            from sevenn.calculator import SevenNetCalculator
        except ImportError as exc:
            raise ConfigError("relax.calculator = 'sevennet': the sevenn package is not installed") from exc
        return SevenNetCalculator("7net-0", device="cpu"), ModelInfo(
            "SevenNet", "7net-0", f"sevenn {getattr(sevenn, '__version__', '?')}")
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ConfigError(f"relax.calculator = {spec!r}: expected 'chgnet', 'sevennet' or 'module.path:factory'")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"relax.calculator = {spec!r}: cannot import ({exc})") from exc
    calc = factory()
    pkg = module.split(".")[0]
    try:
        ver = importlib.import_module(pkg).__version__
    except Exception:  # noqa: BLE001 - version is informative only
        ver = "?"
    return calc, ModelInfo(type(calc).__name__, spec, f"{pkg} {ver}")


def core_mask(atoms: Atoms, *, cd_o: float = 2.65) -> np.ndarray:
    """True for core atoms: S, and Cd with no O within ``cd_o`` Å (the paper's Fig. 4 'core')."""
    sym = np.array(atoms.get_chemical_symbols())
    mask = sym == "S"
    o = atoms.positions[sym == "O"]
    for k in np.nonzero(sym == "Cd")[0]:
        mask[k] = not (o.size and np.min(np.linalg.norm(o - atoms.positions[k], axis=1)) < cd_o)
    return mask


def cap_oxygen(atoms: Atoms, *, distance: float = 0.97, cd_o: float = 2.65) -> Atoms:
    """``atoms`` with one H added to every O, ``distance`` Å from it, pointing away from the mean
    of its Cd neighbours within ``cd_o`` Å (an O-H bond of a hydroxide is 0.97 Å).  The H are
    appended after the input atoms."""
    sym = np.array(atoms.get_chemical_symbols())
    pos = atoms.positions
    cd = pos[sym == "Cd"]
    hs = []
    for k in np.nonzero(sym == "O")[0]:
        near = cd[np.linalg.norm(cd - pos[k], axis=1) < cd_o] if cd.size else cd
        v = pos[k] - (near.mean(axis=0) if len(near) else pos.mean(axis=0))
        n = np.linalg.norm(v)
        hs.append(pos[k] + distance * (v / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])))
    out = atoms.copy()
    if hs:
        out.extend(Atoms(["H"] * len(hs), positions=np.array(hs)))
    return out


def _write_checkpoint(path: Path, atoms: Atoms, step: int, energy: float) -> None:
    """Write ``atoms`` (positions in the caller's frame) and its step atomically."""
    from ase.io import write

    frame = atoms.copy()
    frame.calc = None
    frame.set_constraint()
    frame.info.update({"step": int(step), "energy": float(energy)})
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp), frame, format="extxyz", parallel=False)  # never an MPI collective (ASE default)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_checkpoint(path: Path, atoms: Atoms) -> tuple[np.ndarray, int] | None:
    from ase.io import read

    try:
        frame = read(str(path), format="extxyz", parallel=False)
    except Exception:  # noqa: BLE001 - a torn or foreign file: start afresh
        return None
    if frame.get_chemical_symbols() != atoms.get_chemical_symbols():
        return None
    return frame.get_positions(), int(frame.info.get("step", 0))


def _unboxed(work: Atoms, like: Atoms, offset: np.ndarray, n: int | None = None) -> Atoms:
    """The frame of ``work`` in the frame (cell, pbc) of the input ``like`` (its first ``n`` atoms:
    the caps added by :func:`cap_oxygen` dropped)."""
    n = len(work) if n is None else n
    return Atoms(work.get_chemical_symbols()[:n], positions=work.get_positions()[:n] - offset,
                 cell=like.get_cell(), pbc=like.get_pbc())


def relax(atoms: Atoms, *, calculator=None, settings: RelaxSettings = RelaxSettings(),
          checkpoint: str | Path | None = None, model: ModelInfo | None = None) -> RelaxResult:
    """Relax ``atoms`` (positions only; cell fixed) and return the first and last frames.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (not modified).
    calculator : ASE calculator, optional
        Default: ``make_calculator(settings.calculator)``.
    settings : RelaxSettings
    checkpoint : str or Path, optional
        Frame file: read to resume (if it holds the same atoms), written every ``save_every``
        steps and at the end.
    model : ModelInfo, optional
        Description of ``calculator`` (made by :func:`make_calculator` when it builds it).

    Returns
    -------
    RelaxResult

    Raises
    ------
    InputError
        Empty structure.
    """
    from ase.constraints import FixAtoms
    from ase.optimize import BFGS, FIRE

    if len(atoms) == 0:
        raise InputError("relax: the structure has no atoms")
    t0 = time.monotonic()
    if calculator is None:
        calculator, model = make_calculator(settings.calculator)
    model = model or ModelInfo(type(calculator).__name__, "?", "?")
    initial = atoms.copy()
    initial.calc = None
    n_input = len(atoms)
    work = cap_oxygen(atoms) if settings.cap == "H" else atoms.copy()
    offset = np.zeros(3)
    if not work.pbc.any():  # a cluster: periodic box with VACUUM Å between images (CHGNet needs a cell)
        lo, hi = work.positions.min(axis=0), work.positions.max(axis=0)
        offset = VACUUM / 2 - lo
        work.positions += offset
        work.set_cell(np.diag(hi - lo + VACUUM))
        work.pbc = True
    work.calc = calculator
    if settings.freeze == "core":
        work.set_constraint(FixAtoms(mask=core_mask(work)))
    e_init = float(work.get_potential_energy())
    done = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.is_file():
        got = _read_checkpoint(ckpt, work)
        if got is not None:
            work.set_positions(got[0] + offset)
            done = got[1]
    resumed = done
    opt_cls = FIRE if settings.optimizer == "fire" else BFGS
    opt = opt_cls(work, logfile=None)

    def fmax_now() -> float:
        f = work.get_forces()  # constrained forces (frozen atoms are zero)
        return float(np.sqrt((f ** 2).sum(axis=1)).max()) if len(f) else 0.0

    while done < settings.steps and fmax_now() >= settings.fmax:
        n = min(settings.save_every, settings.steps - done)
        opt.run(fmax=settings.fmax, steps=n)
        done += max(int(opt.nsteps) - (getattr(opt, "_xasmpi_seen", 0)), 0)
        opt._xasmpi_seen = int(opt.nsteps)
        if ckpt is not None:
            _write_checkpoint(ckpt, _unboxed(work, atoms, offset), done, work.get_potential_energy())
    fmax = fmax_now()
    e_final = float(work.get_potential_energy())
    final = _unboxed(work, atoms, offset, n_input)
    if ckpt is not None:
        _write_checkpoint(ckpt, _unboxed(work, atoms, offset), done, e_final)
    return RelaxResult(initial=initial, final=final, steps=int(done), converged=fmax < settings.fmax,
                       fmax=fmax, energy_initial=e_init, energy_final=e_final, resumed_from=int(resumed),
                       elapsed=time.monotonic() - t0, model=model)


__all__ = ["ModelInfo", "RelaxResult", "RelaxSettings", "cap_oxygen", "core_mask", "make_calculator", "relax"]
