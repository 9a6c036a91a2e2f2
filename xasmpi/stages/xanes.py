"""``xanes`` stage: FDMNES over (candidate × unique absorber), then comparison with measured XANES.

Tasks are uneven (cost ∝ atoms within the radius, cubed), so they go through the dynamic
queue, longest first.  Each task runs in its own working directory
``<output>.work/xanes/<candidate>/abs<index>`` and its spectrum is interpolated onto the
job's fixed energy grid, so per-absorber results fit fixed-shape datasets.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError, XasmpiError
from xasmpi.stages.base import OK, Field, StagePlan, Task, TaskResult, failed

STAGE_ID = 4
log = logging.getLogger("xasmpi")


def settings(job: Job):
    """:class:`~xasmpi.xanes.fdmnes.FdmnesSettings` from ``[xanes]``."""
    from xasmpi.xanes.fdmnes import FdmnesSettings

    x = job.xanes
    return FdmnesSettings(edge=x.edge, mode=x.mode, radius=x.radius, e_min=x.emin, e_max=x.emax,
                          e_step=x.estep, scf=x.scf, convolution=x.convolution, gamma_hole=x.gamma_hole,
                          gaussian=x.gaussian, timeout=x.timeout)


def candidate_atoms(cand):
    """ASE Atoms and a report dict of one ``[[xanes.candidates]]`` entry."""
    from xasmpi.xanes.clusters import build_cluster, cluster_report, read_model

    if cand.file:
        atoms = read_model(cand.file)
        if cand.crystal:
            atoms.pbc = True
        try:
            rep = cluster_report(atoms).to_dict()
        except XasmpiError:
            rep = {}
        return atoms, rep
    b = cand.build
    strain = None if not b.strain else (b.strain[0] if len(b.strain) == 1 else tuple(b.strain))
    if cand.crystal:  # the periodic crystal itself (FDMNES Crystal block)
        from xasmpi.xanes.clusters import bulk_crystal

        atoms = bulk_crystal(b.lattice, a=b.a, c=b.c, strain=strain, anion=b.anion)
        return atoms, {"formula": atoms.get_chemical_formula(), "crystal": b.lattice}
    atoms, rep = build_cluster(b.lattice, a=b.a, c=b.c, strain=strain, n_atoms=b.atoms, formula=b.formula,
                               center=b.center, terminate_with=b.terminate)
    return atoms, rep.to_dict()


def prepare(job: Job, cache: dict) -> StagePlan:
    from xasmpi.xanes.clusters import estimate_cost, unique_absorbers
    from xasmpi.xanes.fdmnes import find_fdmnes, smoke_test, write_input

    if job.xanes is None or not job.xanes.candidates:
        raise ConfigError(f"{job.source}: stage 'xanes' needs [xanes] with [[xanes.candidates]]")
    st = settings(job)
    binary, how = find_fdmnes(job.xanes.fdmnes)
    t = smoke_test(binary)
    log.info("FDMNES %s (from %s): smoke test ran in %.1f s", binary, how, t)
    grid = st.energy_grid()
    tasks, groups, extra = [], {}, {"candidates": {}}
    for cand in job.xanes.candidates:
        atoms, rep = candidate_atoms(cand)
        sites = unique_absorbers(atoms, element=cand.absorber, radius=st.radius)
        group = f"/xanes/{cand.name}/absorbers"
        groups[group] = len(sites)
        inputs = []
        for row, (idx, weight) in enumerate(sites):
            text = write_input(atoms, idx, st, title=f"xasmpi {job.job.name}: {cand.name}, absorber {idx}")
            inputs.append(text)
            tasks.append(Task(index=len(tasks), group=group, row=row, cost=estimate_cost(atoms, idx, st.radius),
                              payload={"candidate": cand.name, "absorber": int(idx), "input": text}))
        extra["candidates"][cand.name] = {"atoms": atoms, "report": rep, "sites": sites, "inputs": inputs}
        log.info("xanes candidate %s: %s, %d atoms, %d unique %s absorber(s)", cand.name,
                 rep.get("formula", atoms.get_chemical_formula()), len(atoms), len(sites), cand.absorber)
    work = Path(str(job.job.output) + ".work") / "xanes"
    ctx = {"binary": str(binary), "timeout": st.timeout, "grid": grid, "work": str(work)}
    return StagePlan(stage="xanes", tasks=tasks, fields={"mu": Field((grid.size,), "f8", {"units": "1"})},
                     groups=groups, run_batch=run_batch, context=ctx, schedule="dynamic", batch=1,
                     owned=tuple(f"/xanes/{c.name}" for c in job.xanes.candidates), extra=extra)


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    from xasmpi.xanes.fdmnes import run_fdmnes

    out = []
    for t in tasks:
        t0 = time.monotonic()
        wd = Path(ctx["work"]) / t.payload["candidate"] / f"abs{t.payload['absorber']}"
        try:
            if wd.exists():
                shutil.rmtree(wd)  # a previous attempt was interrupted or failed
            res = run_fdmnes(t.payload["input"], wd, binary=ctx["binary"], timeout=ctx["timeout"])
            out.append(TaskResult(t.index, OK, {"mu": res.on_grid(ctx["grid"])}, "", time.monotonic() - t0))
        except Exception as exc:  # recorded as failed (with FDMNES's stderr tail); the campaign goes on
            out.append(failed(t.index, f"{t.payload['candidate']} absorber {t.payload['absorber']}: {exc}",
                              time.monotonic() - t0))
    return out


def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    import h5py

    grid = plan.context["grid"]
    str_t = h5py.string_dtype()
    for name, info in plan.extra["candidates"].items():
        g = f[f"/xanes/{name}"]
        a = g["absorbers"]
        for key in ("index", "weight", "input_text"):
            if key in a:
                del a[key]
        for key in ("energy", "mu", "structure"):
            if key in g:
                del g[key]
        sites = info["sites"]
        a.create_dataset("index", data=np.array([s[0] for s in sites], dtype="i8"))
        a.create_dataset("weight", data=np.array([s[1] for s in sites], dtype="f8"))
        a.create_dataset("input_text", data=np.array(info["inputs"], dtype=object), dtype=str_t)
        status = a["status"][:]
        mu = a["mu"][:]
        w = np.array([s[1] for s in sites]) * (status == OK)
        e = g.create_dataset("energy", data=grid)
        e.attrs["units"] = "eV"
        e.attrs["reference"] = "relative to the Fermi level of the calculation (FDMNES)"
        avg = (w[:, None] * np.nan_to_num(mu)).sum(0) / w.sum() if w.sum() > 0 else np.full(grid.size, np.nan)
        m = g.create_dataset("mu", data=avg)
        m.attrs["units"] = "1"
        m.attrs["weights"] = "symmetry weights of the unique absorbers that succeeded"
        atoms = info["atoms"]
        s = g.create_group("structure")
        s.create_dataset("symbols", data=np.array(atoms.get_chemical_symbols(), dtype=object), dtype=str_t)
        p = s.create_dataset("positions", data=atoms.get_positions())
        p.attrs["units"] = "Å"
        s.create_dataset("cell", data=np.array(atoms.get_cell()))
        s.attrs["pbc"] = bool(atoms.pbc.all())
        g.attrs["formula"] = str(info["report"].get("formula", atoms.get_chemical_formula()))
        g.attrs["n_atoms"] = len(atoms)
        g.attrs["report"] = json.dumps(info["report"], default=str)
        g.attrs["settings"] = json.dumps(settings(job).to_dict())
        g.attrs["absorbers_ok"] = int((status == OK).sum())
        g.attrs["complete"] = bool((status == OK).all())
    from xasmpi.stages import xanes_compare

    xanes_compare.compare(job, f)
