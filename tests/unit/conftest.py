"""Helpers shared by the serial unit tests."""
from __future__ import annotations

import h5py
import numpy as np


def write_results(path, samples: dict, *, layout_version=None) -> None:
    """Minimal results file in the store's layout: /exafs/<sample>/replicates/{params,status}, attr names.

    ``samples`` maps a sample name to ``(names, params, status)``.
    """
    from xasmpi.store.layout import LAYOUT_VERSION

    with h5py.File(path, "w") as f:
        f.attrs["xasmpi_version"] = "test"
        f.attrs["layout_version"] = LAYOUT_VERSION if layout_version is None else layout_version
        for name, (names, params, status) in samples.items():
            g = f.create_group(f"exafs/{name}/replicates")
            g.create_dataset("params", data=np.asarray(params, dtype=float))
            g.attrs["names"] = np.array(names, dtype=h5py.string_dtype())
            g.create_dataset("status", data=np.asarray(status, dtype=np.int8))
