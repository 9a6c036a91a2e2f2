"""Simulated demo data: FEFF-computed Cd K-edge μ(E) of CdS, CdO and an "MSC-like" sample.

Everything written here is **simulated** and says so in every file.  The recipe:

1. Bulk CdS (zinc blende, a = 5.818 Å) and bulk CdO (rock salt, a = 4.695 Å) are built
   with :func:`ase.build.bulk`; a cluster around one Cd is written as a FEFF6 input
   (``NLEG 2``: single-scattering paths only) and run with larch's bundled ``feff6l``.
2. χ(k) of each spectrum is a sum of single-scattering shells, the paper's EXAFS equation
   with FEFF's amplitude, phase and mean free path of those paths, S0² = 1, ΔE0 = 0 and
   the shell's N, R and σ² (see :data:`REFERENCE_SHELLS`, :data:`SAMPLE_SHELLS` and
   :func:`shell_chi`, which can also use larch's full ``path2chi``).
3. χ(k) is multiplied by a turn-on ``t(k)`` (0 below 0.3 Å⁻¹, 1 above 1.8 Å⁻¹, cosine in
   between) so that μ(E) is smooth at the edge and larch's ``find_e0`` lands within
   0.5 eV of E0, and turned into an absorbance::

       μ(E) = c0 + c1·(E − E0) + J·[s(E)·D(E) + χ(k(E))·t(k(E))]

   with the edge step ``J``, an arctan step ``s(E) = 1/2 + atan((E − E0)/(Γ/2))/π``
   (Γ = :data:`EDGE_WIDTH`), a Victoreen-like post-edge decay ``D(E) = (E/E0)^-2.7`` and
   ``k = sqrt(0.2624683·(E − E0))``.  χ enters in larch's convention (normalised to the
   edge step at E0), so ``pre_edge`` + ``autobk`` recover it without a McMaster correction.
4. Gaussian noise of standard deviation ``noise·J`` (sample, default 5e-4) or
   ``reference_noise·J`` (references, default 2.5e-4, the level of real 10 K bulk data) is
   added to every μ point: the noise in χ(k) is ≈ ``noise`` at every k (constant in χ, so
   it grows as k² in k²χ and dominates the sample's k²χ above ≈ 13 Å⁻¹, as in real data
   of dilute nanocluster samples).

Energy grid: pre-edge 26450–26690 eV in 5 eV steps, XANES E0 − 20 … E0 + 30 eV in
0.5 eV steps, then constant k steps of 0.05 Å⁻¹ up to k = 17 Å⁻¹ (E0 = 26711 eV).

Files (XDI 1.0, read by ``larch.io.read_xdi`` and :func:`xasmpi.exafs.io.read_spectrum`
with ``absorbance="mu"``): ``CdS_ref.xdi``, ``CdO_ref.xdi``, ``MSC_sim.xdi`` with
columns ``energy mu``, a ``# SIMULATED by xasmpi ...`` comment line and the true values
as JSON in the ``# Xasmpi.truth:`` header field (:func:`read_truth`; ``{path: {"n", "r",
"sigma2"}}``) and a description in ``# Xasmpi.simulation:``; ``truth.json`` holds all of
them (:attr:`DemoData.truth`); ``feff/CdS``, ``feff/CdO`` hold the FEFF runs.

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

#: Cd K edge used as E0 of all simulated spectra, eV
E0 = 26711.0
#: 2 m_e / ħ² in eV⁻¹ Å⁻²: k² = ETOK · (E − E0)
ETOK = 0.2624682843
#: width Γ of the arctan edge step, eV
EDGE_WIDTH = 5.0
#: exponent of the post-edge decay D(E) = (E/E0)^-VICTOREEN
VICTOREEN = 2.7
#: highest k of the energy grid, Å⁻¹
KMAX = 17.0
#: the common k grid step, Å⁻¹
KSTEP = 0.05
#: default seed of :func:`generate`
DEFAULT_SEED = 20240607
#: default noise of the sample (σ of the noise in χ, i.e. in edge-step units)
DEFAULT_NOISE = 5.0e-4
#: default noise of the bulk references (the level of real 10 K bulk CdS/CdO data)
DEFAULT_REFERENCE_NOISE = 2.5e-4

#: lattice constants of the FEFF structures, Å
LATTICE = {"CdS": ("zincblende", 5.818), "CdO": ("rocksalt", 4.695)}


@dataclass(frozen=True)
class Shell:
    """One single-scattering shell of a simulated spectrum.

    Attributes
    ----------
    path : str
        Path label, ``"Cd-S"``, ``"Cd-O"`` or ``"Cd-Cd"``.
    structure : str
        FEFF structure the path comes from: ``"CdS"`` or ``"CdO"``.
    index : int
        Shell of that structure (1 = nearest), i.e. ``feff000<index>.dat``.
    n : float
        Coordination number (larch ``degen``; S0² = 1).
    r : float
        Distance, Å.
    sigma2 : float
        Debye–Waller factor σ², Å².
    """

    path: str
    structure: str
    index: int
    n: float
    r: float
    sigma2: float

    def to_dict(self) -> dict:
        """JSON-able ``{"n", "r", "sigma2", "structure", "feff_shell"}`` (Å, Å²)."""
        return {"n": self.n, "r": self.r, "sigma2": self.sigma2,
                "structure": self.structure, "feff_shell": self.index}


#: true shells of the two bulk references
REFERENCE_SHELLS: dict[str, tuple[Shell, ...]] = {
    "CdS_ref": (Shell("Cd-S", "CdS", 1, 4.0, 2.519, 0.004),
                Shell("Cd-Cd", "CdS", 2, 12.0, 4.114, 0.008)),
    "CdO_ref": (Shell("Cd-O", "CdO", 1, 6.0, 2.348, 0.005),
                Shell("Cd-Cd", "CdO", 2, 12.0, 3.320, 0.006)),
}
#: true shells of the "MSC-like" sample (Cd-O path from CdO, Cd-S and Cd-Cd from CdS)
SAMPLE_SHELLS: dict[str, tuple[Shell, ...]] = {
    "MSC_sim": (Shell("Cd-O", "CdO", 1, 3.2, 2.30, 0.008),
                Shell("Cd-S", "CdS", 1, 2.6, 2.49, 0.006),
                Shell("Cd-Cd", "CdS", 2, 5.4, 3.98, 0.015)),
}
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
        ``"CdS_ref"``, ``"CdO_ref"`` or ``"MSC_sim"``.
    role : str
        ``"reference"`` or ``"sample"``.
    file : str
        The XDI file written.
    shells : tuple of Shell
        True shells (N, R in Å, σ² in Å²); S0² = 1.
    energy, mu : ndarray
        Energy grid (eV) and the noisy absorbance written to the file.
    k, chi : ndarray
        Common grid ``0, 0.05, …, 17`` Å⁻¹ and the true (noise-free) χ(k), turn-on applied,
        in larch's normalisation: what ``autobk`` should recover.
    e0, edge_step, noise : float
        Edge energy (eV), edge step J (absorbance units) and σ of the noise in χ.
    formula : str
        How χ was computed from the FEFF paths (:func:`shell_chi`).
    """

    name: str
    role: str
    file: str
    shells: tuple
    energy: np.ndarray
    mu: np.ndarray
    k: np.ndarray
    chi: np.ndarray
    e0: float
    edge_step: float
    noise: float
    formula: str = "equation"

    def truth(self) -> dict:
        """JSON-able true values ``{path: {"n", "r", "sigma2"}}`` (Å, Å²; S0² = 1, ΔE0 = 0).

        The shape stored in ``/exafs/<spectrum>/truth`` and read by the report.
        """
        return {s.path: {"n": s.n, "r": s.r, "sigma2": s.sigma2} for s in self.shells}

    def info(self) -> dict:
        """JSON-able description of the simulation (role, E0 in eV, edge step, noise, FEFF shells)."""
        return {"simulated": True, "role": self.role, "e0": self.e0, "edge_step": self.edge_step,
                "noise": self.noise, "s02": 1.0, "de0": 0.0, "chi_formula": self.formula,
                "shells": [{"path": s.path, **s.to_dict()} for s in self.shells]}


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
        ``CdS_ref``, ``CdO_ref``, ``MSC_sim``.
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
        "info": {name: DemoSpectrum.info()}, <name>: {path: {"n", "r", "sigma2"}} ...}``:
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
def _cluster(structure: str, radius: float) -> list[tuple[str, np.ndarray]]:
    """Atoms within ``radius`` (Å) of a central Cd of the bulk structure, absorber first."""
    from ase.build import bulk

    lattice, a = LATTICE[structure]
    crystal = bulk(structure, lattice, a=a)
    big = crystal.repeat((7, 7, 7))
    cd = np.flatnonzero(np.array(big.get_chemical_symbols()) == "Cd")
    centre = big.cell.sum(axis=0) / 2.0
    i0 = int(cd[np.argmin(np.linalg.norm(big.positions[cd] - centre, axis=1))])
    d = big.positions - big.positions[i0]
    dist = np.linalg.norm(d, axis=1)
    order = np.lexsort((d[:, 2], d[:, 1], d[:, 0], np.round(dist, 4)))
    syms = big.get_chemical_symbols()
    return [(syms[i], d[i]) for i in order if dist[i] <= radius + 1e-6]


