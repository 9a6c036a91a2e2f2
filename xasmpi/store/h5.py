"""The only HDF5 writer: parallel (mpio) when h5py has MPI, else rank-0 serial.

Parallel-HDF5 rules followed here: every rank takes part in every metadata operation
(file open/close, group and dataset creation/deletion, attributes) with identical
arguments; datasets are created once with their full shapes (never resized); the data
writes themselves are independent, each rank writing only its own rows.
"""
from __future__ import annotations

import fcntl
import logging
import os
import socket
from pathlib import Path

import h5py
import numpy as np

from xasmpi.errors import CampaignError
from xasmpi.parallel.tasks import FAILED, OK, StagePlan, TaskResult

log = logging.getLogger("xasmpi")

STATUS_ATTRS = {"meaning": "1 = ok, 0 = not run, -1 = failed"}


def mpio_available() -> bool:
    """True when h5py was built with MPI (and ``XASMPI_NO_MPIO`` is not set)."""
    return bool(h5py.get_config().mpi) and os.environ.get("XASMPI_NO_MPIO", "") in ("", "0")


def open_file(path: str | os.PathLike, comm=None, mode: str = "a") -> h5py.File:
    """Open ``path`` with the mpio driver on ``comm`` (collective), or serially if ``comm`` is None."""
    if comm is not None:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    return h5py.File(path, mode)


