"""The task contract: records shared by the stages, the driver and the store.

A stage turns a job into a :class:`StagePlan`: a list of small picklable :class:`Task`
records, a module-level function that runs a batch of them, and the HDF5 datasets their
results fill; each task returns a :class:`TaskResult`.  The driver only schedules; the store
only writes.  This module is bottom-level: it imports neither MPI nor HDF5 nor any stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

OK, NOT_RUN, FAILED = 1, 0, -1


@dataclass(frozen=True)
class Task:
    """One unit of work.

    Attributes
    ----------
    index : int
        Global index within the stage; it fixes the task's seed and its journal key.
    group : str
        HDF5 group whose per-task datasets receive the result (e.g. ``/exafs/S/replicates``).
    row : int
        Row in those datasets.
    cost : float
        Relative cost estimate (dynamic queue runs the longest first).
    payload : Any
        Small picklable record the task function needs.
    """

    index: int
    group: str
    row: int
    cost: float = 1.0
    payload: Any = None


@dataclass(frozen=True)
class Field:
    """A per-task result dataset: ``shape`` is the shape of one task's value."""

    shape: tuple = ()
    dtype: str = "f8"
    attrs: dict = field(default_factory=dict)


@dataclass
class TaskResult:
    """What a task produced: ``values`` maps field name to an array of the field's shape."""

    index: int
    status: int
    values: dict
    message: str = ""
    elapsed: float = 0.0
    rank: int = -1


@dataclass
class StagePlan:
    """Everything the driver needs to run one stage's tasks.

    ``run_batch(tasks, context) -> list[TaskResult]`` is a module-level function (it runs on
    every rank); the campaign sets it from the stage's registry entry (``Stage.run``).  ``batch`` > 1 groups consecutive task indices into fixed global
    chunks that are always computed together, so results never depend on the rank count.
    """

    stage: str
    tasks: list
    fields: dict                         # name -> Field
    groups: dict                         # group path -> number of rows
    run_batch: Callable | None = None
    context: Any = None
    schedule: Literal["block", "dynamic"] = "block"
    batch: int = 1
    owned: tuple = ()                    # groups this stage (re)writes
    extra: dict = field(default_factory=dict)  # rank-0 data for finalize (not broadcast)


def failed(index: int, message: str, elapsed: float = 0.0) -> TaskResult:
    """A failed result with a one-line message."""
    return TaskResult(index, FAILED, {}, " ".join(str(message).split())[:2000], elapsed)


def seed_for(job_seed: int, stage_id: int, index: int) -> np.random.SeedSequence:
    """Seed of task ``index`` of a stage: ``SeedSequence(job_seed).spawn(...)[stage_id].spawn(...)[index]``.

    It depends on the job seed and the task's global index only, never on ranks.
    """
    return np.random.SeedSequence(job_seed, spawn_key=(stage_id, index))
