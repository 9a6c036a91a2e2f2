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