def hdf5_info() -> dict:
    """Versions and MPI support of h5py and its HDF5 (``{"h5py", "hdf5", "mpi"}``)."""
    return {"h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version, "mpi": bool(h5py.get_config().mpi)}


def read_root_attrs(path: str | os.PathLike) -> dict:
    """Root attributes of an HDF5 file (bytes decoded); OSError when it cannot be read."""
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy every object and root attribute of ``src`` into a new file ``dst`` (repacked: no space
    left by deleted or rewritten datasets)."""
    with h5py.File(src, "r") as fs, h5py.File(dst, "w") as fd:
        for key in fs:
            fs.copy(fs[key], fd, name=key)
        for k, v in fs.attrs.items():
            fd.attrs[k] = v


def _fill(dtype: np.dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "c":
        return complex(np.nan, np.nan)
    return 0


def write_dataset(g: h5py.Group, name: str, data, units: str | None = None, **attrs) -> h5py.Dataset:
    """(Re)write ``g[name]`` with ``data``, its ``units`` attribute and other attributes (serial use)."""
    if name in g:
        del g[name]
    d = g.create_dataset(name, data=data, **checksum_kw(data))
    if units:
        d.attrs["units"] = units
    d.attrs.update(attrs)
    return d


def checksum_kw(data) -> dict:
    """``fletcher32=True`` for numeric, non-scalar, non-empty data (HDF5's own checksum filter;
    a flipped bit then fails on reading instead of changing a number)."""
    arr = np.asarray(data) if not isinstance(data, h5py.Dataset) else data
    if arr.dtype.kind in "fiucb" and arr.ndim >= 1 and arr.size > 0:
        return {"fletcher32": True}
    return {}


def add_checksums(f: h5py.File, plan: StagePlan) -> None:
    """Rewrite the per-task datasets of ``plan`` with checksums (rank 0, serial, at the end of a
    stage: filters cannot be used while ranks write their rows independently through mpio)."""
    for group in plan.groups:
        if group not in f:
            continue
        g = f[group]
        for name in list(g):
            ds = g[name]
            if not isinstance(ds, h5py.Dataset) or ds.fletcher32 or not checksum_kw(ds):
                continue
            data, attrs = ds[()], dict(ds.attrs)
            del g[name]
            new = g.create_dataset(name, data=data, fletcher32=True)
            new.attrs.update(attrs)


def create_datasets(f: h5py.File, plan: StagePlan) -> None:
    """Create (collectively, full shapes) the per-task datasets of ``plan``, replacing old ones."""
    for group, nrows in plan.groups.items():
        if group in f:
            del f[group]
        g = f.require_group(group)
        for name, fld in plan.fields.items():
            ds = g.create_dataset(name, shape=(nrows,) + tuple(fld.shape), dtype=fld.dtype,
                                  fillvalue=_fill(fld.dtype))
            for k, v in fld.attrs.items():
                ds.attrs[k] = v
        st = g.create_dataset("status", shape=(nrows,), dtype="i1", fillvalue=0)
        st.attrs.update(STATUS_ATTRS)
        el = g.create_dataset("elapsed", shape=(nrows,), dtype="f4", fillvalue=np.nan)
        el.attrs["units"] = "s"
        rk = g.create_dataset("rank", shape=(nrows,), dtype="i4", fillvalue=-1)
        rk.attrs["meaning"] = "MPI rank that computed the task (-1: not run)"


def write_results(f: h5py.File, plan: StagePlan, tasks_by_index: dict, results: list[TaskResult]) -> None:
    """Write finished results into their rows (contiguous rows of one group in one write)."""
    by_group: dict[str, list] = {}
    for r in results:
        t = tasks_by_index[r.index]
        by_group.setdefault(t.group, []).append((t.row, r))
    for group, rows in by_group.items():
        rows.sort(key=lambda x: x[0])
        g = f[group]
        # split into runs of consecutive rows
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i][0] != rows[i - 1][0] + 1:
                run = rows[start:i]
                lo, hi = run[0][0], run[-1][0] + 1
                g["status"][lo:hi] = np.array([r.status for _, r in run], dtype="i1")
                g["elapsed"][lo:hi] = np.array([r.elapsed for _, r in run], dtype="f4")
                g["rank"][lo:hi] = np.array([r.rank for _, r in run], dtype="i4")
                for name, fld in plan.fields.items():
                    if all(r.status != OK for _, r in run):
                        continue
                    arr = np.full((hi - lo,) + tuple(fld.shape), _fill(fld.dtype), dtype=fld.dtype)
                    for j, (_, r) in enumerate(run):
                        if r.status == OK and name in r.values:
                            arr[j] = r.values[name]
                    g[name][lo:hi] = arr
                start = i


def write_failures(f: h5py.File, stage: str, plan: StagePlan, results: dict[int, TaskResult]) -> int:
    """Record the failed tasks of a stage under ``/tasks/<stage>`` (rank 0, serial). Returns their count."""
    tasks = {t.index: t for t in plan.tasks}
    bad = sorted(i for i, r in results.items() if r.status == FAILED and i in tasks)
    g = f.require_group(f"/tasks/{stage}")
    for name in ("failed_index", "failed_group", "failed_row", "failed_message"):
        if name in g:
            del g[name]
    str_t = h5py.string_dtype()
    g.create_dataset("failed_index", data=np.array(bad, dtype="i8"))
    g.create_dataset("failed_group", data=np.array([tasks[i].group for i in bad], dtype=object), dtype=str_t)
    g.create_dataset("failed_row", data=np.array([tasks[i].row for i in bad], dtype="i8"))
    g.create_dataset("failed_message", data=np.array([results[i].message for i in bad], dtype=object), dtype=str_t)
    g.attrs["n_tasks"] = len(plan.tasks)
    g.attrs["n_ok"] = sum(1 for i, r in results.items() if r.status == OK and i in tasks)
    g.attrs["n_failed"] = len(bad)
    return len(bad)


class OutputLock:
    """Exclusive lock on a results file (``<output>.lock``, ``flock``; released by the kernel on kill)."""

    def __init__(self, output: str | os.PathLike):
        self.path = Path(str(output) + ".lock")
        self._fh = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            who = fh.read().strip() or "another process"
            fh.close()
            raise CampaignError(f"{self.path.with_suffix('')}: another xasmpi run is writing this output "
                                f"({who}); wait for it to finish or choose another output") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
