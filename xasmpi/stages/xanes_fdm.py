"""``xanes_fdm`` stage: the fidelity ladder's second rung (Green for screening, FDM for the best few).

After the ``xanes`` stage has screened every candidate (``[xanes] mode``, Green by default), the
``[xanes] fdm_best = N`` best candidates against **each** measured spectrum (``[xanes] measured``,
ranked by the ``[xanes] compare`` rule on the screening spectra) are recomputed with FDMNES's
finite-difference method, every unique absorber one task on the dynamic queue (longest first),
at the screening radius and energy grid.  The calibration candidates of ``[xanes] calibrate`` are
rerun too whenever any candidate is, so the one energy shift of the FDM spectra is calibrated on
an FDM bulk spectrum.  Candidates screened with FDM already are not rerun.

The screening results are read from the ``xanes`` journals, so the stage resumes like every
other: a task's index is ``position of the candidate in [[xanes.candidates]] × STRIDE + row``,
which ties each journal record to its (candidate, absorber) whatever the selection.  The
results go to ``/xanes/<c>/fdm/{absorbers/…, energy, mu}`` (attrs ``method = "fdm"``,
``selected_by``, ``fingerprint``); the comparison is then redone, with the FDM spectra in place
of the screening ones for the promoted candidates (``/xanes/<c>`` attr ``method``, and the
``method`` column of ``/xanes/comparison/<spectrum>``).  ``fdm_best = 0`` (the default) leaves the
stage out of the configured stages; run explicitly it then only removes earlier FDM reruns.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError, XasmpiError
from xasmpi.parallel.tasks import OK, StagePlan

STAGE_ID = 10
#: task index = candidate position × STRIDE + absorber row (stable across selections)
STRIDE = 100_000
log = logging.getLogger("xasmpi")


def screening(job: Job) -> tuple[dict, dict]:
    """Candidates of the ``xanes`` stage and their screening spectra from its journals.

    Returns
    -------
    (dict, dict)
        ``info[name]`` as :func:`xasmpi.stages.xanes.screening_tasks` gives it, and
        ``sims[name]``: the normalised screening average of every candidate whose absorbers all
        succeeded (others are left out, with a warning).
    """
    from xasmpi.stages import xanes
    from xasmpi.store.journal import read_journals
    from xasmpi.xanes.compare import normalize

    tasks, _groups, extra = xanes.screening_tasks(job, quiet=True)
    done = read_journals(job.job.output, "xanes")
    grid = xanes.settings(job).energy_grid()
    sims = {}
    for name, info in extra["candidates"].items():
        rows = [t for t in tasks if t.group == f"/xanes/{name}/absorbers"]
        res = [done.get(t.index) for t in rows]
        if not all(r is not None and r.status == OK for r in res):
            log.warning("xanes_fdm: candidate %s has unfinished or failed screening runs (see /tasks/xanes); "
                        "it cannot be ranked for FDM", name)
            continue
        w = np.array([s[1] for s in info["sites"]], float)
        mu = np.array([r.values["mu"] for r in res])
        eps = np.array([r.values["epsii"] for r in res]) if job.xanes.epsii else None
        energy, avg = xanes.epsii_average(grid, mu, w, eps)
        sims[name] = normalize(energy, avg, name=f"{name} (screening)")
    return extra["candidates"], sims


def select(job: Job, info: dict, sims: dict) -> dict[str, list[str]]:
    """Candidates to rerun with FDM and why: ``{name: ["<spectrum> #<rank>", "calibration <spectrum>"]}``
    (job order).  Empty when ``fdm_best`` is 0 or nothing can be ranked."""
    from xasmpi.stages.xanes_compare import measured_spectra, rankings

    x = job.xanes
    n = x.fdm_best
    if n <= 0 or not x.measured or not sims:
        return {}
    rows, _shifts, _pairs = rankings(job, sims, measured_spectra(job),
                                     methods={c: info[c]["settings"].mode for c in sims})
    why: dict[str, list[str]] = {}
    for spec, rr in rows.items():
        for k, r in enumerate(rr[:n]):
            why.setdefault(r.name, []).append(f"{spec} #{k + 1}")
        log.info("xanes_fdm %s: screening ranking %s", spec,
                 ", ".join(f"{r.name} (R={r.alignment.r_factor:.4f})" for r in rr))
    if why:
        for c, spec in x.calibrate:
            if c in info:
                why.setdefault(c, []).append(f"calibration {spec}")
    order = [c.name for c in x.candidates]
    return {c: why[c] for c in order if c in why and info[c]["settings"].mode != "fdm"}


def plan(job: Job, cache: dict) -> StagePlan:
    from xasmpi.stages import xanes
    from xasmpi.xanes.fdmnes import find_fdmnes

    x = job.xanes
    if x is None or not x.candidates:
        raise ConfigError(f"{job.source}: stage 'xanes_fdm' needs [xanes] with [[xanes.candidates]]")
    if x.fdm_best > 0 and not x.measured:
        raise ConfigError(f"{job.source}: xanes.fdm_best: the best candidates are chosen against the measured "
                          "XANES: set xanes.measured")
    info, sims = screening(job)
    chosen = select(job, info, sims)
    pos = {c.name: k for k, c in enumerate(x.candidates)}
    tasks, groups = [], {}
    grid = xanes.settings(job).energy_grid()
    ctx = None
    for name, why in chosen.items():
        ci = info[name]
        fst = dataclasses.replace(ci["settings"], mode="fdm")
        group = f"/xanes/{name}/fdm/absorbers"
        groups[group] = len(ci["sites"])
        inputs = []
        for row, (idx, _w) in enumerate(ci["sites"]):
            t = xanes.absorber_task(pos[name] * STRIDE + row, group, row, ci["atoms"], idx, fst, candidate=name,
                                    what="fdm", title=f"xasmpi {job.job.name}: {name}, absorber {idx}, FDM")
            inputs.append(t.payload["input"])
            tasks.append(t)
        ci["fdm_inputs"], ci["fdm_settings"], ci["selected_by"] = inputs, fst, why
        log.info("xanes_fdm: %s rerun with FDM (%s), %d unique absorber(s)", name, ", ".join(why),
                 len(ci["sites"]))
    if tasks:
        binary, how = find_fdmnes(x.fdmnes)
        ctx = {"binary": str(binary), "timeout": x.timeout, "grid": grid,
               "work": str(Path(str(job.job.output) + ".work") / "xanes")}
    return StagePlan(stage="xanes_fdm", tasks=tasks, fields=xanes.fields(grid) if tasks else {}, groups=groups,
                     context=ctx, schedule="dynamic", batch=1,
                     owned=tuple(f"/xanes/{c}/fdm" for c in chosen),
                     extra={"candidates": info, "chosen": chosen, "grid": grid})


def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    from xasmpi.stages import xanes, xanes_compare

    chosen = plan.extra["chosen"]
    fp = job.fingerprint("xanes_fdm")
    for c in job.xanes.candidates:
        g = f.get(f"/xanes/{c.name}")
        if g is None:
            continue
        if c.name not in chosen:
            if "fdm" in g:
                del g["fdm"]
                log.info("xanes_fdm: removed the FDM rerun of %s (not selected by the present fdm_best)", c.name)
        else:
            ci = plan.extra["candidates"][c.name]
            fg = g["fdm"]
            ok = xanes.write_average(fg, fg["absorbers"], plan.extra["grid"], ci["sites"], ci["fdm_inputs"],
                                     ci["fdm_settings"], use_epsii=job.xanes.epsii)
            fg.attrs["selected_by"] = json.dumps(ci["selected_by"])
            fg.attrs["fingerprint"] = fp
            if not ok:
                log.warning("xanes_fdm: %s has failed FDM runs (see /tasks/xanes_fdm); its screening spectrum "
                            "is compared until `xasmpi run --retry-failed` completes it", c.name)
        if "screening" in g:
            try:
                xanes.publish(job, g)
            except XasmpiError as exc:  # pragma: no cover - a broken group is reported, not fatal
                log.warning("xanes_fdm: %s: %s", c.name, exc)
    xanes_compare.compare(job, f)
