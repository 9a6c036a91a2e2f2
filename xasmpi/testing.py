"""Helpers shared by the test suite, benchmarks and validation scripts."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def xaslib_dir() -> Path:
    """Folder with the real Cd K-edge spectra (``../shared/data/xaslib`` beside the repository).

    Override with the ``XASMPI_XASLIB`` environment variable.  Raises ``FileNotFoundError``
    with a clear message when absent; the data are never copied into the repository.
    """
    d = Path(os.environ.get("XASMPI_XASLIB", REPO.parent / "shared" / "data" / "xaslib"))
    if not (d / "CdS_10K_01.xdi").is_file():
        raise FileNotFoundError(
            f"real XAS data not found in {d}: put ../shared beside the repository "
            "or set XASMPI_XASLIB to the folder holding CdS_10K_01.xdi")
    return d


def mixture_problem(x: float = 0.5):
    """The reference benchmark problem on real data: 3 paths, q space, 6 free parameters.

    Paths from the ``_01`` scans with extraction windows that tile the fit window
    (Cd–S 1.2–3.5 Å from CdS; Cd–O 1.2–2.45 Å and Cd–Cd 2.45–3.5 Å from CdO; boxcar R windows),
    k 2–14 Å⁻¹, k², R 1.2–3.5 Å; the data are the real-data mixture
    ``x·χ(CdS_10K_02) + (1 − x)·χ(CdO_10K_02)`` (known answer N(Cd–S) = 4x, N(Cd–O) = 6(1 − x),
    N(Cd–Cd 3.32 Å) = 12(1 − x)).

    Returns
    -------
    (PathModel, ndarray, dict)
        The model, the mixture χ(k), and the reduced spectra by scan name.
    """
    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.model import FitSpace, PathModel
    from xasmpi.exafs.paths import extract_path
    from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum

    d = xaslib_dir()
    st = ReductionSettings(kmax=14.0)
    red = {nm: reduce_spectrum(read_spectrum(d / f"{nm}.xdi"), st)
           for nm in ("CdS_10K_01", "CdS_10K_02", "CdO_10K_01", "CdO_10K_02")}
    ps = extract_path(red["CdS_10K_01"], name="Cd-S", n=4, r=2.53, sigma2=0.003, rmin=1.2, rmax=3.5, dr=0)
    po = extract_path(red["CdO_10K_01"], name="Cd-O", n=6, r=2.348, sigma2=0.004, rmin=1.2, rmax=2.45, dr=0)
    pc = extract_path(red["CdO_10K_01"], name="Cd-Cd", n=12, r=3.32, sigma2=0.004, rmin=2.45, rmax=3.5, dr=0)
    model = PathModel.build([po, ps, pc], space=FitSpace(kind="q", kmin=2, kmax=14, rmin=1.2, rmax=3.5), nk=344)
    data = x * red["CdS_10K_02"].chi + (1 - x) * red["CdO_10K_02"].chi
    return model, data, red


#: scans of the μ(E)-level real-data mixtures (the ``_01`` scans give the paths)
MIXTURE_SCANS = ("CdS_10K_02", "CdO_10K_02")


def mixture_truth(x: float) -> dict:
    """Known answer of a CdS/CdO mixture of weight ``x`` (CdS): ``{path: {"n", "r"}}`` (Å).

    N(Cd–S) = 4x at 2.53 Å, N(Cd–O) = 6(1 − x) at 2.348 Å, N(Cd–Cd) = 12(1 − x) at 3.32 Å (CdO's
    second shell; the path name of ``jobs/examples/mixture.toml``), N(Cd–Cd(CdS)) = 12x at
    4.13 Å; σ² equal to the references' (see ``../shared/data/xaslib/README.md``).
    """
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"mixture weight x must be in [0, 1], got {x}")
    return {"Cd-S": {"n": 4 * x, "r": 2.53}, "Cd-O": {"n": 6 * (1 - x), "r": 2.348},
            "Cd-Cd": {"n": 12 * (1 - x), "r": 3.32}, "Cd-Cd(CdS)": {"n": 12 * x, "r": 4.13}}


def mixture_mu(x: float, *, scans: tuple[str, str] = MIXTURE_SCANS):
    """A real-data CdS/CdO mixture made at the μ(E) level: ``x·norm_CdS + (1 − x)·norm_CdO``.

    Each scan is normalised by the product's reduction (larch ``pre_edge`` with its own E0,
    :func:`xasmpi.exafs.reduce.reduce_spectrum` defaults); the CdO one is interpolated onto the
    CdS energies (their common range).  The mixture's edge therefore sits between the two, 1–2
    eV from each reference's E0, as for a real two-phase sample.

    Returns
    -------
    (ndarray, ndarray)
        Energy (eV) and normalised μ(E) (edge step ≈ 1).
    """
    import numpy as np

    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import reduce_spectrum

    if not 0.0 <= x <= 1.0:
        raise ValueError(f"mixture weight x must be in [0, 1], got {x}")
    d = xaslib_dir()
    s, o = (reduce_spectrum(read_spectrum(d / f"{nm}.xdi")) for nm in scans)
    keep = (s.energy >= o.energy[0]) & (s.energy <= o.energy[-1])
    e = s.energy[keep]
    return e, x * s.norm[keep] + (1 - x) * np.interp(e, o.energy, o.norm)


def write_mixture(path: str | os.PathLike, x: float, *, scans: tuple[str, str] = MIXTURE_SCANS) -> Path:
    """Write :func:`mixture_mu` as an XDI file (columns ``energy mu``) with its known answer.

    The header holds the truth (:func:`mixture_truth`) in the ``# Xasmpi.truth:`` field read by
    :func:`xasmpi.demo.generate.read_truth` (so the results file and the report show recovered vs
    true values) and says that the file is a mixture of measured spectra.  Read it with
    ``absorbance = "mu"``.
    """
    from xasmpi.demo.generate import write_xdi

    e, mu = mixture_mu(x, scans=scans)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_xdi(p, e, mu, name=p.stem, truth=mixture_truth(x),
              info={"mixture": True, "x": x, "scans": list(scans), "level": "normalised mu(E)"},
              comment=f"x = {x:g} x norm({scans[0]}) + {1 - x:g} x norm({scans[1]}) from "
                      f"{xaslib_dir()}; known answer N(Cd-S) = 4x, N(Cd-O) = 6(1-x), "
                      f"N(Cd-Cd 3.32 A) = 12(1-x), N(Cd-Cd 4.13 A) = 12x",
              simulated=False)
    return p
