"""``relax`` stage: relax every XANES candidate (one task each) before its FDMNES runs.

Tasks go through the dynamic queue, longest first (cost = atoms², a proxy of the optimiser's
work).  Each task relaxes with :func:`xasmpi.xanes.relax.relax`, checkpointing its current frame
to ``<output>.work/relax/<candidate>.extxyz``: a killed relaxation restarts from its last saved
frame (and a finished one is in the journal, so it is never recomputed).  The relaxed positions
are the task's result (padded to the largest candidate); :func:`relaxed_structures` gives them to
the ``xanes`` stage.  ``finalize`` writes ``/relax/<candidate>/`` with the first and last frames,
the model and its version, the convergence and the chemistry check
(:func:`xasmpi.xanes.clusters.check_chemistry`).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError
from xasmpi.parallel.tasks import OK, Field, StagePlan, Task, TaskResult, failed

STAGE_ID = 7
log = logging.getLogger("xasmpi")
_CALC: dict = {}  # calculator spec -> (calculator, ModelInfo), one per process


def settings(job: Job):
    """:class:`~xasmpi.xanes.relax.RelaxSettings` from ``[relax]``."""
    from xasmpi.xanes.relax import RelaxSettings

    r = job.relax
    return RelaxSettings(calculator=r.calculator, fmax=r.fmax, steps=r.steps, optimizer=r.optimizer,
                         freeze=r.freeze, save_every=r.save_every, cap=r.cap)


def to_relax(job: Job) -> list:
    """The candidates the job relaxes, in task order (crystal candidates are never relaxed)."""
    if job.relax is None or job.xanes is None:
        return []
    names = set(job.relax.candidates)
    return [c for c in job.xanes.candidates if not c.crystal and (not names or c.name in names)]


def _work(job: Job) -> Path:
    return Path(str(job.job.output) + ".work") / "relax"


def plan(job: Job, cache: dict) -> StagePlan:
    from xasmpi.stages.xanes import candidate_atoms

    if job.relax is None or job.xanes is None or not job.xanes.candidates:
        raise ConfigError(f"{job.source}: stage 'relax' needs [relax] and [[xanes.candidates]]")
    st = settings(job)
    cands = to_relax(job)
    structures = {c.name: candidate_atoms(c)[0] for c in cands}
    n_max = max((len(a) for a in structures.values()), default=1)
    tasks, groups = [], {}
    for c in cands:
        atoms = structures[c.name]
        group = f"/relax/{c.name}"
        groups[group] = 1
        tasks.append(Task(index=len(tasks), group=group, row=0, cost=float(len(atoms)) ** 2,
                          payload={"candidate": c.name, "symbols": atoms.get_chemical_symbols(),
                                   "positions": atoms.get_positions(), "cell": np.array(atoms.get_cell()),
                                   "pbc": atoms.get_pbc().tolist()}))
        log.info("relax candidate %s: %d atoms (%s, fmax %g eV/Å, at most %d steps, freeze %s)",
                 c.name, len(atoms), st.calculator, st.fmax, st.steps, st.freeze)
    fields = {"positions": Field((n_max, 3), "f8", {"units": "Å"}),
              "energy": Field((2,), "f8", {"units": "eV", "columns": "initial, final"}),
              "fmax": Field((), "f8", {"units": "eV/Å"}), "steps": Field((), "f8"),
              "converged": Field((), "f8")}
    ctx = {"settings": st, "work": str(_work(job)), "n_max": n_max}
    return StagePlan(stage="relax", tasks=tasks, fields=fields, groups=groups,
                     context=ctx, schedule="dynamic", batch=1, owned=tuple(groups),
                     extra={"structures": structures})


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    from ase import Atoms

    from xasmpi.xanes.relax import make_calculator, relax

    out = []
    st = ctx["settings"]
    for t in tasks:
        t0 = time.monotonic()
        p = t.payload
        try:
            if st.calculator not in _CALC:
                _CALC[st.calculator] = make_calculator(st.calculator)
            calc, model = _CALC[st.calculator]
            atoms = Atoms(p["symbols"], positions=p["positions"], cell=p["cell"], pbc=p["pbc"])
            ckpt = Path(ctx["work"]) / f"{p['candidate']}.extxyz"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            res = relax(atoms, calculator=calc, model=model, settings=st, checkpoint=ckpt)
            pos = np.full((ctx["n_max"], 3), np.nan)
            pos[: len(atoms)] = res.final.get_positions()
            out.append(TaskResult(t.index, OK, {
                "positions": pos, "energy": np.array([res.energy_initial, res.energy_final]),
                "fmax": np.float64(res.fmax), "steps": np.float64(res.steps),
                "converged": np.float64(res.converged)}, "", time.monotonic() - t0))
        except Exception as exc:  # recorded as failed; the campaign goes on
            out.append(failed(t.index, f"relax {p['candidate']}: {type(exc).__name__}: {exc}",
                              time.monotonic() - t0))
    return out


def relaxed_structures(job: Job) -> dict:
    """Candidate name -> relaxed ``Atoms`` (None when its relaxation failed or has not run),
    read from the ``relax`` journals (the durable record of finished tasks)."""
    from ase import Atoms

    from xasmpi.stages.xanes import candidate_atoms
    from xasmpi.store.journal import read_journals

    cands = to_relax(job)
    if not cands:
        return {}
    done = read_journals(job.job.output, "relax")
    out = {}
    for i, c in enumerate(cands):
        r = done.get(i)
        if r is None or r.status != OK:
            out[c.name] = None
            continue
        start = candidate_atoms(c)[0]
        pos = np.asarray(r.values["positions"])[: len(start)]
        if pos.shape != (len(start), 3) or not np.all(np.isfinite(pos)):
            out[c.name] = None  # a journal of another job's structure
            continue
        out[c.name] = Atoms(start.get_chemical_symbols(), positions=pos, cell=start.get_cell(),
                            pbc=start.get_pbc())
    return out


def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    from xasmpi.store.layout import STRING as str_t
    from xasmpi.xanes.clusters import check_chemistry
    from xasmpi.xanes.relax import make_calculator

    st = plan.context["settings"]
    relaxed = relaxed_structures(job)
    model = None
    for t in plan.tasks:
        name = t.payload["candidate"]
        g = f[t.group]
        for key in ("symbols", "initial", "final"):
            if key in g:
                del g[key]
        start = plan.extra["structures"][name]
        g.create_dataset("symbols", data=np.array(start.get_chemical_symbols(), dtype=object), dtype=str_t)
        g.create_dataset("initial", data=start.get_positions()).attrs["units"] = "Å"
        final = relaxed.get(name)
        g.attrs["calculator"] = st.calculator
        g.attrs["settings"] = json.dumps({k: getattr(st, k) for k in st.__dataclass_fields__})
        if final is None:
            g.attrs["complete"] = False
            g.attrs["check"] = json.dumps({"passed": False, "flags": ["relaxation failed or not run"]})
            continue
        if model is None:
            try:
                model = (_CALC.get(st.calculator) or make_calculator(st.calculator))[1].to_dict()
            except ConfigError:
                model = {"name": st.calculator, "version": "?", "package": "?"}
        g.create_dataset("final", data=final.get_positions()).attrs["units"] = "Å"
        r = results[t.index]
        check = check_chemistry(final)
        g.attrs["model"] = json.dumps(model)
        g.attrs["energy_initial"], g.attrs["energy_final"] = (float(v) for v in r.values["energy"])
        g.attrs["fmax"] = float(r.values["fmax"])
        g.attrs["steps"] = int(r.values["steps"])
        g.attrs["converged"] = bool(r.values["converged"])
        g.attrs["check"] = json.dumps(check.to_dict())
        g.attrs["check_passed"] = bool(check.passed)
        g.attrs["complete"] = True
        log.info("relax %s: %d steps, fmax %.3f eV/Å (%s), E %.2f -> %.2f eV; chemistry %s", name,
                 g.attrs["steps"], g.attrs["fmax"], "converged" if g.attrs["converged"] else "NOT converged",
                 g.attrs["energy_initial"], g.attrs["energy_final"],
                 "ok" if check.passed else "FLAGGED: " + "; ".join(check.flags[:6])
                 + (f" (+{len(check.flags) - 6} more)" if len(check.flags) > 6 else ""))
