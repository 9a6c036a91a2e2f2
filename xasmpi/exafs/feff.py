"""FEFF paths ("Artemis route"): feff.inp from ASE structures, larch's feff6l/feff8l, Paths from feffNNNN.dat.

The single-scattering paths of the requested shells are turned into :class:`~xasmpi.exafs.paths.Path`
objects through larch's own path calculation (``feffpath`` + ``path2chi``), so that at the
shell's (N, R, σ²_ref) ``Path.chi`` equals larch's χ(k) to rounding:

    larch:  χ = Im[ N · Z(k) e^{2ikR} ] / (k R²),   Z = A_feff e^{−2R/λ} e^{−2p²σ²} e^{i(δ_feff − 4pσ²/R)}

    Path:   F(k) = |Z| · exp(2 σ²_ref k²),  δ(k) = arg Z   (unwrapped)

so F is FEFF's effective amplitude (|f_eff|·reduction factor·e^{−2R/λ}, per atom, S0² = 1) and δ
the total phase shift.  Each path also carries FEFF's mean free path λ(k) and real momentum
p′(k) (``Path.lam``, ``Path.preal``), so that away from (R_ref, σ²_ref, ΔE0 = 0) the one path
kernel (:func:`xasmpi.exafs.kernel.path_chi`) follows larch's complex-momentum equation: the
model reproduces ``path2chi`` to < 1 % of the path amplitude for ΔR in ±0.2 Å and Δσ² in
−0.003…+0.01 Å² (tests/unit/test_path_transfer.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path as FilePath

import numpy as np
from ase import Atoms

# the FEFF structures by name: the one crystal table (with citations) and its builder
from xasmpi.data.crystals import CRYSTALS, crystal  # noqa: F401
from xasmpi.errors import ConfigError, ExternalProgramError, InputError
from xasmpi.exafs.paths import Path, kgrid

def cluster(atoms: Atoms, *, absorber_index: int, radius: float) -> Atoms:
    """Atoms within ``radius`` (Å) of the absorber, absorber first and at the origin.

    Periodic ``atoms`` are repeated as needed; non-periodic ones are cut as they are.
    """
    if not 0 <= absorber_index < len(atoms):
        raise InputError(f"structure: absorber_index {absorber_index} out of range (0-{len(atoms) - 1})")
    centre = atoms.positions[absorber_index]
    if atoms.pbc.any():
        cell = atoms.cell
        # repeats so that a sphere of radius `radius` around any cell point fits
        heights = cell.volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        reps = [2 * math.ceil(radius / h) + 1 if p else 1 for h, p in zip(heights, atoms.pbc)]
        big = atoms.repeat(reps)
        shift = sum(cell[i] * (reps[i] // 2) for i in range(3))
        pos = big.positions - (centre + shift)
        symbols = big.get_chemical_symbols()
    else:
        pos = atoms.positions - centre
        symbols = atoms.get_chemical_symbols()
    dist = np.linalg.norm(pos, axis=1)
    keep = np.flatnonzero(dist <= radius + 1e-9)
    keep = keep[np.argsort(dist[keep], kind="stable")]
    return Atoms([symbols[i] for i in keep], positions=pos[keep])


def feff_input(atoms: Atoms, *, absorber_index: int, radius: float, rmax_path: float,
               title: str = "xasmpi", edge: str = "K", version: int = 6, nleg: int = 2) -> str:
    """Text of a feff.inp: paths of up to ``nleg`` legs (2: single scattering) up to half path
    length ``rmax_path`` (Å).

    Potentials: 0 = absorber, then one per element of the cluster (absorber's element included).
    """
    clus = cluster(atoms, absorber_index=absorber_index, radius=radius)
    from ase.data import atomic_numbers

    elements = list(dict.fromkeys(clus.get_chemical_symbols()))
    ipot = {el: i + 1 for i, el in enumerate(elements)}
    hole = {"K": 1, "L1": 2, "L2": 3, "L3": 4}[edge]
    lines = [f"TITLE {title}", f"HOLE {hole} 1.0" if version == 6 else f"EDGE {edge}\nS02 1.0",
             "CONTROL 1 1 1 1" + (" 1 1" if version == 8 else ""),
             "PRINT 0 0 0 0" + (" 0 3" if version == 8 else ""),  # feff8: iff2x = 3 writes feffNNNN.dat
             f"RMAX {rmax_path:.4f}", f"NLEG {int(nleg)}", "", "POTENTIALS",
             f"  0 {atomic_numbers[clus[0].symbol]:3d} {clus[0].symbol}"]
    lines += [f"  {ipot[el]} {atomic_numbers[el]:3d} {el}" for el in elements]
    lines += ["", "ATOMS"]
    for i, atom in enumerate(clus):
        x, y, z = atom.position
        pot = 0 if i == 0 else ipot[atom.symbol]
        lines.append(f"  {x:12.6f} {y:12.6f} {z:12.6f} {pot:2d} {atom.symbol:3s} {np.linalg.norm(atom.position):9.5f}")
    lines += ["END", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class FeffPathFile:
    """One feffNNNN.dat: file, half path length ``reff`` (Å), degeneracy, legs, scatterer symbol
    and ``geom``: the path's atoms ``(symbol, x, y, z)`` (Å), absorber first."""

    file: str
    reff: float
    degen: float
    nleg: int
    scatterer: str
    geom: tuple = ()


def leg_factors(pf: FeffPathFile, *, pair: tuple[str, str], r: float, tol: float = 0.1) -> tuple[float, float]:
    """How a path's half length and σ² follow one shell's distance: ``(fr, fs)``.

    The legs of ``pf`` between atoms of the elements ``pair`` (either order) whose length is
    within ``tol`` (Å) of ``r`` (Å) are that shell's.  If the shell's distance changes by ΔR
    and its σ² by Δσ², the half path length changes by ``fr·ΔR`` with ``fr = m/2`` (``m`` such
    legs), and the path's σ² (variance of the half length; legs between different atom pairs
    uncorrelated, repeated legs between one pair fully correlated) by ``fs·Δσ²`` with
    ``fs = Σ_pair m_pair²/4``.  A single-scattering path of the shell gives (1, 1).

    Raises
    ------
    InputError
        The path has no geometry.
    """
    if len(pf.geom) < 2:
        raise InputError(f"{pf.file}: no path geometry")
    atoms = list(pf.geom) + [pf.geom[0]]
    count: dict = {}
    want = set(pair)
    for a, b in zip(atoms[:-1], atoms[1:]):
        d = float(np.linalg.norm(np.subtract(a[1:], b[1:])))
        if {a[0], b[0]} == want and abs(d - r) <= tol:
            key = frozenset(((a[0],) + tuple(np.round(a[1:], 3)), (b[0],) + tuple(np.round(b[1:], 3))))
            count[key] = count.get(key, 0) + 1
    m = sum(count.values())
    return 0.5 * m, sum(v * v for v in count.values()) / 4.0


@dataclass(frozen=True)
class FeffRun:
    """A finished FEFF run: work directory, its feff.inp and the paths it wrote."""

    workdir: str
    feffinp: str
    version: int
    paths: tuple[FeffPathFile, ...] = field(default_factory=tuple)


def run_feff(atoms: Atoms, *, absorber_index: int, radius: float, workdir: str | FilePath,
             version: int = 6, rmax_path: float = 5.0, edge: str = "K", nleg: int = 2) -> FeffRun:
    """Write feff.inp for ``atoms`` and run larch's bundled feff6l or feff8l in ``workdir``.

    Parameters
    ----------
    atoms : ase.Atoms
        Unit cell (periodic) or cluster.
    absorber_index : int
        Index of the absorbing atom in ``atoms``.
    radius : float
        Cluster radius for the potentials, Å.
    workdir : str or pathlib.Path
        Directory for the run (created); FEFF's files stay there.
    version : {6, 8}
        ``feff6l`` or ``feff8l``.
    rmax_path : float
        Longest half path length, Å.
    edge : str
        Absorption edge.
    nleg : int
        Most legs of a path (2: single scattering; 3–4 add the multiple-scattering paths).

    Raises
    ------
    ExternalProgramError
        FEFF missing, failed, or wrote no paths.
    """
    from larch.xafs import feff6l, feff8l, feffpath

    if version not in (6, 8):
        raise ConfigError(f"FEFF version must be 6 or 8, got {version}")
    work = FilePath(workdir)
    work.mkdir(parents=True, exist_ok=True)
    inp = work / "feff.inp"
    inp.write_text(feff_input(atoms, absorber_index=absorber_index, radius=radius,
                              rmax_path=rmax_path, edge=edge, version=version, nleg=nleg))
    try:
        (feff6l if version == 6 else feff8l)(feffinp="feff.inp", folder=str(work), verbose=False)
    except Exception as exc:
        raise ExternalProgramError(f"{inp}: feff{version}l failed: {exc}") from None
    files = sorted(work.glob("feff[0-9][0-9][0-9][0-9].dat"))
    if not files:
        raise ExternalProgramError(f"{inp}: feff{version}l wrote no feffNNNN.dat in {work}")
    paths = []
    for f in files:
        p = feffpath(str(f))
        scat = p.geom[1][0] if len(p.geom) > 1 else ""
        geom = tuple((str(g[0]), float(g[4]), float(g[5]), float(g[6])) for g in p.geom)
        paths.append(FeffPathFile(file=str(f), reff=float(p.reff), degen=float(p.degen),
                                  nleg=int(p.nleg), scatterer=str(scat), geom=geom))
    return FeffRun(workdir=str(work), feffinp=str(inp), version=version, paths=tuple(paths))


def feff_paths(run: FeffRun, shells: list[tuple[str, float]], *, sigma2: float | list[float] = 0.0,
               tol: float = 0.05) -> list[Path]:
    """Paths for shells ``[(scatterer, R), ...]`` from the single-scattering paths of ``run``.

    All single-scattering feffNNNN.dat with that scatterer and ``|reff − R| <= tol`` form the
    shell (e.g. wurtzite Cd–S: 1 × 2.532 + 3 × 2.527 Å): N is their summed degeneracy and
    R their degeneracy-weighted mean distance.

    Parameters
    ----------
    run : FeffRun
    shells : list of (str, float)
        Scatterer symbol and distance, Å.
    sigma2 : float or list of float
        σ²_ref (Å²) folded into each path (see the module docstring), one or one per shell.
    tol : float
        Distance tolerance, Å.

    Returns
    -------
    list of Path
        ``source="feff"``; ``provenance["files"]`` lists the feffNNNN.dat used (for larch feffit).

    Raises
    ------
    InputError
        No single-scattering path matches a shell.
    """
    s2 = list(sigma2) if isinstance(sigma2, (list, tuple)) else [float(sigma2)] * len(shells)
    out = []
    for (scat, r_want), s2_ref in zip(shells, s2):
        match = [p for p in run.paths if p.nleg == 2 and p.scatterer == scat and abs(p.reff - r_want) <= tol]
        if not match:
            found = ", ".join(f"{p.scatterer} {p.reff:.3f}" for p in run.paths if p.nleg == 2)
            raise InputError(f"{run.feffinp}: no single-scattering path to {scat} at {r_want} ± {tol} Å "
                             f"(paths: {found})")
        name = f"{_absorber_symbol(run)}-{scat}"
        out.append(_files_path(run, match, name=name, sigma2=s2_ref))
    return out


def _files_path(run: FeffRun, files, *, name: str, sigma2: float) -> Path:
    """One :class:`Path` from FEFF path files of one shell (N = summed degeneracy, R their
    degeneracy-weighted mean, σ²_ref = ``sigma2`` Å², λ and p′ degeneracy-weighted)."""
    from larch.xafs import feffpath, path2chi

    k = kgrid()
    n = sum(p.degen for p in files)
    r = sum(p.degen * p.reff for p in files) / n
    cchi = np.zeros(k.size, dtype=complex)
    lam = np.zeros(k.size)
    preal = np.zeros(k.size)
    for p in files:
        fp = feffpath(p.file, s02=1.0, sigma2=sigma2, e0=0.0, deltar=0.0)
        path2chi(fp, k=k)
        cchi += -fp.chi_imag + 1j * fp.chi
        fd = fp._feffdat
        lam += p.degen * np.interp(k, fd.k, fd.lam)
        preal += p.degen * np.interp(k, fd.k, fd.rep)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = cchi * k * r * r / n * np.exp(-2j * k * r)
    z[0] = z[1]
    famp = np.abs(z) * np.exp(2.0 * sigma2 * k * k)
    famp[0] = 0.0
    delta = np.unwrap(np.angle(z))
    prov = {"program": f"feff{run.version}l", "feffinp": run.feffinp, "files": [p.file for p in files],
            "reff": [p.reff for p in files], "degen": [p.degen for p in files],
            "n": n, "r": r, "sigma2": sigma2}
    return Path(name=name, k=k, amp=famp, phase=delta, r_ref=float(r), n_ref=float(n), sigma2_ref=float(sigma2),
                source="feff", provenance=prov, lam=lam / n, preal=preal / n)


def other_paths(run: FeffRun, *, exclude: list[str], rmax: float) -> list[tuple[Path, str]]:
    """Every FEFF path of ``run`` (single and multiple scattering) with ``reff <= rmax`` (Å)
    whose file is not in ``exclude``, one :class:`Path` each (σ²_ref = 0, named
    ``"<scatterer> <nleg>-leg <reff>"``) with its σ² group ``"ss"`` (2 legs) or ``"ms"``: the
    rest of a reference's structure, for :func:`xasmpi.exafs.anchored.anchored_paths`."""
    return [(_files_path(run, [p], name=f"{p.scatterer} {p.nleg}-leg {p.reff:.3f}", sigma2=0.0),
             "ss" if p.nleg == 2 else "ms")
            for p in run.paths if p.reff <= rmax and p.file not in set(exclude)]


def _absorber_symbol(run: FeffRun) -> str:
    """Element of potential 0 in the run's feff.inp."""
    lines = FilePath(run.feffinp).read_text().splitlines()
    i = lines.index("POTENTIALS")
    return lines[i + 1].split()[2]


def path_chis(run: FeffRun, k: np.ndarray, *, sigma2_of, e0: float = 0.0, rmax: float = 10.0) -> list:
    """χ(k) of every FEFF path of ``run`` with ``reff <= rmax`` (larch ``feffpath`` + ``path2chi``,
    S0² = 1, the structure's N and R).

    Parameters
    ----------
    run : FeffRun
    k : ndarray
        Uniform grid ``0, 0.05, …`` Å⁻¹.
    sigma2_of : callable
        ``FeffPathFile -> σ²`` (Å²) of each path.
    e0 : float
        larch ``e0`` (eV) of every path.
    rmax : float
        Longest half path length kept, Å.

    Returns
    -------
    list of (FeffPathFile, ndarray)
    """
    from larch.xafs import feffpath, path2chi

    out = []
    kk = np.concatenate([[0.5 * k[1]], k[1:]])      # larch overwrites χ[0] by extrapolation
    for p in run.paths:
        if p.reff > rmax:
            continue
        fp = feffpath(p.file, s02=1.0, sigma2=float(sigma2_of(p)), e0=float(e0), deltar=0.0)
        path2chi(fp, k=kk)
        chi = np.zeros_like(k)
        chi[1:] = fp.chi[1:]
        out.append((p, chi))
    return out
