"""Reading results files (the offline side: summary, report, post-processing).

Opening and checking a file is here; what its groups hold is read through
:mod:`xasmpi.store.layout`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from xasmpi.errors import ResultsError
from xasmpi.store import layout
from xasmpi.store.layout import LAYOUT_VERSION

__all__ = ["LAYOUT_VERSION", "open_results", "warnings_for", "parameter_uncertainties", "angle_systematic",
           "read_uncertainty", "summarize", "read_replicate_columns"]


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
    _verify_checksums(f, p)
    lv = int(f.attrs.get("layout_version", -1))
    if lv != LAYOUT_VERSION:
        v = f.attrs.get("xasmpi_version")
        f.close()
        raise ResultsError(f"{p}: results layout {lv} (xasmpi {v}) is not supported by this version "
                           f"(layout {LAYOUT_VERSION}); rerun the job with this version")
    return f


def _verify_checksums(f: h5py.File, p: Path) -> None:
    """Read every checksummed (fletcher32) dataset once: a flipped bit is an error, not a number."""
    bad: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.fletcher32 and not bad:
            try:
                obj[()]
            except OSError:
                bad.append(name)

    f.visititems(visit)
    if bad:
        f.close()
        raise ResultsError(f"{p}: dataset /{bad[0]} fails its checksum (fletcher32): the file is corrupted; "
                           "rerun `xasmpi run` on the job to rebuild it from the journals")


def warnings_for(f: h5py.File, path: str | os.PathLike) -> list[str]:
    """Loud, one-line warnings about what a results file is not: incomplete, stale stages."""
    out = []
    if str(path).endswith(".partial"):
        out.append(f"{path} is a .partial file: INCOMPLETE (a run is in progress or was interrupted); "
                   "rerun `xasmpi run` to finish it")
    elif not bool(f.attrs.get("complete", False)):
        out.append(f"{path}: INCOMPLETE results (complete = false)")
    stale = json.loads(_s(f.attrs.get("stale_stages", "[]")))
    if stale:
        out.append(f"{path}: STALE stage(s) {', '.join(stale)}: made with earlier settings than the job stored "
                   "in the file (see the 'stage_runs' attribute); rerun them")
    return out


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def parameter_uncertainties(g: h5py.Group) -> dict:
    """Every uncertainty term of the fitted parameters of one sample group ``/exafs/<s>``.

    Reads the best fit (``fit/{names, params, stderr, bounds}``), the successful replicates
    and the systematics stage's ``systematics/{sys, n_used}``, and applies the rules of
    :mod:`xasmpi.exafs.uncertainty`.  Returns ``{column: ParamUncertainty}`` in the fit's
    order; empty without a best fit.
    """
    from xasmpi.exafs.uncertainty import combine

    fit = layout.read_fit(g)
    if fit is None:
        return {}
    names = list(fit.names)
    rep = layout.read_replicates(g)
    reps, mode = (rep.values, rep.mode) if rep is not None and list(rep.names) == names else (None, "")
    sy = layout.read_systematics(g)
    sys, nvar = (sy.sys, sy.n_used) if sy is not None and sy.sys is not None and list(sy.names) == names \
        else (None, None)
    return {u.name: u for u in combine(names, fit.params, fit.stderr, fit.bounds, replicates=reps, mode=mode,
                                       sys=sys, n_variations=nvar)}


def angle_systematic(g: h5py.Group, c1: str, c2: str) -> float:
    """Systematic term (deg) of the bond angle 2·asin(R2/(2·R1)) of a sample group ``/exafs/<s>``:
    the angle of every systematic refit's (R1, R2) against the best fit's, combined by
    :func:`xasmpi.exafs.uncertainty.systematic_term` (NaN without systematic refits of both R)."""
    from xasmpi.analysis.angles import angle_from_shells
    from xasmpi.exafs.uncertainty import systematic_term

    sy, fit = layout.read_systematics(g), layout.read_fit(g)
    if sy is None or fit is None or sy.settings is None or c1 not in sy.names or c2 not in sy.names:
        return float("nan")
    i1, i2 = sy.names.index(c1), sy.names.index(c2)

    def angle(r1: float, r2: float) -> float:
        try:
            return angle_from_shells(float(r1), float(r2)).angle
        except Exception:  # noqa: BLE001 - failed refit (NaN) or no triangle: left out
            return float("nan")

    refit = np.array([[angle(r[i1], r[i2]) if o else np.nan] for r, o in zip(sy.params, sy.status == 1)])
    sys, _, _ = systematic_term(np.array([angle(fit.params[i1], fit.params[i2])]), refit.reshape(-1, 1),
                                list(sy.settings))
    return float(sys[0])


def read_uncertainty(path: str | os.PathLike, sample: str, column: str):
    """The :class:`~xasmpi.exafs.uncertainty.ParamUncertainty` of one fitted column of a
    sample (None when the file has no best fit with that column)."""
    with open_results(path) as f:
        g = f.get(f"exafs/{sample}")
        return None if g is None else parameter_uncertainties(g).get(column)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def summarize(path: str | os.PathLike) -> dict:
    """The JSON summary other tools rely on (see README, 'Results summary')."""
    with open_results(path) as f:
        out: dict = {"file": str(path), "xasmpi_version": _s(f.attrs["xasmpi_version"]),
                     "simulated": bool(f.attrs.get("simulated", False)),
                     "stages_done": json.loads(_s(f.attrs.get("stages_done", "[]"))),
                     "n_ranks": int(f.attrs.get("n_ranks", 0)), "samples": {}, "xanes": {},
                     "complete": bool(f.attrs.get("complete", False)) and not str(path).endswith(".partial"),
                     "stale_stages": json.loads(_s(f.attrs.get("stale_stages", "[]"))),
                     "stage_ranks": json.loads(_s(f.attrs.get("stage_ranks", "{}"))),
                     "versions": json.loads(_s(f.attrs.get("versions", "{}"))),
                     "warnings": warnings_for(f, path)}
        failed = 0
        if "tasks" in f:
            for st in f["tasks"].values():
                failed += int(st.attrs.get("n_failed", 0))
        out["failed_tasks"] = failed
        for name in layout.spectrum_names(f):
            g = f["exafs"][name]
            if "replicates" not in g and "fit" not in g:
                continue  # a reference, or a sample not fitted yet
            rep = layout.read_replicates(g)  # absent with fit.replicates = 0: best fit and systematics only
            status = rep.status if rep is not None else np.zeros(0, dtype=np.int8)
            ok = status == 1
            paths: dict = {}
            fit = layout.read_fit(g)
            fitted = list(fit.paths) if fit is not None else []
            if rep is not None:  # the fit stage's statistics (stats/), else the same computation here
                st = layout.read_stats(g)
                mean, sd = (st.mean, st.sd) if st is not None and st.names == rep.names else layout.mean_sd(rep.values)
                for n, m, e in zip(rep.names, mean, sd):
                    pth, par = layout.split_column(n)
                    if par == "de0" and fitted and pth not in fitted:
                        continue  # ΔE0 of a reference group: under "e0" below
                    key = layout.SUMMARY_KEYS.get(par, par)
                    d = paths.setdefault(pth, {})
                    d[f"{key}_mean"] = _num(m)
                    d[f"{key}_sd"] = _num(e)
            e0: dict = {}
            for col, u in parameter_uncertainties(g).items():
                pth, par = layout.split_column(col)
                key = layout.SUMMARY_KEYS.get(par, par)
                terms = {f"{key}_best": _num(u.best), f"{key}_stderr": _num(u.stderr),
                         f"{key}_mean": _num(u.mean), f"{key}_sd": _num(u.sd), f"{key}_sys": _num(u.sys),
                         f"{key}_total_sd": _num(u.total), f"{key}_flags": list(u.flags)}
                if par == "de0" and pth not in fitted:  # ΔE0 of a reference group (or 'global')
                    e0[pth] = terms
                else:
                    paths.setdefault(pth, {}).update(terms)
            s = {"paths": paths, "e0": e0, "replicates_done": int(ok.sum()),
                 "replicates_failed": int((status == -1).sum()),
                 "replicates_total": int(status.size), "mode": rep.mode if rep is not None else ""}
            if fit is not None:
                s["ssr_best"] = float(fit.attrs["ssr_k2"])
                s["rfactor_best"] = float(fit.attrs["rfactor"])
            feff = layout.read_feff_route(g)
            if feff is not None:
                s["ssr_feff"] = float(feff.attrs["ssr_k2"])
            sy = layout.read_systematics(g)
            if sy is not None and sy.labels is not None:
                s["systematics"] = {"variations": list(sy.labels), "ok": int((sy.status == 1).sum()), "rule": sy.rule}
            if fit is not None:
                s["e0_mode"] = _s(fit.attrs.get("e0_mode", ""))
            if "truth" in g:
                s["truth"] = json.loads(_s(g["truth"].attrs["values"]))
            out["samples"][name] = s
        if "xanes" in f:
            for cname, c in layout.read_candidates(f).items():
                out["xanes"][cname] = {"absorbers": c.absorbers, "absorbers_ok": c.absorbers_ok}
            if "comparison" in f["xanes"] and "ranking" in f["xanes/comparison"].attrs:
                out["xanes_ranking"] = layout.read_xanes_ranking(f)
        return out


def read_replicate_columns(
    path: str, sample: str | None, columns: list[str]
) -> tuple[dict[str, np.ndarray], int, str]:
    """Replicate values of ``columns`` (rows with status == 1) from a results file.

    Parameters
    ----------
    path : str
        Results HDF5 file.
    sample : str or None
        Sample name under ``/exafs``; None is allowed only if the file holds one sample.
    columns : list of str
        Parameter names such as ``"Cd-S.n"``.

    Returns
    -------
    (dict, int, str)
        ``{name: values}`` (aligned rows), the total number of replicate rows, and the
        sample name used.

    Raises
    ------
    ResultsError
        Missing file, sample, group, parameter, or no successful replicate.
    """
    with open_results(path) as f:
        if "exafs" not in f or not len(f["exafs"]):
            raise ResultsError(f"{path}: no '/exafs' results in the file (run the EXAFS stage first)")
        samples = sorted(f["exafs"].keys())
        if sample is None:
            if len(samples) != 1:
                raise ResultsError(f"{path}: give --sample (samples: {', '.join(samples)})")
            sample = samples[0]
        if sample not in f["exafs"]:
            raise ResultsError(f"{path}: no sample '{sample}' under /exafs (samples: {', '.join(samples)})")
        try:
            rep = layout.read_replicates(f["exafs"][sample])
        except ValueError as exc:
            raise ResultsError(f"{path}: {exc}") from None
    if rep is None:
        raise ResultsError(f"{path}: no '/exafs/{sample}/replicates' (params, status) in the results file")
    names = list(rep.names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ResultsError(
            f"{path}: sample '{sample}' has no fitted parameter {', '.join(repr(m) for m in missing)} "
            f"(parameters: {', '.join(names)})"
        )
    if not rep.ok.any():
        raise ResultsError(f"{path}: sample '{sample}' has no successful replicate (status == 1)")
    return {c: rep.column(c) for c in columns}, int(rep.status.size), sample
