"""Job files: TOML -> validated, frozen dataclasses.

A campaign is one TOML file (see ``jobs/examples/``).  :func:`load_job` parses it, applies
``--set KEY=VALUE`` overrides, and validates every key against the dataclasses below:
unknown keys, wrong types, wrong units and out-of-range values raise
:class:`~xasmpi.errors.ConfigError` naming the file and the dotted key (exit code 2).

Quantities are plain numbers in the documented unit, or strings with a unit
(``radius = "0.45 nm"``, ``emax = "0.1 keV"``) which are converted; an incompatible unit is
an error.  Relative file paths resolve against the job file's folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from xasmpi.data.crystals import CRYSTALS, LATTICES
from xasmpi.errors import ConfigError

# ----------------------------------------------------------------------------- units
_UNITS: dict[str, dict[str, float]] = {
    "Å": {"å": 1.0, "a": 1.0, "ang": 1.0, "angstrom": 1.0, "nm": 10.0, "pm": 0.01},
    "Å^-1": {"1/å": 1.0, "1/a": 1.0, "å^-1": 1.0, "a^-1": 1.0, "å-1": 1.0, "a-1": 1.0,
             "1/ang": 1.0, "ang^-1": 1.0, "1/nm": 0.1, "nm^-1": 0.1},
    "Å^2": {"å^2": 1.0, "a^2": 1.0, "å2": 1.0, "a2": 1.0, "ang^2": 1.0, "nm^2": 100.0,
            "pm^2": 1e-4},
    "eV": {"ev": 1.0, "kev": 1000.0, "mev": 1e-3},
    "s": {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "ms": 1e-3},
    "Da": {"da": 1.0, "u": 1.0, "kda": 1000.0, "g/mol": 1.0},
    "deg": {"deg": 1.0, "°": 1.0, "degree": 1.0, "degrees": 1.0},
}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")


def _meta(unit: str | None = None, lo: float | None = None, hi: float | None = None,
          path: bool = False, doc: str = "") -> dict:
    return {"unit": unit, "lo": lo, "hi": hi, "path": path, "doc": doc}


def _f(default: Any, unit: str | None = None, lo: float | None = None,
       hi: float | None = None, doc: str = "", path: bool = False) -> Any:
    if isinstance(default, (dict, list)) or (dataclasses.is_dataclass(default) and not isinstance(default, type)):
        return field(default_factory=lambda d=default: d, metadata=_meta(unit, lo, hi, path, doc))
    return field(default=default, metadata=_meta(unit, lo, hi, path, doc))


# ----------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class JobSection:
    """``[job]``: identity, output and seed of the campaign."""
    name: str = _f("xasmpi-job", doc="campaign name")
    output: str = _f("results.h5", path=True, doc="results file (HDF5)")
    seed: int = _f(20240607, lo=0, doc="root seed: task i uses SeedSequence(seed, spawn_key=(stage, i))")
    stages: Tuple[str, ...] = _f((), doc="stages to run by default (all configured ones if empty)")
    description: str = _f("", doc="free text stored in the results file")
    simulated: bool = _f(False, doc="the inputs are simulated data (stored and shown everywhere)")


@dataclass(frozen=True)
class ReductionSection:
    """``[reduction]``: EXAFS reduction defaults (the paper's), overridable per spectrum."""
    rbkg: float = _f(0.8, "Å", 0.1, 3.0, "autobk background cut-off")
    kmin: float = _f(2.0, "Å^-1", 0.0, 30.0, "FT window start")
    kmax: float = _f(16.5, "Å^-1", 0.5, 30.0, "FT window end")
    kweight: int = _f(2, None, 0, 4, "k weight of the FT and the fit")
    dk: float = _f(1.0, "Å^-1", 0.0, 5.0, "window sill width")
    window: Literal["hanning", "kaiser", "parzen", "welch", "sine", "gaussian"] = _f("hanning")
    e0: Optional[float] = _f(None, "eV", 0.0, 2e5, "fixed E0 (default: larch finds it)")
    shared_e0: bool = _f(False, doc="use one E0 (the mean of larch find_e0 over the mu(E) spectra) for all spectra")
    rmax_out: float = _f(10.0, "Å", 1.0, 30.0, "largest R kept for chi(R)")
    pre1: Optional[float] = _f(None, "eV", -1000.0, 0.0, "pre-edge range start, relative to E0")
    pre2: Optional[float] = _f(None, "eV", -1000.0, 0.0, "pre-edge range end, relative to E0")
    norm1: Optional[float] = _f(None, "eV", 0.0, 5000.0, "normalisation range start, relative to E0")
    norm2: Optional[float] = _f(None, "eV", 0.0, 5000.0, "normalisation range end, relative to E0")


@dataclass(frozen=True)
class WaveletSection:
    """``[wavelet]``: wavelet transform of k^w chi(k) (Fig. 1c)."""
    kind: Literal["cauchy", "morlet"] = _f("cauchy")
    rmax: float = _f(6.0, "Å", 0.5, 20.0, "largest R of the map")
    kwindow: bool = _f(False, doc="apply the FT k window before the transform")
    order: int = _f(196, None, 1, 5000, "Cauchy: wavelet order n (larch ties it to the R points, "
                    "= 196 at rmax 6 Å; fixed here so the k resolution does not change with rmax)")
    eta: float = _f(10.0, None, 0.1, 50.0, "Morlet: oscillation parameter")
    sigma: float = _f(1.0, None, 0.05, 20.0, "Morlet: width parameter")


@dataclass(frozen=True)
class SpectrumSpec:
    """``[[spectra]]``: one measured (or simulated) spectrum."""
    name: str = _f("", doc="unique label used in the results file")
    file: str = _f("", path=True, doc="XDI, column file, Athena .prj or chi(k) file")
    role: Literal["sample", "reference"] = _f("sample")
    format: Literal["auto", "xdi", "ascii", "athena", "chi"] = _f("auto", doc="ascii = plain column file with a header")
    absorbance: str = _f("transmission", doc="transmission | fluorescence | mu | expression over columns")
    columns: dict = _f({}, doc="column-name mapping, e.g. {energy='E', i0='I0', itrans='It'}")
    element: Optional[str] = _f(None)
    edge: Optional[str] = _f(None)
    athena_group: Optional[str] = _f(None)
    alternatives: Tuple[str, ...] = _f((), path=True, doc="reference: files of other scans of the same "
                                       "reference; the systematics stage refits with each in its place")
    reduction: dict = _f({}, doc="per-spectrum overrides of [reduction] keys")


@dataclass(frozen=True)
class PathSpec:
    """``[[paths]]``: a scattering path, empirical (from a reference spectrum) or FEFF."""
    name: str = _f("", doc="label, e.g. 'Cd-S'")
    source: Literal["empirical", "feff"] = _f("empirical")
    reference: Optional[str] = _f(None, doc="empirical: name of the reference spectrum")
    rmin: Optional[float] = _f(None, "Å", 0.0, 15.0, "empirical: extraction R window start")
    rmax: Optional[float] = _f(None, "Å", 0.0, 15.0, "empirical: extraction R window end")
    n: float = _f(1.0, None, 0.0, 48.0, "coordination number of the shell in the reference")
    r: float = _f(2.5, "Å", 0.5, 10.0, "distance of the shell in the reference")
    sigma2: float = _f(0.003, "Å^2", 0.0, 0.1, "sigma^2 of the shell in the reference")
    structure: Optional[str] = _f(None, doc="feff: a crystal of xasmpi.data.crystals ('CdS-zincblende', 'CdO-rocksalt', ...) or a structure file")
    scatterer: Optional[str] = _f(None, doc="feff: element of the scattering atom")
    feff_radius: float = _f(5.0, "Å", 2.0, 10.0, "feff: cluster radius")
    feff_version: Literal[6, 8] = _f(6)


@dataclass(frozen=True)
class ParamBounds:
    """``[fit.params.<path>]``: bounds (and fixing) of one path's parameters."""
    n: Tuple[float, float] = _f((0.0, 14.0), None, 0.0, 60.0, "N·S0² bounds")
    sigma2: Tuple[float, float] = _f((-0.005, 0.03), "Å^2", -0.02, 0.2, "sigma^2 bounds")
    r: Optional[float] = _f(None, "Å", 0.5, 10.0, "fixed R of the sample (default: the reference's)")
    r_free: bool = _f(False, doc="fit R within r_bounds")
    r_bounds: Optional[Tuple[float, float]] = _f(None, "Å", 0.5, 10.0, "R bounds when r_free")


@dataclass(frozen=True)
class DESection:
    """``[fit.de]``: differential evolution (Storn & Price) settings."""
    popsize: int = _f(15, None, 4, 1000, "population = popsize x free parameters")
    maxiter: int = _f(1000, None, 1, 100000)
    tol: float = _f(1e-8, None, 0.0, 1.0, "relative convergence tolerance")
    mutation: Tuple[float, float] = _f((0.5, 1.0), None, 0.0, 2.0)
    recombination: float = _f(0.7, None, 0.0, 1.0)
    strategy: Literal["best1bin", "rand1bin"] = _f("best1bin")
    varpro: bool = _f(True, doc="solve N·S0² by NNLS per candidate (variable projection)")
    polish: Literal["none", "least_squares", "lbfgsb"] = _f("least_squares", doc="local polish of the best member")


@dataclass(frozen=True)
class EngineSection:
    """``[fit.engine]``: the batched replicate engine (see :mod:`xasmpi.exafs.engine`)."""
    popsize: int = _f(20, None, 5, 1000, "population per replicate (absolute)")
    maxiter: int = _f(400, None, 1, 100000, "maximum generations per replicate")
    min_generations: int = _f(15, None, 0, 100000)
    tol: float = _f(1e-10, None, 0.0, 1.0, "stop when std(SSR) <= tol * mean(SSR) in a replicate's population")
    tabulate: bool = _f(True, doc="tabulated filtered bases on a fine sigma^2 grid")
    warm_fraction: float = _f(0.5, None, 0.0, 1.0, "noise/residual: share of the population started near the best fit")


@dataclass(frozen=True)
class SystematicsSection:
    """``[fit.systematics]``: refits under the variations a careful analyst tries (``systematics``
    stage; a shift of 0 leaves that variation out)."""
    enabled: bool = _f(True, doc="run the systematics stage after the fit")
    e0_shift: float = _f(1.0, "eV", 0.0, 20.0, "each reference's E0 moved by ± this (re-reduced, paths re-extracted)")
    window_shift: float = _f(0.1, "Å", 0.0, 1.0, "fit-window and extraction-window edges moved by ± this")
    kmin_shift: float = _f(0.5, "Å^-1", 0.0, 5.0, "fit and extraction kmin moved by ± this")
    kmax_shift: float = _f(2.0, "Å^-1", 0.0, 10.0, "fit and extraction kmax lowered by this")
    kweights: Tuple[int, ...] = _f((1, 2, 3), None, 0, 4, "k weights refitted (the fit's own is skipped)")
    extraction: bool = _f(True, doc="refit with the other extraction method (fit.extraction) where a reference's paths all have structure+scatterer")


@dataclass(frozen=True)
class FitSection:
    """``[fit]``: model-free fits and their replicates."""
    samples: Tuple[str, ...] = _f((), doc="spectra to fit (default: all with role='sample')")
    paths: Tuple[str, ...] = _f((), doc="paths in the model (default: all)")
    space: Literal["k", "q", "r"] = _f("q")
    kmin: Optional[float] = _f(None, "Å^-1", 0.0, 30.0, "default: [reduction].kmin")
    kmax: Optional[float] = _f(None, "Å^-1", 0.5, 30.0, "default: [reduction].kmax")
    kweight: int = _f(2, None, 0, 4)
    rmin: float = _f(1.0, "Å", 0.0, 15.0, "R window (q and r spaces)")
    rmax: float = _f(3.6, "Å", 0.1, 15.0)
    replicates: int = _f(10000, None, 0, 10_000_000)
    mode: Literal["restart", "noise", "residual"] = _f("noise", doc="noise/residual: bootstrap (an uncertainty); "
                                                       "restart: same data, new seed (optimiser stability only)")
    chunk: int = _f(250, None, 1, 100000, "replicates fitted together (fixed global chunking)")
    e0: Literal["per-reference", "fixed", "global", "per-path"] = _f(
        "per-reference", doc="free ΔE0: one per reference spectrum (FEFF paths share one), global, per path, or none")
    e0_bounds: Tuple[float, float] = _f((-10.0, 10.0), "eV", -50.0, 50.0)
    check_windows: bool = _f(True, doc="refuse extraction windows that leave [fit.rmin, fit.rmax] (overlaps are always refused)")
    extraction: Literal["auto", "fourier", "anchored"] = _f("auto", doc="empirical paths: 'fourier' = joint Fourier filtering of each reference (everything inside a window is its shell's, neighbours' tails included); 'anchored' = each shell separated from its neighbours by a FEFF model of the whole reference (multiple scattering included) with smooth corrections fitted to the measured reference (needs structure+scatterer on all paths of a reference); 'auto' = both, and the one whose best fit of the samples has the lower SSR (same free parameters); see README 'Known limitations'")
    histogram_bins: int = _f(40, None, 5, 1000)
    de: DESection = _f(DESection())
    engine: EngineSection = _f(EngineSection())
    systematics: SystematicsSection = _f(SystematicsSection())
    params: dict = _f({}, doc="per-path [fit.params.<path>] tables (ParamBounds)")


@dataclass(frozen=True)
class FeffRouteSection:
    """``[feff]``: the 'Artemis route' fit of the same model with FEFF paths."""
    paths: dict = _f({}, doc="model path name -> FEFF path name (default: same name)")


@dataclass(frozen=True)
class ClusterBuild:
    """A candidate built by :mod:`xasmpi.xanes.clusters`."""
    lattice: Literal[LATTICES] = _f("zincblende")
    a: Optional[float] = _f(None, "Å", 1.0, 20.0)
    c: Optional[float] = _f(None, "Å", 1.0, 30.0)
    strain: Tuple[float, ...] = _f((), None, -0.5, 0.5, "isotropic (1 value) or (x, y, z) strain")
    atoms: Optional[int] = _f(None, None, 2, 2000)
    formula: Optional[str] = _f(None)
    terminate: Optional[str] = _f(None, doc="terminating element, e.g. 'O'")
    anion: str = _f("S", doc="anion of the lattice (crystal candidates only), e.g. 'O' for CdO")
    center: Literal["cd", "cell"] = _f("cd")
    model: Optional[Literal["inp-like"]] = _f(None, doc="a named model instead of a cut: 'inp-like' (Cd37S20, O-terminated if terminate='O')")


@dataclass(frozen=True)
class XanesCandidate:
    """``[[xanes.candidates]]``: a structure to simulate."""
    name: str = _f("")
    file: Optional[str] = _f(None, path=True, doc="any ASE-readable structure file")
    build: Optional[ClusterBuild] = _f(None)
    crystal: bool = _f(False, doc="periodic crystal (FDMNES Crystal block) instead of a cluster")
    absorber: str = _f("Cd")
    mode: Optional[Literal["green", "fdm"]] = _f(None, doc="FDMNES method of this candidate (default [xanes].mode)")


@dataclass(frozen=True)
class XanesSection:
    """``[xanes]``: FDMNES campaign and comparison with measured XANES."""
    fdmnes: Optional[str] = _f(None, path=True, doc="FDMNES binary (else $XASMPI_FDMNES, PATH, bundled)")
    edge: Literal["K", "L3"] = _f("K")
    mode: Literal["green", "fdm"] = _f("green")
    radius: float = _f(4.5, "Å", 1.0, 15.0, "cluster radius of the calculation")
    emin: float = _f(-20.0, "eV", -200.0, 0.0, "energy range start, relative to the edge")
    emax: float = _f(100.0, "eV", 1.0, 1000.0, "energy range end (a post-edge is needed to normalise)")
    estep: float = _f(1.0, "eV", 0.01, 20.0)
    scf: bool = _f(False)
    convolution: bool = _f(True)
    gamma_hole: Optional[float] = _f(None, "eV", 0.0, 100.0, "core-hole width (default: FDMNES's table)")
    gaussian: Optional[float] = _f(None, "eV", 0.0, 100.0, "extra Gaussian broadening in FDMNES's convolution")
    timeout: float = _f(1800.0, "s", 1.0, 1e6, "per FDMNES run")
    candidates: Tuple[XanesCandidate, ...] = _f(())
    measured: Tuple[str, ...] = _f((), doc="spectra (names) to compare with")
    window: Tuple[float, float] = _f((-20.0, 100.0), "eV", -200.0, 1000.0, "comparison window relative to the measured edge")
    lcf: Tuple[Tuple[str, ...], ...] = _f((), doc="candidate combinations for linear-combination fits")
    lcf_max_shift: float = _f(3.0, "eV", 0.0, 50.0, "extra energy shift allowed per LCF component")
    compare: Literal["physical", "free"] = _f("physical", doc="physical: fixed resolution + core hole, one calibrated shift, scale 1; free: fit shift, broadening, scale per candidate")
    resolution: float = _f(1.4e-4, None, 0.0, 0.1, "beamline energy resolution dE/E (Gaussian FWHM = resolution x edge energy)")
    calibrate: Tuple[Tuple[str, ...], ...] = _f((), doc="[candidate, spectrum] bulk pairs: each spectrum's one energy shift (for all candidates) is fitted on its pair; spectra without a pair take the first pair's")
    epsii: bool = _f(True, doc="align absorbers on photon energy E - E_F + Epsii before averaging")
    radius_check: Optional[float] = _f(None, "Å", 1.0, 15.0, "second radius for a convergence check of the first absorber of each candidate")
    fdm_best: int = _f(0, None, 0, 1000, "stage xanes_fdm: rerun the N best screened candidates against each measured spectrum (and the calibration candidates) with FDM; 0: no FDM rerun")


@dataclass(frozen=True)
class RelaxSection:
    """``[relax]``: relax XANES candidates before their FDMNES runs (stage ``relax``)."""
    calculator: str = _f("chgnet", doc="chgnet | sevennet | module.path:factory returning an ASE calculator")
    fmax: float = _f(0.05, None, 1e-4, 10.0, "convergence: largest force (eV/Å)")
    steps: int = _f(2000, None, 0, 10_000_000, "most optimiser steps per candidate")
    optimizer: Literal["fire", "bfgs"] = _f("fire")
    freeze: Literal["none", "core"] = _f("none", doc="core: keep S and the Cd without O neighbours fixed")
    save_every: int = _f(10, None, 1, 1_000_000, "checkpoint interval (steps)")
    cap: Literal["none", "H"] = _f("none", doc="H: relax with one H on every O (hydroxide stand-in for a carboxylate), removed afterwards")
    candidates: Tuple[str, ...] = _f((), doc="candidates to relax (default: every non-crystal candidate)")


@dataclass(frozen=True)
class AnalysisSection:
    """``[analysis]``: stoichiometry, bond angle and bond-angle distributions."""
    mass: Optional[float] = _f(None, "Da", 1.0, 1e7, "cluster mass from mass spectrometry")
    mass_tol: float = _f(20.0, "Da", 0.0, 1e5)
    s02: float = _f(1.0, None, 0.05, 2.0, "S0^2 the fitted N·S0^2 is divided by for the CN (1: the paper's assumption)")
    elements: Tuple[str, ...] = _f((), doc="elements enumerated (default: absorber and cn_path's neighbour)")
    cn_path: Optional[str] = _f(None, doc="path whose N gives CN = 4y/x (default: the job's only "
                                "absorber-neighbour path)")
    angle_paths: Tuple[str, ...] = _f((), doc="(R1, R2) paths for the bond angle (default: cn_path and "
                                      "the absorber-absorber path)")
    models: Tuple[str, ...] = _f((), doc="structure files (or xanes candidate names) for angle distributions")


@dataclass(frozen=True)
class RankSection:
    """``[rank]``: rank the XANES candidates against the data (stage ``rank``, docs/ranking.md)."""
    candidates: Tuple[str, ...] = _f((), doc="xanes candidates to rank (default: all)")
    samples: Tuple[str, ...] = _f((), doc="EXAFS data sets (default: the fit's samples)")
    feff_radius: float = _f(5.5, "Å", 2.0, 12.0, "cluster radius of the FEFF potentials")
    rmax_path: float = _f(4.5, "Å", 1.5, 8.0, "longest FEFF half path length (single scattering)")
    feff_version: int = _f(6, None, 6, 8, "feff6l or feff8l")
    max_paths: int = _f(64, None, 1, 4096, "most distinct paths per absorber (fixed result rows)")
    s02: Tuple[float, float] = _f((0.5, 1.5), None, 0.01, 5.0, "bounds (= uniform prior) of S0^2")
    sigma2: Tuple[float, float] = _f((0.0005, 0.03), "Å^2", 0.0, 0.2, "bounds (= prior) of every shell group's sigma^2")
    de0: Tuple[float, float] = _f((-10.0, 10.0), "eV", -50.0, 50.0, "bounds (= prior) of dE0")
    xanes: bool = _f(True, doc="include the XANES evidence of the candidate comparison")
    shell_halfwidth: float = _f(0.3, "Å", 0.01, 2.0, "a candidate's shell for a fitted path: its distances "
                                "within R_fit ± this")
    compare: Tuple[Tuple[str, ...], ...] = _f((), doc="[A, B] sample pairs the report compares (xasmpi compare)")
    joint: Tuple[str, ...] = _f((), doc="fitted columns shared by a joint fit of joint_samples in the report, e.g. "
                                "['Cd-S.n', 'CdS_ref.de0']; the others per sample (xasmpi compare --joint)")
    joint_samples: Tuple[str, ...] = _f((), doc="samples of the joint fit (default: the fit's samples)")


@dataclass(frozen=True)
class SelftestSection:
    """``[selftest]``: trivial tasks that exercise the driver (scheduling, failures, resume)."""
    tasks: int = _f(100, None, 0, 10_000_000)
    sleep: float = _f(0.0, "s", 0.0, 3600.0, "time each task sleeps")
    schedule: Literal["block", "dynamic"] = _f("block")
    fail: Tuple[int, ...] = _f((), doc="task indices that raise")
    command: Optional[str] = _f(None, doc="external program each task runs (with {index})")
    timeout: float = _f(60.0, "s", 0.01, 1e6)
    values: int = _f(4, None, 1, 4096, "random numbers each task returns")


@dataclass(frozen=True)
class SupplementarySection:
    """``[supplementary]``: the paper's supplementary analyses (stage ``supplementary``): Table S1,
    FEFF paths beside the empirical ones (Fig. S1), crystal fragments (Fig. S4–S6), bulk CdS (Fig. S8)."""
    feff_paths: bool = _f(True, doc="Fig. S1: a FEFF path beside every empirical path with structure and scatterer")
    fragments: Tuple[Literal[LATTICES], ...] = _f(
        ("zincblende", "rocksalt", "betasn"), doc="Fig. S4-S6: CdS polymorphs, each fitted with rock-salt CdO "
        "(empty: no fragment test)")
    fragment_radius: float = _f(3.0, "Å", 1.0, 15.0, "FDMNES radius of the fragments (the paper: 3 Å)")
    measured: Tuple[str, ...] = _f((), doc="spectra fitted by the fragment sums (default: the samples, else all)")
    bulk: Optional[Literal["zincblende", "wurtzite"]] = _f(None, doc="Fig. S8: lattice of the bulk CdS "
                                                           "calculation (None: no Fig. S8)")
    bulk_spectrum: Optional[str] = _f(None, doc="Fig. S8: measured bulk CdS spectrum (its shift also aligns S4-S6)")
    bulk_radius: float = _f(6.0, "Å", 1.0, 15.0, "FDMNES radius of the bulk calculation")
    cdo_shells: int = _f(0, None, 0, 12, "Fig. S3: FDMNES of rock-salt CdO with 1, 2, ..., n coordination shells around the absorber (0: no Fig. S3)")
    cdo_spectrum: Optional[str] = _f(None, doc="Fig. S3: the measured CdO spectrum the shell series is compared with")


@dataclass(frozen=True)
class RunSection:
    """``[run]``: execution-only settings; they do not change results."""
    progress_interval: float = _f(10.0, "s", 0.1, 3600.0, "seconds between progress lines")
    journal_fsync: bool = _f(True, doc="fsync the journal after every record")


@dataclass(frozen=True)
class Job:
    """A validated job file."""
    job: JobSection = _f(JobSection())
    reduction: ReductionSection = _f(ReductionSection())
    wavelet: WaveletSection = _f(WaveletSection())
    spectra: Tuple[SpectrumSpec, ...] = _f(())
    paths: Tuple[PathSpec, ...] = _f(())
    fit: Optional[FitSection] = _f(None)
    feff: Optional[FeffRouteSection] = _f(None)
    rank: Optional[RankSection] = _f(None)
    relax: Optional[RelaxSection] = _f(None)
    xanes: Optional[XanesSection] = _f(None)
    analysis: Optional[AnalysisSection] = _f(None)
    selftest: Optional[SelftestSection] = _f(None)
    supplementary: Optional[SupplementarySection] = _f(None)
    run: RunSection = _f(RunSection())
    # provenance (not keys of the file)
    source: str = field(default="", compare=False, metadata={"internal": True})
    text: str = field(default="", compare=False, metadata={"internal": True})
    overrides: Tuple[str, ...] = field(default=(), compare=False, metadata={"internal": True})

    # -- derived -----------------------------------------------------------------
    def spectrum(self, name: str) -> SpectrumSpec:
        for s in self.spectra:
            if s.name == name:
                return s
        raise ConfigError(f"{self.source}: no spectrum named '{name}'")

    def path(self, name: str) -> PathSpec:
        for p in self.paths:
            if p.name == name:
                return p
        raise ConfigError(f"{self.source}: no path named '{name}'")

    def resolved(self) -> dict:
        """The job as a plain JSON-able dict (every key, defaults filled in)."""
        d = dataclasses.asdict(self)
        for k in ("source", "text", "overrides"):
            d.pop(k)
        return d

    def fingerprint(self, stage: str | None = None) -> str:
        """Hash of the keys that change a stage's results (all stages when ``stage`` is None):
        :func:`xasmpi.stages.fingerprint`, each stage's keys declared in its registry line."""
        from xasmpi.stages import fingerprint

        return fingerprint(self, stage)

    def fingerprint_inputs(self) -> dict:
        """The parts of the job that stage fingerprints pick from (:data:`xasmpi.stages.STAGES`).

        ``d`` is :meth:`resolved`; input files count by content.  ``job.stages``, ``job.output``,
        ``job.description`` and ``[run]`` are in none of the derived parts.
        """
        d = self.resolved()
        seed = d["job"]["seed"]
        simulated = d["job"]["simulated"]
        # input files count by content, not only by name
        files = {s["file"]: file_digest(s["file"]) for s in d["spectra"]}
        files |= {a: file_digest(a) for s in d["spectra"] for a in s.get("alternatives", ())}
        files |= {p["structure"]: file_digest(self.resolve(p["structure"])) for p in d["paths"] if p["structure"]}
        data = {k: d[k] for k in ("reduction", "wavelet", "spectra", "paths")} | {"files": files}
        fit = dict(d["fit"] or {})
        fit.pop("histogram_bins", None)  # used only when the stage is finalised
        # the systematic refits depend on the model and DE settings, not on the replicates'
        sysfit = {k: v for k, v in fit.items() if k not in ("replicates", "mode", "chunk", "engine")}
        fit.pop("systematics", None)  # ... and the fit stage not on the systematics settings
        alt = {a for s in d["spectra"] for a in s.get("alternatives", ())}  # files only the refits read
        data_sys, data = data, {**data, "files": {k: v for k, v in files.items() if k not in alt},
                                "spectra": [{k: v for k, v in s.items() if k != "alternatives"} for s in d["spectra"]]}
        xanes = dict(d["xanes"] or {})
        for k in ("fdm_best", "window", "lcf", "lcf_max_shift", "measured", "timeout", "fdmnes", "compare", "resolution",
                  "calibrate"):  # comparison/run-time only
            xanes.pop(k, None)
        cands = {c["file"]: file_digest(c["file"]) for c in xanes.get("candidates", ()) if c["file"]}
        return {"d": d, "seed": seed, "simulated": simulated, "data": data, "data_sys": data_sys, "fit": fit,
                "sysfit": sysfit, "xanes": xanes, "cands": cands}

    def resolve(self, name: str) -> str:
        """A file named in the job (e.g. a path's ``structure``): ``~`` expanded, a relative path
        resolved against the job file's folder (absolute paths are returned as they are)."""
        p = Path(os.path.expanduser(name))
        return str(p if p.is_absolute() else Path(self.source).resolve().parent / p)

    @property
    def configured_stages(self) -> Tuple[str, ...]:
        """Stages the job asks for: ``job.stages`` or, if empty, all configured ones
        (:func:`xasmpi.stages.configured`)."""
        from xasmpi.stages import configured

        return configured(self)


#: names that cannot be XANES candidates (groups of the results layout)
RESERVED_CANDIDATES = ("measured", "comparison")


def file_digest(path: str) -> str:
    """sha256 of a file's content (``"missing"`` if it does not exist): part of fingerprints."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()[:16] if hasattr(hashlib, "file_digest") \
                else hashlib.sha256(fh.read()).hexdigest()[:16]
    except OSError:
        return "missing"


# ----------------------------------------------------------------------------- loader
class _Ctx:
    def __init__(self, source: str, base: Path):
        self.source, self.base = source, base

    def err(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: key '{key}': {problem}")


def _quantity(value: Any, unit: str, key: str, ctx: _Ctx) -> float:
    if isinstance(value, bool):
        raise ctx.err(key, f"expected a number in {unit}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m:
            num, u = float(m.group(1)), (m.group(2) or "").strip()
            if not u:
                return num
            table = _UNITS[unit]
            factor = table.get(u.lower().replace(" ", ""))
            if factor is None and u == unit:
                factor = 1.0
            if factor is None:
                raise ctx.err(key, f"unit '{u}' is not a unit of {unit} (use {unit} or one of: "
                              f"{', '.join(sorted(set(table)))})")
            return num * factor
    raise ctx.err(key, f"expected a number in {unit}, got {value!r}")


def _check_range(x: float, meta: dict, key: str, ctx: _Ctx) -> None:
    lo, hi, unit = meta.get("lo"), meta.get("hi"), meta.get("unit") or ""
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = f"[{lo:g}, {hi:g}]" if lo is not None and hi is not None else \
            (f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        raise ctx.err(key, f"value {x:g} {unit} is out of range {rng}".replace("  ", " "))


def _convert(tp: Any, value: Any, key: str, ctx: _Ctx, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _convert(inner[0], value, key, ctx, meta)
    if origin is Literal:
        if value not in args:
            raise ctx.err(key, f"{value!r} is not one of {', '.join(repr(a) for a in args)}")
        return value
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                value = [value]
            else:
                raise ctx.err(key, f"expected an array, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]", ctx, meta) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ctx.err(key, f"expected {len(args)} values, got {len(value)}")
        out = tuple(_convert(a, v, f"{key}[{i}]", ctx, meta) for i, (a, v) in enumerate(zip(args, value)))
        return out
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ctx.err(key, f"expected a table, got {value!r}")
        return _build(tp, value, key, ctx)
    if tp is dict:
        if not isinstance(value, dict):
            raise ctx.err(key, f"expected a table, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ctx.err(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ctx.err(key, f"expected an integer, got {value!r}")
        if meta.get("lo") is not None or meta.get("hi") is not None:
            _check_range(value, meta, key, ctx)
        return value
    if tp is float:
        unit = meta.get("unit")
        if unit:
            x = _quantity(value, unit, key, ctx)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            x = float(value)
        else:
            raise ctx.err(key, f"expected a number, got {value!r}")
        if x != x:
            raise ctx.err(key, "NaN is not allowed")
        if meta.get("lo") is not None or meta.get("hi") is not None:
            _check_range(x, meta, key, ctx)
        return x
    if tp is str:
        if not isinstance(value, str):
            raise ctx.err(key, f"expected a string, got {value!r}")
        if meta.get("path") and value:
            p = Path(os.path.expanduser(value))
            return str(p if p.is_absolute() else (ctx.base / p).resolve())
        return value
    raise TypeError(f"unsupported schema type {tp!r} for {key}")  # programming error


def _build(cls: type, data: dict, prefix: str, ctx: _Ctx) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ctx.err(full, f"unknown key (allowed here: {allowed})")
        kwargs[key] = _convert(hints[key], value, full, ctx, dict(fields[key].metadata))
    return cls(**kwargs)


def set_dotted(raw: dict, dotted: str, value: Any, source: str) -> None:
    """Set the dotted key ``dotted`` (e.g. ``fit.kmax``, ``spectra.2.file``) of the raw job table
    ``raw`` to ``value`` in place, creating tables on the way (a ``--set`` override); errors name
    ``source`` and the key (:class:`ConfigError`)."""
    parts = dotted.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise ConfigError(f"{source}: --set {dotted}: '{part}' is not an index of "
                                  f"'{'.'.join(parts[:i])}' (0..{len(node) - 1})") from None
            continue
        if part not in node:
            node[part] = {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"{source}: --set {dotted}: '{'.'.join(parts[:i + 1])}' is not a table")
    last = parts[-1]
    if isinstance(node, list):
        raise ConfigError(f"{source}: --set {dotted}: cannot replace an element of an array of tables")
    node[last] = value


def parse_override(text: str, source: str = "--set") -> tuple[str, Any]:
    """Split ``KEY=VALUE``; VALUE is read as a TOML value, else as a bare string."""
    if "=" not in text:
        raise ConfigError(f"{source}: --set '{text}': expected KEY=VALUE")
    key, val = text.split("=", 1)
    key, val = key.strip(), val.strip()
    key = re.sub(r"\[(\d+)\]", r".\1", key)  # spectra[2].file is spectra.2.file
    if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", key):
        raise ConfigError(f"{source}: --set '{text}': bad key (use a dotted key such as fit.replicates=200; "
                          "array elements as spectra.2.file=... or spectra[2].file=..., counted from 0)")
    try:
        value = tomllib.loads(f"v = {val}")["v"]
    except tomllib.TOMLDecodeError:
        value = val
    return key, value


def load_job(path: str | os.PathLike, overrides: tuple[str, ...] | list[str] = ()) -> Job:
    """Read, override and validate a job file.

    Parameters
    ----------
    path : path-like
        The TOML job file.
    overrides : sequence of str
        ``KEY=VALUE`` strings (dotted keys) applied before validation.

    Raises
    ------
    ConfigError
        One-line message naming the file and the key.
    """
    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: job file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read job file ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    for ov in overrides:
        key, value = parse_override(ov, source)
        set_dotted(raw, key, value, source)
    ctx = _Ctx(source, p.resolve().parent)
    job = _build(Job, raw, "", ctx)
    job = dataclasses.replace(job, source=source, text=text, overrides=tuple(overrides))
    _cross_check(job, ctx)
    return job


def _cross_check(job: Job, ctx: _Ctx) -> None:
    out = job.job.output
    if not out.strip():
        raise ctx.err("job.output", "empty: give the results file name, e.g. output = \"results.h5\"")
    if Path(out).is_dir():
        raise ctx.err("job.output", f"'{out}' is a directory: give a file name inside it")
    if Path(out).parent.exists() and not Path(out).parent.is_dir():
        raise ctx.err("job.output", f"'{Path(out).parent}' is not a directory")
    names = [s.name for s in job.spectra]
    for i, s in enumerate(job.spectra):
        if not s.name:
            raise ctx.err(f"spectra[{i}].name", "missing")
        if not s.file:
            raise ctx.err(f"spectra[{i}].file", "missing")
        bad = set(s.reduction) - {f.name for f in dataclasses.fields(ReductionSection)}
        if bad:
            raise ctx.err(f"spectra[{i}].reduction.{sorted(bad)[0]}", "unknown key")
        _build(ReductionSection, s.reduction, f"spectra[{i}].reduction", ctx)
    if len(set(names)) != len(names):
        raise ctx.err("spectra", "spectrum names must be unique")
    pnames = [p.name for p in job.paths]
    if len(set(pnames)) != len(pnames):
        raise ctx.err("paths", "path names must be unique")
    for i, p in enumerate(job.paths):
        if not p.name:
            raise ctx.err(f"paths[{i}].name", "missing")
        if p.source == "empirical":
            if p.reference not in names:
                raise ctx.err(f"paths[{i}].reference", f"'{p.reference}' is not a spectrum name ({', '.join(names)})")
            if p.rmin is None or p.rmax is None or p.rmin >= p.rmax:
                raise ctx.err(f"paths[{i}].rmin", "empirical paths need rmin < rmax (Å)")
        elif p.structure is None or p.scatterer is None:
            raise ctx.err(f"paths[{i}].structure", "FEFF paths need 'structure' and 'scatterer'")
        if p.structure is not None and p.structure not in CRYSTALS and not Path(job.resolve(p.structure)).is_file():
            raise ctx.err(f"paths[{i}].structure", f"'{p.structure}' is neither a structure file nor one of "
                          f"{', '.join(CRYSTALS)}")
    r = job.reduction
    if r.kmin >= r.kmax:
        raise ctx.err("reduction.kmin", f"kmin {r.kmin} must be below kmax {r.kmax}")
    if job.fit is not None:
        f = job.fit
        for s in f.samples:
            if s not in names:
                raise ctx.err("fit.samples", f"'{s}' is not a spectrum name")
        for pn in f.paths:
            if pn not in pnames:
                raise ctx.err("fit.paths", f"'{pn}' is not a path name")
        if f.rmin >= f.rmax:
            raise ctx.err("fit.rmin", "rmin must be below rmax")
        kmin = f.kmin if f.kmin is not None else r.kmin
        kmax = f.kmax if f.kmax is not None else r.kmax
        if kmin >= kmax:
            raise ctx.err("fit.kmin", f"the fit's kmin {kmin} must be below its kmax {kmax} (Å^-1)")
        from xasmpi.exafs.paths import kgrid
        kend = float(kgrid()[-1])
        if kmax + r.dk / 2 > kend:
            raise ctx.err("fit.kmax" if f.kmax is not None else "reduction.kmax",
                          f"{kmax:g} Å^-1 plus half the taper dk ({r.dk:g}) is beyond the path grid "
                          f"(k <= {kend:g} Å^-1); EXAFS data rarely reach past 16-18 Å^-1")
        for pn, tbl in f.params.items():
            if pn not in pnames:
                raise ctx.err(f"fit.params.{pn}", "not a path name")
            if not isinstance(tbl, dict):
                raise ctx.err(f"fit.params.{pn}", "expected a table")
            b = _build(ParamBounds, tbl, f"fit.params.{pn}", ctx)
            for key in ("n", "sigma2", "r_bounds"):
                v = getattr(b, key)
                if v is not None and not v[0] < v[1]:
                    raise ctx.err(f"fit.params.{pn}.{key}", f"bounds {list(v)} need low < high")
    if job.job.stages:
        from xasmpi.stages import NAMES

        for st in job.job.stages:
            if st not in NAMES:
                raise ctx.err("job.stages", f"unknown stage '{st}' (stages: {', '.join(NAMES)})")
    if job.analysis is not None:
        a = job.analysis
        if a.cn_path is not None and a.cn_path not in pnames:
            raise ctx.err("analysis.cn_path", f"'{a.cn_path}' is not a path of the job "
                          f"({', '.join(pnames) or 'no [[paths]]'})")
        if a.angle_paths and (len(a.angle_paths) != 2 or any(x not in pnames for x in a.angle_paths)):
            raise ctx.err("analysis.angle_paths", f"{list(a.angle_paths)} must be two paths of the job "
                          f"({', '.join(pnames) or 'no [[paths]]'})")
        from ase.data import atomic_numbers
        for el in a.elements:
            if el not in atomic_numbers:
                raise ctx.err("analysis.elements", f"'{el}' is not an element symbol")
    if job.xanes is not None:
        cnames = [c.name for c in job.xanes.candidates]
        for i, c in enumerate(job.xanes.candidates):
            if not c.name or (c.file is None) == (c.build is None):
                raise ctx.err(f"xanes.candidates[{i}]", "needs a name and exactly one of 'file' or 'build'")
            if c.name in RESERVED_CANDIDATES or "/" in c.name or cnames.count(c.name) > 1:
                raise ctx.err(f"xanes.candidates[{i}].name", f"'{c.name}' must be unique, without '/', and not "
                              f"one of {', '.join(RESERVED_CANDIDATES)}")
            if c.crystal and c.build is not None and (c.build.atoms or c.build.formula):
                raise ctx.err(f"xanes.candidates[{i}].build", "a crystal candidate takes no 'atoms'/'formula' cut")
        for m in job.xanes.measured:
            if m not in names:
                raise ctx.err("xanes.measured", f"'{m}' is not a spectrum name")
        for pair in job.xanes.calibrate:
            if len(pair) != 2 or pair[0] not in cnames or pair[1] not in job.xanes.measured:
                raise ctx.err("xanes.calibrate", f"{list(pair)}: expected [candidate, measured spectrum] pairs of this job")
    if job.rank is not None:
        known = [c.name for c in job.xanes.candidates] if job.xanes is not None else []
        if not known:
            raise ctx.err("rank", "needs [xanes] with [[xanes.candidates]] (the candidates to rank)")
        for c in job.rank.candidates:
            if c not in known:
                raise ctx.err("rank.candidates", f"'{c}' is not a xanes candidate")
        for s in job.rank.samples:
            if s not in names:
                raise ctx.err("rank.samples", f"'{s}' is not a spectrum name")
        for pair in job.rank.compare:
            if len(pair) != 2 or any(x not in names for x in pair):
                raise ctx.err("rank.compare", f"{list(pair)}: expected [sample, sample] pairs of spectrum names")
        for s in job.rank.joint_samples:
            if s not in names:
                raise ctx.err("rank.joint_samples", f"'{s}' is not a spectrum name")
        if job.rank.joint_samples and len(job.rank.joint_samples) < 2:
            raise ctx.err("rank.joint_samples", "a joint fit needs at least two samples")
        groups = set(names) | {p.name for p in job.paths} | {"global", "feff"}
        for col in job.rank.joint:
            head, _, tail = col.rpartition(".")
            if tail not in ("n", "sigma2", "r", "de0") or head not in groups:
                raise ctx.err("rank.joint", f"'{col}': expected a fitted column <path>.n|sigma2|r|de0 or "
                                            "<reference>.de0 (global.de0, feff.de0)")
        for key in ("s02", "sigma2", "de0"):
            lo, hi = getattr(job.rank, key)
            if not lo < hi:
                raise ctx.err(f"rank.{key}", f"bounds [{lo:g}, {hi:g}] need low < high")
    if job.relax is not None:
        known = [c.name for c in job.xanes.candidates] if job.xanes is not None else []
        for c in job.relax.candidates:
            if c not in known:
                raise ctx.err("relax.candidates", f"'{c}' is not a xanes candidate")


def param_bounds(job: Job, path: str) -> ParamBounds:
    """Validated ``[fit.params.<path>]`` table (defaults when absent)."""
    tbl = (job.fit.params if job.fit else {}).get(path, {})
    return _build(ParamBounds, tbl, f"fit.params.{path}", _Ctx(job.source, Path(job.source).parent))


def spectrum_reduction(job: Job, spec: SpectrumSpec) -> ReductionSection:
    """``[reduction]`` with the spectrum's own overrides applied."""
    if not spec.reduction:
        return job.reduction
    over = _build(ReductionSection, spec.reduction, f"spectra.{spec.name}.reduction",
                  _Ctx(job.source, Path(job.source).parent))
    return dataclasses.replace(job.reduction, **{k: getattr(over, k) for k in spec.reduction})
