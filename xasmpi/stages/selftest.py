"""``selftest`` stage: trivial tasks that exercise the driver.

Each task draws ``values`` random numbers from its own seed, optionally sleeps, optionally
runs an external command (``{index}`` is replaced by the task index) under a timeout, and
raises for the indices listed in ``fail``.  It checks scheduling, rank independence,
failure recording, timeouts and resume without any science.
"""
from __future__ import annotations

import time

import numpy as np

from xasmpi.config import Job
from xasmpi.external import run_program
from xasmpi.errors import XasmpiError
from xasmpi.parallel.tasks import OK, Field, StagePlan, Task, TaskResult, failed, seed_for

STAGE_ID = 0
GROUP = "/selftest"


def plan(job: Job, cache: dict) -> StagePlan:
    st = job.selftest
    if st is None:
        raise XasmpiError(f"{job.source}: stage 'selftest' needs a [selftest] section")
    tasks = [Task(index=i, group=GROUP, row=i, cost=1.0, payload=None) for i in range(st.tasks)]
    ctx = {"seed": job.job.seed, "sleep": st.sleep, "fail": frozenset(st.fail), "command": st.command,
           "timeout": st.timeout, "values": st.values}
    return StagePlan(stage="selftest", tasks=tasks, fields={"values": Field((st.values,), "f8", {"units": "1"})},
                     groups={GROUP: st.tasks}, context=ctx, schedule=st.schedule,
                     batch=1, owned=(GROUP,))


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    out = []
    for t in tasks:
        t0 = time.monotonic()
        try:
            rng = np.random.default_rng(seed_for(ctx["seed"], STAGE_ID, t.index))
            values = rng.random(ctx["values"])
            if ctx["sleep"]:
                time.sleep(ctx["sleep"])
            if t.index in ctx["fail"]:
                raise RuntimeError(f"injected failure in task {t.index}")
            if ctx["command"]:
                run_program(["/bin/sh", "-c", ctx["command"].format(index=t.index)],
                            timeout=ctx["timeout"], name="selftest command")
            out.append(TaskResult(t.index, OK, {"values": values}, "", time.monotonic() - t0))
        except Exception as exc:  # recorded, the campaign goes on
            out.append(failed(t.index, f"{type(exc).__name__}: {exc}", time.monotonic() - t0))
    return out


def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    g = f[GROUP]
    ok = g["status"][:] == OK
    g.attrs["mean_value"] = float(np.nanmean(g["values"][:][ok])) if ok.any() else float("nan")
