"""FDMNES: find the binary, write inputs, run one (candidate, absorber) task, parse outputs.

One FDMNES run is one task: :func:`write_input` turns a structure and an absorber index into
the text of an FDMNES input file, :func:`run_fdmnes` runs it in its own working directory and
returns an :class:`FdmnesResult`, whose :meth:`FdmnesResult.on_grid` puts the spectrum on the
fixed grid :meth:`FdmnesSettings.energy_grid` (for fixed-shape storage).

FDMNES reads ``fdmfile.txt`` in its working directory (first line: number of jobs, then one
input file name per job).  It writes ``<filout>.txt`` (raw absorption cross-section, first line
``values = E_edge, Z, ..., Epsii, ...``, second line column names), ``<filout>_conv.txt`` (the
convolved spectrum; with explicit convolution parameters FDMNES inserts them into the name, e.g.
``out_Gm15_GH7_conv.txt``) and ``<filout>_bav.txt`` (log).  Energies are in eV relative to the
Fermi level of the calculation; add :attr:`FdmnesResult.e_edge` (tabulated edge energy) for an
approximate absolute scale.  FDMNES exits with status 0 even on input errors: it then writes
``fdmnes_error.txt``, which is reported here as a failure.

Choosing the mode and radius
----------------------------
``green`` (multiple scattering, muffin-tin potential) is fast and adequate for close-packed
and tetrahedral solids; ``fdm`` (finite differences, no muffin-tin approximation, used in the
paper) is more accurate for open, low-symmetry clusters and surfaces but 10-100x slower.
The cluster radius sets which shells scatter: 3 Å covers the first Cd-S/Cd-O shell only (the
paper's "within 3 Å" LCF components), 4.5 Å adds the Cd-Cd shell (17 atoms in zinc blende,
~10 s in Green mode), 6-7 Å converges the near-edge shape of bulk references.  Cost grows
roughly as (atoms within the radius)³, see :func:`xasmpi.xanes.clusters.estimate_cost`.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from xasmpi.errors import ConfigError, ExternalProgramError, InputError
from xasmpi.external import run_program

log = logging.getLogger("xasmpi")

INPUT_NAME = "fdmnes_in.txt"
FILOUT = "xanes"
EDGES = ("K", "L1", "L2", "L3")
MODES = ("green", "fdm")
_TAIL = 800  # characters of stdout/stderr quoted in error messages
#: a spectrum whose range is below this fraction of its largest value has no edge (a failed run)
FEATURELESS = 1e-3


def find_fdmnes(configured: str | None = None) -> tuple[Path, str]:
    """Locate the FDMNES executable.

    Order: ``configured`` (the job file value), the ``XASMPI_FDMNES`` environment variable,
    ``fdmnes`` or ``fdmnes_linux64`` on ``PATH``, then ``<sys.prefix>/opt/fdmnes/fdmnes_linux64``
    (extracted by ``scripts/bootstrap.sh``).  An explicit value (job file or environment) that
    is not an executable file is an error rather than silently skipped.

    Parameters
    ----------
    configured : str, optional
        Path (or command name on ``PATH``) from the job file.

    Returns
    -------
    (Path, str)
        Absolute path of the executable and how it was found: ``"job file"``,
        ``"XASMPI_FDMNES"``, ``"PATH"`` or ``"installer"``.

    Raises
    ------
    ExternalProgramError
        Explicit value not executable, or no FDMNES found anywhere.
    """
    for value, how in ((configured, "job file"), (os.environ.get("XASMPI_FDMNES"), "XASMPI_FDMNES")):
        if value:
            found = shutil.which(str(Path(value).expanduser()))
            if not found:
                raise ExternalProgramError(f"FDMNES from {how}: {value} is not an executable file")
            return Path(found).resolve(), how
    for name in ("fdmnes", "fdmnes_linux64"):
        found = shutil.which(name)
        if found:
            return Path(found).resolve(), "PATH"
    bundled = Path(sys.prefix) / "opt" / "fdmnes" / "fdmnes_linux64"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled, "installer"
    raise ExternalProgramError(
        "FDMNES not found: set it in the job file, or XASMPI_FDMNES, or put fdmnes on PATH, "
        f"or run scripts/bootstrap.sh (installs {bundled})")


@dataclass(frozen=True)
class FdmnesSettings:
    """Settings of one FDMNES XANES calculation.

    Attributes
    ----------
    edge : {"K", "L1", "L2", "L3"}
        Absorption edge (default ``"K"``).
    mode : {"green", "fdm"}
        Multiple-scattering Green-function (muffin-tin; fast) or finite-difference method
        (full potential; slow).  Default ``"green"``.
    radius : float
        Cluster radius around the absorber (Å), default 4.5.
    e_min, e_max, e_step : float
        Energy grid (eV, relative to the Fermi level), default -20 to 100 eV by 1 eV.
    scf : bool
        Self-consistent potential (slower; shifts the edge position, improves pre-edge).
        Default False.
    convolution : bool
        Let FDMNES convolve the raw cross-section with its energy-dependent Lorentzian
        (core-hole width + arctangent final-state broadening, Seah-Dench-like).  Default True.
    gamma_hole : float, optional
        Core-hole width (eV, FWHM); None keeps FDMNES's tabulated value (about 7.3 eV at the
        Cd K edge).
    gamma_max : float, optional
        High-energy limit of the final-state broadening (eV); None keeps FDMNES's 15 eV.
    ecent, elarg : float, optional
        Centre and width (eV) of the arctangent broadening; None keeps FDMNES's 30 and 30 eV.
    gaussian : float, optional
        Extra Gaussian width (eV) for the experimental resolution; None for none.
    timeout : float
        Wall-time limit of one run (s), default 3600.
    """

    edge: str = "K"
    mode: str = "green"
    radius: float = 4.5
    e_min: float = -20.0
    e_max: float = 100.0
    e_step: float = 1.0
    scf: bool = False
    convolution: bool = True
    gamma_hole: float | None = None
    gamma_max: float | None = None
    ecent: float | None = None
    elarg: float | None = None
    gaussian: float | None = None
    timeout: float = 3600.0

    def __post_init__(self) -> None:
        if self.edge not in EDGES:
            raise ConfigError(f"fdmnes.edge = {self.edge!r}: choose one of {', '.join(EDGES)}")
        if self.mode not in MODES:
            raise ConfigError(f"fdmnes.mode = {self.mode!r}: choose 'green' or 'fdm'")
        if not 1.0 <= self.radius <= 15.0:
            raise ConfigError(f"fdmnes.radius = {self.radius}: must be between 1 and 15 Å")
        if not (self.e_step > 0 and self.e_max > self.e_min + self.e_step):
            raise ConfigError(f"fdmnes energy range {self.e_min}..{self.e_max} step {self.e_step}:"
                              " need e_step > 0 and e_max > e_min + e_step")
        for name in ("gamma_hole", "gamma_max", "elarg", "gaussian"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ConfigError(f"fdmnes.{name} = {v}: must be >= 0 eV")
        if self.timeout <= 0:
            raise ConfigError(f"fdmnes.timeout = {self.timeout}: must be > 0 s")

    def energy_grid(self) -> np.ndarray:
        """The fixed energy grid (eV, relative to the Fermi level) of :meth:`FdmnesResult.on_grid`."""
        n = int(np.floor((self.e_max - self.e_min) / self.e_step + 1e-9)) + 1
        return self.e_min + self.e_step * np.arange(n)

    def to_dict(self) -> dict:
        """Plain ``dict`` of the settings (for provenance)."""
        return asdict(self)


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if x != 0 else "0"


def write_input(atoms: Atoms, absorber_index: int, settings: FdmnesSettings, *,
                title: str = "") -> str:
    """Text of an FDMNES input file for one absorber.

    Periodic structures (``atoms.pbc`` all True) are written as a ``Crystal`` block (cell
    parameters in Å and degrees, fractional coordinates; FDMNES then averages over the
    symmetry-equivalent absorbers of the site); others as a ``Molecule`` block (Cartesian Å).

    Parameters
    ----------
    atoms : ase.Atoms
        Structure.
    absorber_index : int
        0-based index of the absorbing atom (written 1-based for FDMNES ``Absorber``).
    settings : FdmnesSettings
        Calculation settings.
    title : str
        Comment written at the top of the file.

    Returns
    -------
    str
        Input file text; its ``Filout`` is ``xanes``.

    Raises
    ------
    InputError
        Empty structure, bad absorber index, or partially periodic structure.
    """
    n = len(atoms)
    if n == 0:
        raise InputError("FDMNES input: the structure has no atoms")
    if not 0 <= absorber_index < n:
        raise InputError(f"FDMNES input: absorber index {absorber_index} outside 0..{n - 1}")
    pbc = atoms.pbc
    if pbc.any() and not pbc.all():
        raise InputError("FDMNES input: structure is periodic along some axes only")
    s = settings
    lines = [f"! {title}".rstrip() if title else "! xasmpi", "", "Filout", FILOUT, "",
             "Range", f"{_fmt(s.e_min)} {_fmt(s.e_step)} {_fmt(s.e_max)}", "",
             "Radius", _fmt(s.radius), "", "Edge", s.edge, ""]
    if s.mode == "green":
        lines += ["Green", ""]
    if s.scf:
        lines += ["SCF", ""]
    lines += ["Absorber", str(absorber_index + 1), ""]
    z = atoms.get_atomic_numbers()
    if pbc.all():
        lines += ["Crystal", " ".join(_fmt(v) for v in atoms.cell.cellpar())]
        coords = atoms.get_scaled_positions(wrap=True)
    else:
        lines += ["Molecule", "1 1 1 90 90 90"]
        coords = atoms.positions
    lines += [f"{zi:3d} {x:12.6f} {y:12.6f} {w:12.6f}" for zi, (x, y, w) in zip(z, coords)]
    lines.append("")
    if s.convolution:
        lines += ["Convolution", ""]
        for key, v in (("Gamma_hole", s.gamma_hole), ("Gamma_max", s.gamma_max),
                       ("Ecent", s.ecent), ("Elarg", s.elarg), ("Gaussian", s.gaussian)):
            if v is not None:
                lines += [key, _fmt(v), ""]
    lines.append("End")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FdmnesResult:
    """Parsed output of one FDMNES run.

    Attributes
    ----------
    energy : ndarray
        Energies (eV, relative to the Fermi level) of ``mu``.
    mu : ndarray
        Convolved spectrum when a ``_conv.txt`` exists, else the raw cross-section (Mbarn).
    raw_energy, raw_mu : ndarray
        Unconvolved output ``<filout>.txt``.
    convolved : bool
        Whether ``mu`` is FDMNES's convolution.
    e_edge : float
        Tabulated edge energy (eV) from the output header (absolute ~ ``energy + e_edge``).
    epsii : float
        Initial core-level energy (eV) from the header; differences between calculations
        approximate chemical shifts.
    elapsed : float
        Wall time of the run (s).
    stdout_tail : str
        Last lines of FDMNES's standard output.
    """

    energy: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    raw_energy: np.ndarray = field(repr=False)
    raw_mu: np.ndarray = field(repr=False)
    convolved: bool
    e_edge: float
    epsii: float
    elapsed: float
    stdout_tail: str = field(repr=False)

    def on_grid(self, grid: np.ndarray) -> np.ndarray:
        """``mu`` linearly interpolated on ``grid`` (eV, relative; e.g.
        :meth:`FdmnesSettings.energy_grid`).  Grid points outside the computed range (beyond
        half a step) raise :class:`ExternalProgramError`."""
        grid = np.asarray(grid, float)
        step = np.min(np.diff(self.energy)) if self.energy.size > 1 else 0.0
        if grid.min() < self.energy[0] - step / 2 or grid.max() > self.energy[-1] + step / 2:
            raise ExternalProgramError(
                f"FDMNES output covers {self.energy[0]:g}..{self.energy[-1]:g} eV, "
                f"not the requested grid {grid.min():g}..{grid.max():g} eV")
        return np.interp(grid, self.energy, self.mu)


def _tail(text: str) -> str:
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text[-_TAIL:]


def _read_table(path: Path, skip: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [r.split() for r in path.read_text(errors="replace").splitlines()[skip:] if r.strip()]
    short = [k + skip + 1 for k, r in enumerate(rows) if len(r) < 2]
    if short:
        raise ExternalProgramError(f"{path}: truncated FDMNES output (line {short[0]} incomplete)")
    try:
        data = np.array([[float(v) for v in r[:2]] for r in rows], float)
    except ValueError as exc:
        raise ExternalProgramError(f"{path}: garbage in FDMNES output ({exc})") from None
    if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] != 2 or not np.all(np.isfinite(data)):
        raise ExternalProgramError(f"{path}: FDMNES output has no usable two-column data")
    if np.any(np.diff(data[:, 0]) <= 0):
        raise ExternalProgramError(f"{path}: FDMNES output energies are not increasing")
    return data[:, 0], data[:, 1]


def _header_values(path: Path) -> dict:
    first = path.read_text(errors="replace").split("\n", 1)[0]
    if "=" not in first:
        raise ExternalProgramError(f"{path}: FDMNES output header line missing")
    values, names = first.split("=", 1)
    names = [w.strip() for w in names.split(",")]
    try:
        nums = [float(v) for v in values.split()]
    except ValueError:
        raise ExternalProgramError(f"{path}: FDMNES output header is garbage") from None
    return dict(zip(names, nums))


def _expected_range(input_text: str) -> tuple[float, float] | None:
    m = re.search(r"^\s*Range\s*\n\s*([^\n]+)", input_text, re.IGNORECASE | re.MULTILINE)
    try:
        vals = [float(v) for v in m.group(1).split()] if m else []
    except ValueError:
        return None
    return (vals[0], vals[-1]) if len(vals) >= 3 else None


def _without_symmetry(input_text: str) -> str | None:
    """The input with ``Point_group 1`` (no symmetry) before its ``Molecule``/``Crystal`` block,
    or None when it already sets a point group or has no such block."""
    if re.search(r"^\s*Point_group\s*$", input_text, re.IGNORECASE | re.MULTILINE):
        return None
    new, n = re.subn(r"^(\s*(?:Molecule|Crystal)\s*)$", r"Point_group\n 1\n\n\1", input_text, count=1,
                     flags=re.IGNORECASE | re.MULTILINE)
    return new if n else None


def run_fdmnes(input_text: str, workdir: str | Path, *, binary: str | Path,
               timeout: float = 3600.0) -> FdmnesResult:
    """Run FDMNES on one input in ``workdir`` and parse its spectrum.

    Writes ``fdmnes_in.txt`` and ``fdmfile.txt`` in ``workdir`` (created if needed), runs
    ``binary`` there in its own process group with stdout/stderr captured to
    ``fdmnes.stdout``/``fdmnes.stderr``, and parses ``<filout>.txt`` and ``<filout>*_conv.txt``.

    Parameters
    ----------
    input_text : str
        FDMNES input (e.g. from :func:`write_input`); its ``Filout`` names the outputs.
    workdir : str or Path
        Working directory of this task (one per task).
    binary : str or Path
        FDMNES executable (see :func:`find_fdmnes`).
    timeout : float
        Wall-time limit (s); on expiry the whole process group is killed.

    Returns
    -------
    FdmnesResult

    Raises
    ------
    ExternalProgramError
        Binary cannot start, non-zero exit, timeout, ``fdmnes_error.txt`` written, missing,
        empty, garbage or truncated output.  The message quotes the stderr/stdout tail.

    Notes
    -----
    When FDMNES stops with "Point group not found" (a nearly symmetric geometry whose operations
    within its tolerance form no group), the input is rerun once with ``Point_group 1`` (no
    symmetry); ``fdmnes_in.txt`` then holds that input.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / INPUT_NAME).write_text(input_text)
    (workdir / "fdmfile.txt").write_text(f"1\n{INPUT_NAME}\n")
    m = re.search(r"^\s*Filout\s*\n\s*(\S+)", input_text, re.IGNORECASE | re.MULTILINE)
    filout = m.group(1) if m else "fdmnes_out"
    for old in list(workdir.glob(f"{filout}*.txt")) + [workdir / "fdmnes_error.txt"]:
        old.unlink(missing_ok=True)  # never parse a previous attempt's output
    where = f"FDMNES {binary} in {workdir}"
    t0 = time.monotonic()
    proc = run_program([str(binary)], timeout=timeout, cwd=workdir, name=f"FDMNES {binary}",
                       stdout=workdir / "fdmnes.stdout", stderr=workdir / "fdmnes.stderr")
    elapsed = time.monotonic() - t0
    stdout = proc.stdout
    tail = _tail(proc.stderr) or _tail(stdout)
    error_file = workdir / "fdmnes_error.txt"
    if error_file.is_file():
        err = error_file.read_text(errors="replace")
        # a nearly symmetric cluster (e.g. after relaxation) can give FDMNES a set of operations
        # that is no group; without symmetry (point group 1) the calculation is the same, slower
        plain = _without_symmetry(input_text)
        if "Point group not found" in err and plain is not None:
            log.warning("%s: FDMNES found no point group for this geometry; "
                                                "rerunning without symmetry (Point_group 1)", where)
            return run_fdmnes(plain, workdir, binary=binary, timeout=timeout)
        raise ExternalProgramError(f"{where}: FDMNES reported an input error: {_tail(err)}")
    raw_file = workdir / f"{filout}.txt"
    if not raw_file.is_file() or raw_file.stat().st_size == 0:
        raise ExternalProgramError(f"{where}: no output {raw_file.name}; tail: {tail}")
    header = _header_values(raw_file)
    raw_e, raw_mu = _read_table(raw_file, skip=2)
    conv_files = sorted(workdir.glob(f"{filout}*_conv.txt"))
    if conv_files:
        energy, mu = _read_table(conv_files[0], skip=1)
    else:
        energy, mu = raw_e, raw_mu
    expected = _expected_range(input_text)
    if expected is not None:
        step = np.min(np.diff(raw_e))
        if raw_e[0] > expected[0] + step or raw_e[-1] < expected[1] - step:
            raise ExternalProgramError(
                f"{where}: truncated output {raw_file.name}: {raw_e[0]:g}..{raw_e[-1]:g} eV, "
                f"input asked {expected[0]:g}..{expected[1]:g} eV; tail: {tail}")
    if energy[-1] < raw_e[-1] - np.min(np.diff(energy)):
        raise ExternalProgramError(f"{where}: truncated convolution output {conv_files[0].name}")
    scale = float(np.max(np.abs(mu)))
    if scale == 0.0 or float(np.ptp(mu)) < FEATURELESS * scale:
        raise ExternalProgramError(f"{where}: featureless spectrum in {(conv_files or [raw_file])[0].name} "
                                   f"(range {np.ptp(mu):.3g} for values up to {scale:.3g}): no edge was "
                                   f"computed; tail: {tail}")
    return FdmnesResult(energy=energy, mu=mu, raw_energy=raw_e, raw_mu=raw_mu,
                        convolved=bool(conv_files), e_edge=header.get("E_edge", float("nan")),
                        epsii=header.get("Epsii", float("nan")), elapsed=elapsed,
                        stdout_tail=_tail(stdout))