def feff_input(structure: str, *, radius: float = 6.0, rmax: float = 4.5) -> str:
    """FEFF6 input text (single scattering only) for a Cd absorber in bulk CdS or CdO.

    Parameters
    ----------
    structure : {"CdS", "CdO"}
        Zinc-blende CdS (a = 5.818 Å) or rock-salt CdO (a = 4.695 Å), built with ASE.
    radius : float
        Radius of the atom list around the absorber, Å.
    rmax : float
        FEFF ``RMAX``: longest path half-length kept, Å.

    Returns
    -------
    str
        The ``feff.inp`` text.
    """
    if structure not in LATTICE:
        raise InputError(f"demo: unknown structure {structure!r} (use {', '.join(LATTICE)})")
    atoms = _cluster(structure, radius)
    others = sorted({s for s, _ in atoms[1:]}, key=lambda s: (s != "Cd", s))
    ipot = {s: i + 1 for i, s in enumerate(others)}
    z = {"Cd": 48, "S": 16, "O": 8}
    lattice, a = LATTICE[structure]
    lines = [f"TITLE xasmpi demo (SIMULATED): bulk {structure} {lattice} a={a} A, Cd K edge",
             "HOLE 1 1.0", "CONTROL 1 1 1 1", "PRINT 0 0 0 0", "NLEG 2", f"RMAX {rmax:.3f}",
             "POTENTIALS", "  0 48 Cd"]
    lines += [f"  {ipot[s]} {z[s]} {s}" for s in others]
    lines.append("ATOMS")
    for j, (s, p) in enumerate(atoms):
        lines.append(f"  {p[0]:10.5f} {p[1]:10.5f} {p[2]:10.5f} {0 if j == 0 else ipot[s]} {s}")
    lines.append("END")
    return "\n".join(lines) + "\n"


