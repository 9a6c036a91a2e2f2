"""``fit`` stage: the best model-free fit of each sample, then its replicate fits.

Replicates are the tasks.  Sample ``s`` owns the global task indices
``offset_s … offset_s + n_rep − 1`` (offsets are multiples of ``fit.chunk``), so the fixed
global chunks never mix samples, and replicate ``i`` of every run, whatever the rank count,
gets ``SeedSequence(job.seed, spawn_key=(2, offset_s + i))``.
"""
from __future__ import annotations

import json
import logging

import numpy as np

from xasmpi.store import layout
from xasmpi.config import Job, param_bounds
from xasmpi.errors import ConfigError, InputError
from xasmpi.stages import reduce as reduce_stage
from xasmpi.parallel.tasks import OK, Field, StagePlan, Task, TaskResult, failed, seed_for

STAGE_ID = 2
log = logging.getLogger("xasmpi")
UNITS = layout.UNITS


def samples(job: Job) -> list[str]:
    f = job.fit
    return list(f.samples) if f.samples else [s.name for s in job.spectra if s.role == "sample"]


#: ``fit.e0`` -> :meth:`PathModel.build` ``de0_mode``
E0_MODES = {"fixed": "none", "global": "global", "per-path": "per_path", "per-reference": "group"}


def de0_group(job: Job, path: str) -> str:
    """ΔE0 group of a fitted path under ``fit.e0 = "per-reference"``: the name of the reference
    spectrum an empirical path is extracted from, ``"feff"`` for a FEFF path."""
    spec = job.path(path)
    return spec.reference if spec.source == "empirical" else "feff"


def model_for(job: Job, paths: dict, *, e0: str | None = None):
    """The :class:`~xasmpi.exafs.model.PathModel` of ``[fit]`` over the given paths.

    ``e0`` overrides ``fit.e0`` ("per-reference", "fixed", "global", "per-path").  With
    "per-reference" the paths share one ΔE0 per :func:`de0_group` of the job's path of the
    same name, so the FEFF route (FEFF paths under the model's path names) gets exactly the
    grouping, and the number of free parameters, of the model-free fit.
    """
    from xasmpi.exafs.model import FitSpace, Param, PathModel

    f, red = job.fit, job.reduction
    names = list(f.paths) if f.paths else [p.name for p in job.paths]
    plist = [paths[n] for n in names]
    space = FitSpace(kind=f.space, kmin=f.kmin if f.kmin is not None else red.kmin,
                     kmax=f.kmax if f.kmax is not None else red.kmax, kweight=f.kweight, dk=red.dk,
                     window=red.window, rmin=f.rmin, rmax=f.rmax)
    n, s2, r = [], [], []
    for p in plist:
        b = param_bounds(job, p.name)
        n.append(Param(float(np.mean(b.n)), True, b.n[0], b.n[1]))
        s2.append(Param(float(np.clip(p.sigma2_ref, *b.sigma2)), True, b.sigma2[0], b.sigma2[1]))
        r0 = b.r if b.r is not None else p.r_ref
        if b.r_free:
            lo, hi = b.r_bounds if b.r_bounds is not None else (r0 - 0.1, r0 + 0.1)
            r.append(Param(r0, True, lo, hi))
        else:
            r.append(Param(r0, False))
    mode = E0_MODES[e0 or f.e0]
    de0 = Param(0.0, True, *f.e0_bounds) if mode != "none" else None
    groups = [de0_group(job, nm) for nm in names] if mode == "group" else None
    return PathModel.build(plist, space=space, n=n, sigma2=s2, r=r, de0=de0, de0_mode=mode, de0_groups=groups)


def column_names(model) -> list[str]:
    """``Cd-S.n``-style names of the model's free parameters (results-file convention).

    ΔE0: ``global.de0`` (one for all paths), ``Cd-S.de0`` (per path), ``CdS_bulk.de0`` (per
    reference spectrum; ``feff.de0`` for FEFF paths).
    """
    return [layout.column_name(nm) for nm in model.names]