def smoke_test(binary: str | Path, *, timeout: float = 60.0) -> float:
    """Run a tiny FDMNES calculation (Cd-S dimer, Green, 3 energies; ~0.2 s) in a temp dir.

    Parameters
    ----------
    binary : str or Path
        FDMNES executable.
    timeout : float
        Wall-time limit (s).

    Returns
    -------
    float
        Elapsed wall time (s).

    Raises
    ------
    ExternalProgramError
        Naming ``binary``, if the run fails or its output is unusable.
    """
    dimer = Atoms("CdS", positions=[(0, 0, 0), (2.52, 0, 0)])
    text = write_input(dimer, 0, FdmnesSettings(radius=3.0, e_min=-5.0, e_max=10.0, e_step=5.0),
                       title="xasmpi smoke test")
    with tempfile.TemporaryDirectory(prefix="xasmpi-fdmnes-smoke-") as tmp:
        try:
            res = run_fdmnes(text, tmp, binary=binary, timeout=timeout)
        except ExternalProgramError as exc:
            raise ExternalProgramError(f"FDMNES smoke test failed for {binary}: {exc}") from exc
    if res.energy.size != 4 or not np.all(res.mu > 0):
        raise ExternalProgramError(f"FDMNES smoke test for {binary}: unexpected spectrum "
                                   f"({res.energy.size} points)")
    return res.elapsed


__all__ = ["FdmnesResult", "FdmnesSettings", "find_fdmnes", "run_fdmnes", "smoke_test",
           "write_input"]
