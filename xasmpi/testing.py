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