def fit_data(model, red) -> np.ndarray:
    """A reduced spectrum's χ(k) on the model's k grid (zero-padded), as every fit of it takes it.

    Parameters
    ----------
    model : xasmpi.exafs.model.PathModel
        The fit model (its grid: k = 0, KSTEP, ... Å⁻¹, ``model.nk`` points).
    red : xasmpi.exafs.reduce.Reduced
        The reduced sample (``k`` in Å⁻¹, dimensionless ``chi``).

    Raises
    ------
    InputError
        The data end inside the fit's k range (fit kmax + dk/2).
    """
    kend = model.space.kspan()[1]
    if red.k[-1] < kend - 0.1:  # the last 0.1 Å^-1 of a taper weighs < 3 %: zero there is harmless
        raise InputError(f"{red.source}: data end at k = {red.k[-1]:.2f} Å^-1, inside the fit range "
                         f"(fit kmax + dk/2 = {kend:.2f} Å^-1): lower fit.kmax")
    if red.k.size < model.nk:
        return np.concatenate([red.chi, np.zeros(model.nk - red.k.size)])
    return red.chi[: model.nk]


def de_settings(job: Job, *, seed: int | None = None):
    """:class:`~xasmpi.exafs.fit.DESettings` of ``[fit.de]`` (seed: ``job.seed`` unless given)."""
    from xasmpi.exafs.fit import DESettings

    de = job.fit.de
    return DESettings(popsize=de.popsize, maxiter=de.maxiter, tol=de.tol, mutation=tuple(de.mutation),
                      recombination=de.recombination, strategy=de.strategy,
                      seed=job.job.seed if seed is None else seed, varpro=de.varpro, polish=de.polish)


def plan(job: Job, cache: dict) -> StagePlan:
    from xasmpi.exafs.engine import EngineSettings
    from xasmpi.exafs.fit import fit

    if job.fit is None:
        raise ConfigError(f"{job.source}: stage 'fit' needs a [fit] section")
    f = job.fit
    red = reduce_stage.reduced(job, cache)
    paths = reduce_stage.paths(job, cache)
    names = samples(job)
    if not names:
        raise ConfigError(f"{job.source}: [fit] has no samples (set fit.samples or a spectrum with role='sample')")
    settings = de_settings(job)
    e = f.engine
    engine = EngineSettings(popsize=e.popsize, maxiter=e.maxiter, min_generations=e.min_generations,
                            tol=e.tol, tabulate=e.tabulate, warm_fraction=e.warm_fraction)
    per_chunk = int(np.ceil(f.replicates / f.chunk)) * f.chunk if f.replicates else 0
    tasks, groups, ctx, best = [], {}, {"samples": {}, "engine": engine, "mode": f.mode, "seed": job.job.seed}, {}
    model = model_for(job, paths)
    if f.replicates and f.mode == "restart":
        log.info("fit: replicates mode 'restart' refits the same data with new seeds: their spread measures the "
                 "optimiser's stability, not an uncertainty (use mode 'noise' or 'residual')")
    for s_i, name in enumerate(names):
        data = fit_data(model, red[name])
        res = fit(model, data, settings=settings)
        best[name] = (model, data, res)
        cols = column_names(model)
        log.info("fit %s: best SSR %.4g (paper definition %.4g), R-factor %.4f, N_idp %.1f, reduced chi2 %.3g: %s",
                 name, res.ssr, res.ssr_k2, res.rfactor, res.n_idp, res.redchi,
                 ", ".join(f"{c} = {v:.4g} ± {e:.2g}" for c, v, e in zip(cols, res.params, res.stderr)))
        ctx["samples"][name] = {"model": model, "data": data, "base": res}
        group = f"/exafs/{name}/replicates"
        groups[group] = f.replicates
        offset = s_i * per_chunk
        tasks += [Task(index=offset + i, group=group, row=i, payload=name) for i in range(f.replicates)]
    ncol = len(column_names(next(iter(best.values()))[0]))
    fields = {"params": Field((ncol,), "f8"), "ssr": Field((), "f8", {"units": "fit space"}),
              "ssr_k2": Field((), "f8", {"units": "Å^-4"}), "converged": Field((), "i1"),
              "generations": Field((), "i4")}
    return StagePlan(stage="fit", tasks=tasks, fields=fields, groups=groups, context=ctx,
                     schedule="block", batch=f.chunk, owned=tuple(groups), extra={"best": best})


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    from xasmpi.exafs.engine import fit_replicates

    by_sample: dict[str, list[Task]] = {}
    for t in tasks:
        by_sample.setdefault(t.payload, []).append(t)
    out = []
    for name, ts in by_sample.items():
        s = ctx["samples"][name]
        seeds = [seed_for(ctx["seed"], STAGE_ID, t.index) for t in ts]
        try:
            b = fit_replicates(s["model"], s["data"], seeds, mode=ctx["mode"], settings=ctx["engine"], base=s["base"])
        except Exception as exc:  # the whole chunk failed; recorded, campaign goes on
            out += [failed(t.index, f"{type(exc).__name__}: {exc}") for t in ts]
            continue
        for j, t in enumerate(ts):
            out.append(TaskResult(t.index, OK, {"params": b.params[j], "ssr": b.ssr[j], "ssr_k2": b.ssr_k2[j],
                                                "converged": int(b.status[j] == 0),
                                                "generations": int(b.n_generations[j])}))
    return out



