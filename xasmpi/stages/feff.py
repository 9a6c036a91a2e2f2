"""``feff`` stage: the "Artemis route" — the same model fitted with FEFF paths by larch ``feffit``.

For every fitted path, the FEFF path comes from ``[feff] paths`` (the name of a ``[[paths]]``
entry with ``source = "feff"``), or from the path's own ``structure``/``scatterer`` keys.  The
model (free parameters, bounds, fixed R, windows, k weight, and the ΔE0 grouping: with the
default ``fit.e0 = "per-reference"`` each FEFF path shares the ΔE0 of the reference its
model-free path comes from, so both routes have the same free parameters) is the fit stage's,
plus a global ΔE0 (FEFF's energy origin is not the measured edge) when the fit keeps E0 fixed;
larch's best
fit is started from the model-free best fit, and its SSR is recomputed on the model-free
definition so the two sit side by side in Table 1.  Runs on rank 0.
"""
from __future__ import annotations

import json
import logging

from xasmpi.config import Job
from xasmpi.errors import ConfigError
from xasmpi.stages import fit as fit_stage
from xasmpi.stages import reduce as reduce_stage
from xasmpi.parallel.tasks import StagePlan

STAGE_ID = 3
log = logging.getLogger("xasmpi")


def feff_paths(job: Job, cache: dict) -> dict:
    """FEFF :class:`~xasmpi.exafs.paths.Path` for every path of the fit, by model path name."""
    names = list(job.fit.paths) if job.fit.paths else [p.name for p in job.paths]
    mapping = job.feff.paths if job.feff is not None else {}
    out = {}
    for name in names:
        spec = job.path(mapping.get(name, name))
        if spec.source != "feff" and (spec.structure is None or spec.scatterer is None):
            raise ConfigError(f"{job.source}: FEFF route for path '{name}': give it 'structure' and 'scatterer' "
                              "or map it to a FEFF path in [feff] paths")
        out[name] = reduce_stage.feff_path(job, spec, cache, name=name)
    return out


def plan(job: Job, cache: dict) -> StagePlan:
    """No tasks: the routes are fitted on rank 0 (:func:`routes`) and written by :func:`finalize`."""
    return StagePlan(stage="feff", tasks=[], fields={}, groups={}, extra={"results": routes(job, cache)})


def routes(job: Job, cache: dict) -> dict:
    """The FEFF route of every sample: ``{sample: (model, data, FeffitResult)}``."""
    from xasmpi.exafs.feffroute import feffit_route
    from xasmpi.exafs.fit import DESettings, fit

    if job.fit is None:
        raise ConfigError(f"{job.source}: stage 'feff' needs a [fit] section (the model to fit)")
    red = reduce_stage.reduced(job, cache)
    paths = feff_paths(job, cache)
    # FEFF's E0 convention differs from the measured edge: the FEFF route always fits a ΔE0
    # (global, as in Artemis) unless the model-free fit already frees it
    model = fit_stage.model_for(job, paths, e0="global" if job.fit.e0 == "fixed" else None)
    results = {}
    for name in fit_stage.samples(job):
        data = fit_stage.fit_data(model, red[name])
        # start larch from the global optimum of the same model (DE), as a user of Artemis would
        de = fit(model, data, settings=DESettings(seed=job.job.seed, polish="none"))
        res = feffit_route(model, data, start=de.params)
        results[name] = (model, data, res)
        log.info("feff route %s: SSR %.4g (model-free definition), %s", name, res.ssr_k2,
                 ", ".join(f"{c} = {v:.4g} ± {e:.2g}" for c, v, e in
                           zip(fit_stage.column_names(model), res.params, res.stderr)))
    return results


def finalize(job: Job, plan: StagePlan, fh, results: dict) -> None:
    from xasmpi.store.layout import FeffRoute, write_feff_route

    for name, (model, data, res) in plan.extra["results"].items():
        kw = model.space.kweight
        k = model.k
        attrs = {"ssr": res.ssr, "ssr_k2": res.ssr_k2, "redchi_larch": res.redchi_larch,
                 "rfactor": res.rfactor_larch, "nfev": res.nfev, "n_free": len(model.names),
                 "method": "larch feffit (least squares) on FEFF paths, started from DE; SSR on the model-free definition",
                 "paths": json.dumps({p.name: p.provenance.get("files", []) for p in model.paths}, default=str)}
        write_feff_route(fh.require_group(f"/exafs/{name}"),
                         FeffRoute(tuple(fit_stage.column_names(model)), res.params, res.stderr, k,
                                   res.chi_model * k ** kw, kw, attrs))
