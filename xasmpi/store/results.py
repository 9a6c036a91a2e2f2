"""Reading results files (the offline side: summary, report, post-processing)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from xasmpi.errors import ResultsError

LAYOUT_VERSION = 1


def open_results(path: str | os.PathLike) -> h5py.File:
    """Open a results file read-only, checking it is an xasmpi file of a readable layout."""
    p = Path(path)
    if not p.is_file():
        partial = p.with_name(p.name + ".partial")
        hint = " (a run is in progress or was interrupted: rerun `xasmpi run` to finish it)" if partial.exists() else ""
        raise ResultsError(f"{p}: results file not found{hint}")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ResultsError(f"{p}: not a readable HDF5 file ({exc})") from None
    if "xasmpi_version" not in f.attrs:
        f.close()
        raise ResultsError(f"{p}: not an xasmpi results file (no 'xasmpi_version' attribute)")
    lv = int(f.attrs.get("layout_version", -1))
    if lv != LAYOUT_VERSION:
        v = f.attrs.get("xasmpi_version")
        f.close()
        raise ResultsError(f"{p}: results layout {lv} (xasmpi {v}) is not supported by this version "
                           f"(layout {LAYOUT_VERSION}); rerun the job with this version")
    return f


def require(f: h5py.File, name: str, what: str = "") -> h5py.Group | h5py.Dataset:
    """``f[name]`` or a clear :class:`ResultsError` saying which stage produces it."""
    if name not in f:
        raise ResultsError(f"{f.filename}: no '{name}' in the results file{(' (' + what + ')') if what else ''}")
    return f[name]


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def sample_names(f: h5py.File) -> list[str]:
    return sorted(f["exafs"].keys()) if "exafs" in f else []


def summarize(path: str | os.PathLike) -> dict:
    """The JSON summary other tools rely on (see README, 'Results summary')."""
    with open_results(path) as f:
        out: dict = {"file": str(path), "xasmpi_version": _s(f.attrs["xasmpi_version"]),
                     "simulated": bool(f.attrs.get("simulated", False)),
                     "stages_done": json.loads(_s(f.attrs.get("stages_done", "[]"))),
                     "n_ranks": int(f.attrs.get("n_ranks", 0)), "samples": {}, "xanes": {}}
        failed = 0
        if "tasks" in f:
            for st in f["tasks"].values():
                failed += int(st.attrs.get("n_failed", 0))
        out["failed_tasks"] = failed
        for name in sample_names(f):
            g = f["exafs"][name]
            if "replicates" not in g:
                continue
            rep = g["replicates"]
            names = [_s(n) for n in rep.attrs["names"]]
            status = rep["status"][:]
            ok = status == 1
            params = rep["params"][:][ok]
            paths: dict = {}
            for j, n in enumerate(names):
                pth, par = n.rsplit(".", 1)
                key = {"n": "N", "sigma2": "sigma2", "r": "R", "de0": "dE0"}.get(par, par)
                col = params[:, j]
                d = paths.setdefault(pth, {})
                d[f"{key}_mean"] = float(np.mean(col)) if col.size else None
                d[f"{key}_sd"] = float(np.std(col, ddof=1)) if col.size > 1 else None
            s = {"paths": paths, "replicates_done": int(ok.sum()),
                 "replicates_failed": int((status == -1).sum()),
                 "replicates_total": int(status.size), "mode": _s(rep.attrs.get("mode", ""))}
            if "fit" in g:
                s["ssr_best"] = float(g["fit"].attrs["ssr_k2"])
                s["rfactor_best"] = float(g["fit"].attrs["rfactor"])
            if "feff" in g:
                s["ssr_feff"] = float(g["feff"].attrs["ssr_k2"])
            if "truth" in g:
                s["truth"] = json.loads(_s(g["truth"].attrs["values"]))
            out["samples"][name] = s
        if "xanes" in f:
            for cname, g in f["xanes"].items():
                if cname == "comparison" or "mu" not in g:
                    continue
                out["xanes"][cname] = {"absorbers": int(g["absorbers/status"].size) if "absorbers" in g else 0,
                                       "absorbers_ok": int((g["absorbers/status"][:] == 1).sum()) if "absorbers" in g else 0}
            if "comparison" in f["xanes"]:
                cmp_ = f["xanes/comparison"]
                if "ranking" in cmp_.attrs:
                    out["xanes_ranking"] = json.loads(_s(cmp_.attrs["ranking"]))
        return out