def _write_best(g, model, data, res, cols) -> None:
    """The best fit of one sample under ``/exafs/<sample>/fit`` (:func:`xasmpi.store.layout.write_fit`)."""
    kw = model.space.kweight
    k = model.k
    de0_groups = ({p.name: model.de0_labels[model.de0_of_path[j]].lstrip("_") or "global"
                   for j, p in enumerate(model.paths)} if model.de0_mode != "none" else {})
    attrs = {"space": model.space.kind, "kmin": model.space.kmin, "kmax": model.space.kmax,
             "kweight": kw, "rmin": model.space.rmin, "rmax": model.space.rmax,
             "ssr": res.ssr, "ssr_k2": res.ssr_k2, "rfactor": res.rfactor, "redchi": res.redchi,
             "chi2": res.chi2, "n_idp": res.n_idp, "eps_k": res.eps_k, "method": res.method,
             "nfev": res.nfev, "e0_mode": model.de0_mode, "n_free": len(model.names),
             "fixed": json.dumps({p.name: {"r": float(model.r[j].value)} for j, p in enumerate(model.paths)})}
    op = model.operator if model.space.kind == "q" else None
    layout.write_fit(g, layout.BestFit(
        tuple(cols), res.params, res.stderr, model.bounds, tuple(p.name for p in model.paths), de0_groups, attrs,
        corr=res.correl, k=k, data=data * k ** kw, model=res.chi_model * k ** kw, model_paths=res.chi_paths * k ** kw,
        data_q=None if op is None else op @ data, model_q=None if op is None else op @ res.chi_model))


def finalize(job: Job, plan: StagePlan, fh, results: dict) -> None:
    f = job.fit
    n_by_sample = {}
    for name, (model, data, res) in plan.extra["best"].items():
        cols = column_names(model)
        g = fh[f"/exafs/{name}"]
        for key in ("stats",) + (("replicates",) if not f.replicates else ()):
            if key in g:
                del g[key]  # results of an earlier run with other settings
        _write_best(g, model, data, res, cols)
        if not f.replicates:
            continue
        rep = g["replicates"]
        rep.attrs["names"] = cols
        rep.attrs["units"] = [UNITS.get(c.rsplit(".", 1)[1], "") for c in cols]
        rep.attrs["mode"] = f.mode
        rep.attrs["chunk"] = f.chunk
        # statistics over successful replicates
        reps = layout.read_replicates(g)
        st = layout.Stats.of(reps, bins=f.histogram_bins)
        layout.write_stats(g, st)
        if st.n:
            log.info("fit %s: %d %s replicates%s: %s", name, st.n, f.mode,
                     " (optimiser stability, not an uncertainty)" if f.mode == "restart" else "",
                     ", ".join(f"{c} = {m:.4g} ± {e:.2g}" for c, m, e in zip(cols, st.mean, st.sd)))
            for (path, key), col in reps.by_column().items():
                if key == "n":
                    n_by_sample.setdefault(path, {})[name] = col
    # overlap of N distributions between samples, per path
    layout.write_overlap(fh, layout.Overlap.of(n_by_sample))
