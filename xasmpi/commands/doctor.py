"""``xasmpi doctor``: one line per component the jobs need; non-zero exit if one is missing."""
from __future__ import annotations

import importlib
import os


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check MPI, parallel HDF5, FDMNES, FEFF and library versions",
                       description="One line per component. Exits non-zero when something required is "
                                   "missing; with JOB, FDMNES is required when the job has a xanes stage.")
    p.add_argument("job", nargs="?", help="job file whose needs to check (optional)")
    p.add_argument("--fdmnes", help="FDMNES binary to check (else the job/env/PATH/bundled search)")
    p.add_argument("--no-smoke", action="store_true", help="don't run the FDMNES smoke test")
    p.set_defaults(func=run)


def _line(ok: bool | None, what: str, detail: str) -> bool:
    mark = {True: "ok  ", False: "FAIL", None: "warn"}[ok]
    print(f"[{mark}] {what:<14s} {detail}")
    return ok is not False


def run(args) -> int:
    good = True
    fdmnes_cfg, need_fdmnes = args.fdmnes, False
    if args.job:
        from xasmpi.config import load_job

        job = load_job(args.job)
        need_fdmnes = "xanes" in job.configured_stages
        if job.xanes is not None and not fdmnes_cfg:
            fdmnes_cfg = job.xanes.fdmnes
    try:
        from xasmpi.parallel.comm import mpi_library, mpi_versions
        lib, standard = mpi_library()
        good &= _line(True, "MPI", f"{lib} (MPI {standard}, " + ", ".join(f"{k} {v}" for k, v in mpi_versions().items())
                      + ")")
    except Exception as exc:  # noqa: BLE001 - report anything
        good &= _line(False, "MPI", f"MPI unusable: {type(exc).__name__}: {exc}")
    try:
        from xasmpi.store.h5 import hdf5_info

        info = hdf5_info()
        mpi = info["mpi"]
        _line(True if mpi else None, "parallel HDF5",
              f"h5py {info['h5py']}, HDF5 {info['hdf5']}, MPI "
              + ("yes (mpio driver)" if mpi else "NO: results will be gathered on rank 0 (see README, 'Cluster installs')"))
    except Exception as exc:  # noqa: BLE001
        good &= _line(False, "HDF5", f"h5py unusable: {exc}")
    try:
        from xasmpi.xanes.fdmnes import find_fdmnes, smoke_test
        path, how = find_fdmnes(fdmnes_cfg)
        if args.no_smoke:
            _line(True, "FDMNES", f"{path} (from {how}; not run)")
        else:
            smoke_test(path)
            _line(True, "FDMNES", f"{path} (from {how}; smoke test ran)")
    except ImportError:
        _line(None, "FDMNES", "xanes module not available in this build")
    except Exception as exc:  # noqa: BLE001
        if need_fdmnes:
            good &= _line(False, "FDMNES", f"{exc} (the job's xanes stage needs it)")
        else:
            _line(None, "FDMNES", f"{exc} (needed only for the xanes stage)")
    try:
        from larch.xafs.feffrunner import find_exe
        found = {n: find_exe(n) for n in ("feff6l", "feff8l_pot")}
        miss = [n for n, p in found.items() if not p]
        good &= _line(not miss, "FEFF", ", ".join(f"{n}: {p or 'MISSING'}" for n, p in found.items()))
    except Exception as exc:  # noqa: BLE001
        good &= _line(False, "FEFF", f"larch FEFF runner unusable: {exc}")
    vers = []
    for mod in ("numpy", "scipy", "larch", "ase", "matplotlib"):
        try:
            vers.append(f"{mod} {importlib.import_module(mod).__version__}")
        except Exception as exc:  # noqa: BLE001
            good &= _line(False, mod, f"cannot import: {exc}")
    _line(True, "libraries", ", ".join(vers))
    threads = os.environ.get("OMP_NUM_THREADS")
    _line(True, "threads", f"OMP_NUM_THREADS={threads} per rank")
    return 0 if good else 1