def run_feff(structure: str, folder: str | FilePath, *, radius: float = 6.0) -> list:
    """Run larch's ``feff6l`` for bulk CdS or CdO; return the single-scattering paths.

    Parameters
    ----------
    structure : {"CdS", "CdO"}
    folder : path-like
        Where ``feff.inp`` and the outputs go (created, emptied first).
    radius : float
        Radius of the atom list, Å.

    Returns
    -------
    list of larch FeffPathGroup
        Paths in order of distance (``feff0001.dat`` first).

    Raises
    ------
    InputError
        FEFF produced no path.
    """
    from larch.xafs import feff6l, feffpath

    folder = FilePath(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "feff.inp").write_text(feff_input(structure, radius=radius))
    feff6l(folder=str(folder), feffinp="feff.inp", verbose=False)
    files = sorted(folder.glob("feff0*.dat"))
    if not files:
        raise InputError(f"{folder}: feff6l wrote no feffNNNN.dat (see feffrun_feff6l.log)")
    return [feffpath(str(f)) for f in files]


def shell_chi(paths: Mapping[str, Sequence], shells: Sequence[Shell], k: np.ndarray, *,
              formula: str = "equation") -> np.ndarray:
    """Sum of single-scattering shells, χ(k), from FEFF paths.

    Parameters
    ----------
    paths : mapping of structure name to list of FeffPathGroup
        Output of :func:`run_feff` per structure.
    shells : sequence of Shell
        N, R (Å) and σ² (Å²) of each shell; S0² = 1, ΔE0 = 0.
    k : ndarray
        Wavenumbers, Å⁻¹ (values ≤ 0 give χ = 0).
    formula : {"equation", "larch"}
        ``"equation"`` (default): the paper's EXAFS equation (eqn 1–3) with FEFF's
        amplitude |f(k)| (``mag·red``), total phase δ(k) and mean free path λ(k) (cubic
        splines of ``feffNNNN.dat``)::

            χ = Σ N |f| / (k R²) · exp(−2R/λ) · exp(−2σ²k²) · sin(2kR + δ)

        This is the model the model-free fit assumes, apart from exp(−2R/λ) which is
        evaluated at the shell's own R (the empirical path folds it in at the reference's R).
        ``"larch"``: larch's ``path2chi`` (FEFF's complex wavenumber p in the σ² and ΔR
        terms and a −4pσ²/R phase term); with it the model-free fit's N(Cd–S) of the demo
        sample comes out ≈ 13 % high (2.93 for 2.6) even without noise, because the Cd–O/Cd–S overlap
        turns those small differences into a large N shift.

    Returns
    -------
    ndarray
        χ(k), dimensionless.

    Raises
    ------
    InputError
        Unknown ``formula``.
    """
    from scipy.interpolate import CubicSpline

    if formula not in ("equation", "larch"):
        raise InputError(f"demo: unknown chi formula {formula!r} (use 'equation' or 'larch')")
    k = np.asarray(k, dtype=float)
    out = np.zeros_like(k)
    pos = k > 0
    if not pos.any():
        return out
    kp = k[pos]
    for sh in shells:
        p = paths[sh.structure][sh.index - 1]
        if formula == "larch":
            from larch.xafs import path2chi

            # larch overwrites chi[0] by a linear extrapolation: prepend a sacrificial point;
            # path2chi ignores a ``degen`` keyword (it uses the path's own degeneracy), so N
            # enters as S0² = N / degen_feff: the amplitude is degen · S0² = N
            kk = np.concatenate([[0.5 * kp.min()], kp])
            path2chi(p, k=kk, s02=sh.n / float(p.degen), e0=0.0, deltar=sh.r - float(p.reff),
                     sigma2=sh.sigma2)
            out[pos] += np.asarray(p.chi, dtype=float)[1:]
            continue
        f = p._feffdat
        amp = CubicSpline(f.k, f.amp)(kp)
        pha = CubicSpline(f.k, f.pha)(kp)
        lam = CubicSpline(f.k, f.lam)(kp)
        out[pos] += (sh.n * amp / (kp * sh.r ** 2) * np.exp(-2.0 * sh.r / lam)
                     * np.exp(-2.0 * sh.sigma2 * kp ** 2) * np.sin(2.0 * kp * sh.r + pha))
    return out


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
              truth: dict, info: dict, comment: str) -> None:
    """Write a simulated μ(E) as an XDI 1.0 file with columns ``energy mu``.

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
    """
    from xasmpi import __version__

    head = [
        "# XDI/1.0 xasmpi-demo/1",
        "# Column.1: energy eV",
        "# Column.2: mu",
        "# Element.symbol: Cd",
        "# Element.edge: K",
        "# Mono.name: Si(311) (simulated)",
        "# Mono.d_spacing: 1.637418",
        f"# Sample.name: {name} (SIMULATED)",
        "# Facility.name: none (simulated data)",
        "# Beamline.name: none (simulated data)",
        "# Xasmpi.simulated: true",
        f"# Xasmpi.version: {__version__}",
        f"# {TRUTH_FIELD}: {json.dumps(truth, sort_keys=True)}",
        f"# {INFO_FIELD}: {json.dumps(info, sort_keys=True)}",
        "# ///",
        f"# SIMULATED by xasmpi {__version__} (xasmpi.demo.generate): not measured data.",
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


def _describe(shells: Sequence[Shell]) -> str:
    return ("true values (S0^2=1, dE0=0): " + ", ".join(
        f"{s.path} N={s.n:g} R={s.r:g} A sigma2={s.sigma2:g} A^2" for s in shells))


# ----------------------------------------------------------------------------- main entry
def generate(out_dir: str | FilePath, *, seed: int = DEFAULT_SEED, noise: float = DEFAULT_NOISE,
             reference_noise: float = DEFAULT_REFERENCE_NOISE, formula: str = "equation") -> DemoData:
    """Write the simulated demo spectra (FEFF-computed) into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Folder (created).  Gets ``CdS_ref.xdi``, ``CdO_ref.xdi``, ``MSC_sim.xdi``,
        ``truth.json`` and ``feff/{CdS,CdO}/``.
    seed : int
        Seed of the noise (``numpy.random.SeedSequence(seed)``, one child per spectrum in
        the order CdS_ref, CdO_ref, MSC_sim): the same seed gives identical files.
    noise : float
        Standard deviation of the Gaussian noise of the sample, in units of its edge step,
        i.e. ≈ the noise in χ(k) at every k (dimensionless, ≥ 0).  With the default 5e-4,
        the sample's k²χ is noise-dominated above k ≈ 13 Å⁻¹, as for dilute cluster samples.
    reference_noise : float
        The same for the two bulk references.  With the default 2.5e-4, larch's
        ``estimate_noise`` (R 15–30 Å) gives ε_k ≈ 2.5e-4, the level of real 10 K bulk
        CdS/CdO Cd K-edge transmission data (1.6–3.7e-4).
    formula : {"equation", "larch"}
        How χ(k) is computed from the FEFF paths (:func:`shell_chi`).

    Returns
    -------
    DemoData

    Raises
    ------
    InputError
        Negative noise, or FEFF failed.
    """
    if not (noise >= 0 and reference_noise >= 0):
        raise InputError(f"demo: noise must be >= 0 (got noise={noise}, reference_noise={reference_noise})")
    if formula not in ("equation", "larch"):
        raise InputError(f"demo: unknown chi formula {formula!r} (use 'equation' or 'larch')")
    out = FilePath(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    feff_dirs = {s: out / "feff" / s for s in LATTICE}
    paths = {s: run_feff(s, d) for s, d in feff_dirs.items()}

    energy = energy_grid()
    kgrid = np.arange(int(round(KMAX / KSTEP)) + 1) * KSTEP
    rngs = [np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(3)]
    specs: dict[str, DemoSpectrum] = {}
    order = [("CdS_ref", "reference", REFERENCE_SHELLS["CdS_ref"], reference_noise),
             ("CdO_ref", "reference", REFERENCE_SHELLS["CdO_ref"], reference_noise),
             ("MSC_sim", "sample", SAMPLE_SHELLS["MSC_sim"], noise)]
    for (name, role, shells, sig), rng in zip(order, rngs):
        def chi_of_k(k, shells=shells):
            return shell_chi(paths, shells, k, formula=formula) * turn_on(k)

        jump = EDGE_STEPS[name]
        mu = mu_from_chi(energy, chi_of_k, edge_step=jump, pre_edge=PRE_EDGE[name])
        mu = mu + rng.normal(0.0, sig * jump, size=mu.shape)
        spec = DemoSpectrum(name=name, role=role, file=str(out / f"{name}.xdi"), shells=tuple(shells),
                            energy=energy, mu=mu, k=kgrid, chi=chi_of_k(kgrid), e0=E0,
                            edge_step=jump, noise=float(sig), formula=formula)
        what = "bulk reference" if role == "reference" else "MSC-like sample"
        write_xdi(spec.file, energy, mu, name=name, truth=spec.truth(), info=spec.info(),
                  comment=f"{what} from FEFF6 paths; {_describe(shells)}; "
                          f"noise sigma={sig:g} x edge step; seed={seed}")
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
