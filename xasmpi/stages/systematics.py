"""``systematics`` stage: refits of every sample under the variations a careful analyst tries.

One task per (sample, variation), scattered over the ranks by the dynamic queue (the refits
are uneven: a re-reduced reference, re-extracted paths, one global DE fit each).  Task ``i``
gets ``SeedSequence(job.seed, spawn_key=(6, i))`` for its evolution; sample ``s`` owns the
indices ``s·n_var … (s+1)·n_var − 1`` in the order of :func:`variations`, so results are the
same for any rank count and journalled tasks are not recomputed on resume.

Variations (``[fit.systematics]``; a shift of 0 leaves that kind out):

* ``E0(<ref>)``: the reference spectrum's E0 moved by ± ``e0_shift`` (the reference is
  re-reduced with that E0 and its paths re-extracted; the fit's own ΔE0 setting is kept, so
  with ``fit.e0 = "per-reference"`` a pure k-scale shift is absorbed and what remains is the
  change of background and extracted F(k), δ(k));
* ``fit rmin`` / ``fit rmax``: the fit window's edge moved by ± ``window_shift`` together with
  every extraction window edge that sits on it (the windows keep tiling the fit window);
* ``edge <ref> <R>``: an inner extraction-window edge shared by paths of one reference moved
  by ± ``window_shift``;
* ``kmin``: fit and extraction kmin moved by ± ``kmin_shift``; ``kmax``: both lowered by
  ``kmax_shift``; ``k weight``: fit and extraction k weight set to each of ``kweights``;
* ``extraction``: the paths extracted by the other method of ``fit.extraction`` (Fourier
  filtering vs FEFF-anchored separation of the shells), where a reference's paths all have
  ``structure`` and ``scatterer``: the two attribute the neighbour shells' tails differently,
  and their difference is the leakage uncertainty (``[fit.systematics] extraction``);
* ``scan(<ref>)``: each file in the reference's ``alternatives`` in place of its scan.

Paths are always re-extracted through :func:`xasmpi.stages.reduce.paths` (the one
extraction).  The systematic term and its rule are in :mod:`xasmpi.exafs.uncertainty`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError
from xasmpi.stages import fit as fit_stage
from xasmpi.stages import reduce as reduce_stage
from xasmpi.parallel.tasks import OK, Field, StagePlan, Task, TaskResult, failed, seed_for

STAGE_ID = 6
log = logging.getLogger("xasmpi")
_TOL = 1e-6


@dataclass(frozen=True)
class Variation:
    """One systematic refit setting.

    Attributes
    ----------
    label : str
        Human-readable, e.g. ``"E0(CdS_bulk) +1 eV"``.
    setting : str
        The setting it varies (the ± variations of one setting share it), e.g. ``"E0(CdS_bulk)"``.
    changes : dict
        JSON-able description: ``{"e0": {ref: eV}}``, ``{"fit": {key: value}, "reduction": {...},
        "paths": {path: {"rmin"|"rmax": Å}}}``, ``{"file": {ref: path}}``.
    """

    label: str
    setting: str
    changes: dict


def _fit_paths(job: Job) -> list:
    names = list(job.fit.paths) if job.fit.paths else [p.name for p in job.paths]
    return [job.path(n) for n in names]


def variations(job: Job, base_e0: dict[str, float]) -> list[Variation]:
    """The variations of the job, in a fixed order.

    Parameters
    ----------
    job : Job
    base_e0 : dict
        E0 (eV) of each reference in the base reduction (NaN for χ(k) input: no E0 variation).
    """
    f, red, s = job.fit, job.reduction, job.fit.systematics
    emp = [p for p in _fit_paths(job) if p.source == "empirical"]
    refs = list(dict.fromkeys(p.reference for p in emp))
    out: list[Variation] = []
    if s.e0_shift > 0:
        for ref in refs:
            e0 = base_e0.get(ref, np.nan)
            if not np.isfinite(e0):
                continue
            for sign in (+1, -1):
                out.append(Variation(f"E0({ref}) {sign * s.e0_shift:+g} eV", f"E0({ref})",
                                     {"e0": {ref: e0 + sign * s.e0_shift}}))
    if s.window_shift > 0:
        d = s.window_shift
        for key, edge in (("rmin", f.rmin), ("rmax", f.rmax)):
            for sign in (+1, -1):
                new = edge + sign * d
                if not 0 <= new or (key == "rmin" and new >= f.rmax) or (key == "rmax" and new <= f.rmin):
                    continue
                pch = {}
                for p in emp:  # edges on the fit window's edge move with it; none is left outside
                    for pk in ("rmin", "rmax"):
                        val = getattr(p, pk)
                        if abs(val - edge) < _TOL or (key == "rmin" and val < new) or (key == "rmax" and val > new):
                            pch.setdefault(p.name, {})[pk] = new
                out.append(Variation(f"fit {key} {sign * d:+g} Å", f"fit {key}",
                                     {"fit": {key: new}, "paths": pch}))
        for ref in refs:
            mine = [p for p in emp if p.reference == ref]
            edges = sorted({round(getattr(p, k), 6) for p in mine for k in ("rmin", "rmax")})
            for x in edges:
                if abs(x - f.rmin) < _TOL or abs(x - f.rmax) < _TOL:
                    continue
                for sign in (+1, -1):
                    if not f.rmin < x + sign * d < f.rmax:
                        continue
                    pch = {}
                    for p in mine:
                        for pk in ("rmin", "rmax"):
                            if abs(getattr(p, pk) - x) < _TOL:
                                pch.setdefault(p.name, {})[pk] = x + sign * d
                    if any(ch.get("rmin", p_.rmin) >= ch.get("rmax", p_.rmax)
                           for p_ in mine for ch in [pch.get(p_.name, {})]):
                        continue
                    out.append(Variation(f"edge {ref} {x:g} Å {sign * d:+g} Å", f"edge {ref} {x:g} Å",
                                         {"paths": pch}))
    kmin = f.kmin if f.kmin is not None else red.kmin
    kmax = f.kmax if f.kmax is not None else red.kmax
    if s.kmin_shift > 0:
        for sign in (+1, -1):
            new = kmin + sign * s.kmin_shift
            if new < 0 or new >= kmax - 1.0:
                continue
            out.append(Variation(f"kmin {sign * s.kmin_shift:+g} Å^-1", "kmin",
                                 {"fit": {"kmin": new}, "reduction": {"kmin": red.kmin + sign * s.kmin_shift}}))
    if s.kmax_shift > 0 and kmax - s.kmax_shift > kmin + 1.0:
        out.append(Variation(f"kmax {-s.kmax_shift:+g} Å^-1", "kmax",
                             {"fit": {"kmax": kmax - s.kmax_shift}, "reduction": {"kmax": red.kmax - s.kmax_shift}}))
    for w in s.kweights:
        if w != f.kweight:
            out.append(Variation(f"k weight {w}", "k weight", {"fit": {"kweight": w}, "reduction": {"kweight": w}}))
    if s.extraction and f.space != "k":
        if reduce_stage.any_anchorable(_fit_paths(job)):
            other = "anchored" if f.extraction == "fourier" else "fourier"
            out.append(Variation(f"extraction {other}", "extraction", {"fit": {"extraction": other}}))
    for ref in refs:
        for alt in job.spectrum(ref).alternatives:
            out.append(Variation(f"scan({ref}) {alt}", f"scan({ref})", {"file": {ref: alt}}))
    return out


def varied_job(job: Job, v: Variation) -> Job:
    """The job with one variation applied (not re-validated: the values come from a valid job)."""
    ch = v.changes
    fit = dataclasses.replace(job.fit, **ch.get("fit", {}))
    red = dataclasses.replace(job.reduction, **{k: val for k, val in ch.get("reduction", {}).items()
                                                if k != "kmin" or val >= 0})
    paths = tuple(dataclasses.replace(p, **ch.get("paths", {}).get(p.name, {})) for p in job.paths)
    spectra = []
    for sp in job.spectra:
        if sp.name in ch.get("e0", {}):
            sp = dataclasses.replace(sp, reduction={**sp.reduction, "e0": float(ch["e0"][sp.name])})
        if sp.name in ch.get("file", {}):
            sp = dataclasses.replace(sp, file=ch["file"][sp.name], alternatives=())
        spectra.append(sp)
    return dataclasses.replace(job, fit=fit, reduction=red, paths=paths, spectra=tuple(spectra))


def _reduced_for(vjob: Job, v: Variation, base: dict, raw: dict) -> dict:
    """Reduced spectra of a varied job: the samples' as in the base run, the references of the
    fitted empirical paths re-reduced when their settings (or file) change."""
    from xasmpi.exafs.reduce import reduce_spectrum

    out = dict(base)
    refs = dict.fromkeys(p.reference for p in _fit_paths(vjob) if p.source == "empirical")
    for ref in refs:
        spec = vjob.spectrum(ref)
        st = reduce_stage.settings_for(vjob, spec)
        new_file = ref in v.changes.get("file", {})
        if "e0" not in spec.reduction and not new_file and np.isfinite(base[ref].e0):
            st = dataclasses.replace(st, e0=float(base[ref].e0))  # the base run's E0 (also with shared_e0)
        if not new_file and st == base[ref].settings:
            continue
        out[ref] = reduce_spectrum(reduce_stage.read_spec(spec) if new_file else raw[ref], st)
    return out


_MODELS: dict = {}


def _model(ctx: dict, vi: int):
    """Path model of variation ``vi`` (built once per process and shared by the samples)."""
    key = (ctx["key"], vi)
    if key not in _MODELS:
        v = ctx["variations"][vi]
        vjob = varied_job(ctx["job"], v)
        cache = {"reduced": _reduced_for(vjob, v, ctx["reduced"], ctx["spectra"]),
                 "spectra": ctx["spectra"], "feff_runs": dict(ctx["feff_runs"]), "variation": v.label}
        paths = reduce_stage.paths(vjob, cache)
        ctx["feff_runs"].update(cache["feff_runs"])   # FEFF runs (e.g. the anchored extraction's) are reused
        _MODELS[key] = fit_stage.model_for(vjob, paths)
    return _MODELS[key]


def plan(job: Job, cache: dict) -> StagePlan:
    if job.fit is None:
        raise ConfigError(f"{job.source}: stage 'systematics' needs a [fit] section")
    red = reduce_stage.reduced(job, cache)
    paths = reduce_stage.paths(job, cache)
    names = fit_stage.samples(job)
    base_model = fit_stage.model_for(job, paths)
    cols = fit_stage.column_names(base_model)
    base_e0 = {n: float(r.e0) for n, r in red.items()}
    # the variations refit with the run's extraction method ("auto" resolved by the reduce stage)
    job_fp = job.fingerprint("systematics")
    job = dataclasses.replace(job, fit=dataclasses.replace(job.fit, extraction=reduce_stage.extraction(job, cache)))
    vs = variations(job, base_e0)
    if not vs:
        log.info("systematics: no variation configured ([fit.systematics] shifts are all 0)")
    tasks, groups = [], {}
    for s_i, name in enumerate(names):
        group = f"/exafs/{name}/systematics"
        groups[group] = len(vs)
        tasks += [Task(index=s_i * len(vs) + i, group=group, row=i, payload=(name, i)) for i in range(len(vs))]
    ctx = {"job": job, "reduced": red, "spectra": cache.get("spectra", {}), "feff_runs": cache.get("feff_runs", {}),
           "variations": vs, "columns": cols, "key": job_fp, "seed": job.job.seed}
    fields = {"params": Field((len(cols),), "f8"), "ssr_k2": Field((), "f8", {"units": "Å^-4"}),
              "rfactor": Field((), "f8")}
    log.info("systematics: %d variations x %d sample(s) = %d refits", len(vs), len(names), len(tasks))
    return StagePlan(stage="systematics", tasks=tasks, fields=fields, groups=groups,
                     context=ctx, schedule="dynamic", batch=1, owned=tuple(groups),
                     extra={"variations": vs, "columns": cols})


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    from xasmpi.exafs.fit import fit

    out = []
    for t in tasks:
        name, vi = t.payload
        try:
            model = _model(ctx, vi)
            data = fit_stage.fit_data(model, ctx["reduced"][name])
            seed = int(seed_for(ctx["seed"], STAGE_ID, t.index).generate_state(1)[0])
            res = fit(model, data, settings=fit_stage.de_settings(ctx["job"], seed=seed))
        except Exception as exc:  # recorded as a failed refit; the term is computed without it
            out.append(failed(t.index, f"{ctx['variations'][vi].label}: {type(exc).__name__}: {exc}"))
            continue
        got = dict(zip(fit_stage.column_names(model), res.params))
        params = np.array([got.get(c, np.nan) for c in ctx["columns"]], dtype=float)
        out.append(TaskResult(t.index, OK, {"params": params, "ssr_k2": res.ssr_k2, "rfactor": res.rfactor}))
    return out


def finalize(job: Job, plan: StagePlan, fh, results: dict) -> None:
    from xasmpi.exafs.uncertainty import SYS_RULE, systematic_term
    from xasmpi.store.h5 import write_dataset
    from xasmpi.store.results import parameter_uncertainties

    vs, cols = plan.extra["variations"], plan.extra["columns"]
    for group in plan.groups:
        name = group.split("/")[2]
        g = fh[group]
        fitg = fh.get(f"/exafs/{name}/fit")
        if fitg is None:
            raise ConfigError(f"{job.source}: stage 'systematics' needs the best fit of '{name}': run the fit stage first")
        best_names = list(fitg["names"].asstr()[:])
        if best_names != cols:
            raise ConfigError(f"{job.source}: the best fit of '{name}' in the file has parameters {best_names}, the "
                              f"job's model {cols}: rerun the fit stage")
        best = fitg["params"][:]
        refits = np.where((g["status"][:] == OK)[:, None], g["params"][:], np.nan)
        sys, shift, n_used = systematic_term(best, refits, [v.setting for v in vs])
        for key in ("sys", "shift", "n_used"):
            if key in g:
                del g[key]
        g.attrs.update({"names": cols, "rule": SYS_RULE,
                        "variations": json.dumps([dataclasses.asdict(v) for v in vs], default=str),
                        "labels": [v.label for v in vs], "settings": [v.setting for v in vs]})
        write_dataset(g, "sys", sys, what="systematic term per parameter (units of each parameter)")
        write_dataset(g, "shift", shift, what="refit - best fit, per variation and parameter")
        write_dataset(g, "n_used", n_used, what="finite refits per parameter")
        n_bad = int((g["status"][:] != OK).sum())
        log.info("systematics %s: %d/%d refits ok%s", name, len(vs) - n_bad, len(vs),
                 f" ({n_bad} failed: left out of the systematic term)" if n_bad else "")
        for u in parameter_uncertainties(fh[f"/exafs/{name}"]).values():
            j = cols.index(u.name)
            col = np.abs(shift[:, j])
            worst = vs[int(np.nanargmax(col))].label if np.isfinite(col).any() else "-"
            log.info("  %s", describe(u) + f"; largest shift: {worst}")


def describe(u) -> str:
    """One log line of a :class:`~xasmpi.exafs.uncertainty.ParamUncertainty`."""
    rep = (f"{u.mode} replicates {u.mean:.4g} ± {u.sd:.2g} (n={u.n_replicates})" if u.n_replicates
           else "no replicates")
    if u.mode == "restart" and u.n_replicates:
        rep += " [restart: optimiser stability, not an uncertainty]"
    flags = f" [{', '.join(u.flags)}]" if u.flags else ""
    return (f"{u.name}: best {u.best:.4g} ± {u.stderr:.2g} (stderr), {rep}, systematic {u.sys:.2g}, "
            f"total {u.total:.2g}{flags}")
