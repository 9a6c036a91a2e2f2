"""Stages: glue from job-file sections to tasks and results, declared in one registry.

A stage is one module and one line of :data:`STAGES` below.  The module provides

``STAGE_ID``
    fixes the seeds of its tasks (:func:`xasmpi.parallel.tasks.seed_for`); never reuse one.
``plan(job, cache) -> StagePlan``
    rank 0, before any task: checks the job and lists the tasks.  A stage without tasks
    computes its results here (the other ranks wait) and hands them to ``finalize`` in
    ``plan.extra``; ``cache`` carries reduced spectra etc. between the stages of one run.
``run_batch(tasks, context) -> list[TaskResult]``
    stages with tasks: runs a batch of tasks on any rank (module level, so it pickles).
``finalize(job, plan, h5file, results)``
    rank 0, serial, after every task result is in the file: writes the stage's groups.

The registry line adds what the campaign needs to know without running the stage: the job
section that configures it (and when it runs by default), whether its results are journalled
tasks (a changed job must not reuse them), and which job keys its results depend on (its
fingerprint).  Modules of this package that are not in the registry are helpers of a stage
(:mod:`xasmpi.stages.xanes_compare`: the comparison step of the xanes stages' ``finalize``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

from xasmpi.errors import CampaignError
from xasmpi.stages import (analysis, feff, fit, rank, reduce, relax, selftest, supplementary, systematics,
                           xanes, xanes_fdm)


@dataclass(frozen=True)
class Stage:
    """One stage as the campaign sees it.

    Attributes
    ----------
    name : str
        Name in ``--stages``, ``job.stages``, journals and the output's attributes.
    id : int
        The module's ``STAGE_ID`` (seeds).
    section : str
        Attribute of :class:`~xasmpi.config.Job` that configures the stage; by default the
        stage runs when it is set (non-empty).
    has_tasks : bool
        Its results are journalled task results (protected against a changed job on resume).
    keys : callable
        ``keys(inputs) -> dict``: the parts of :meth:`Job.fingerprint_inputs
        <xasmpi.config.Job.fingerprint_inputs>` its results depend on.
    plan, run, finalize : callable
        The module's ``plan``, ``run_batch`` (None without tasks) and ``finalize``.
    wanted : callable, optional
        ``wanted(job) -> bool`` when "the section is set" is not the rule.
    """

    name: str
    id: int
    section: str
    has_tasks: bool
    keys: Callable[[dict], dict]
    plan: Callable
    run: Callable | None
    finalize: Callable
    wanted: Callable | None = None

    def configured(self, job) -> bool:
        """True when the job runs this stage by default (no ``job.stages``)."""
        return bool(self.wanted(job)) if self.wanted is not None else bool(getattr(job, self.section))


def _xanes_keys(p: dict) -> dict:
    return {"xanes": p["xanes"], "files": p["cands"], "relax": p["d"]["relax"]}


def _candidates(job) -> bool:
    return job.xanes is not None and bool(job.xanes.candidates)


_RANK_KEYS = ("candidates", "feff_radius", "rmax_path", "feff_version", "max_paths")

#: every stage, in the order of a default run
STAGES: tuple[Stage, ...] = (
    Stage("selftest", selftest.STAGE_ID, "selftest", True, lambda p: {"seed": p["seed"], "selftest": p["d"]["selftest"]},
          selftest.plan, selftest.run_batch, selftest.finalize),
    Stage("reduce", reduce.STAGE_ID, "spectra", False, lambda p: p["data"], reduce.plan, None, reduce.finalize),
    Stage("fit", fit.STAGE_ID, "fit", True, lambda p: {"seed": p["seed"], "fit": p["fit"], **p["data"]},
          fit.plan, fit.run_batch, fit.finalize),
    Stage("systematics", systematics.STAGE_ID, "fit", True,
          lambda p: {"seed": p["seed"], "fit": p["sysfit"], **p["data_sys"]},
          systematics.plan, systematics.run_batch, systematics.finalize,
          wanted=lambda job: job.fit is not None and job.fit.systematics.enabled),
    Stage("feff", feff.STAGE_ID, "feff", False, lambda p: {"feff": p["d"]["feff"], "fit": p["fit"], **p["data"]},
          feff.plan, None, feff.finalize),
    Stage("relax", relax.STAGE_ID, "relax", True,
          lambda p: {"relax": p["d"]["relax"], "candidates": p["xanes"].get("candidates"), "files": p["cands"]},
          relax.plan, relax.run_batch, relax.finalize, wanted=lambda job: job.relax is not None and _candidates(job)),
    Stage("xanes", xanes.STAGE_ID, "xanes", True, _xanes_keys, xanes.plan, xanes.run_batch, xanes.finalize,
          wanted=_candidates),
    Stage("xanes_fdm", xanes_fdm.STAGE_ID, "xanes", True,  # the comparison chooses the FDM reruns: it counts
          lambda p: {**_xanes_keys(p), "xanes": {k: v for k, v in (p["d"]["xanes"] or {}).items()
                                                 if k not in ("timeout", "fdmnes")},
                     "reduction": p["data"]["reduction"], "spectra": p["data"]["spectra"],
                     "files": {**p["cands"], **p["data"]["files"]}},  # candidate and spectrum files
          xanes_fdm.plan, xanes.run_batch, xanes_fdm.finalize,
          wanted=lambda job: _candidates(job) and job.xanes.fdm_best > 0),
    Stage("analysis", analysis.STAGE_ID, "analysis", False, lambda p: {"analysis": p["d"]["analysis"]},
          analysis.plan, None, analysis.finalize),
    Stage("supplementary", supplementary.STAGE_ID, "supplementary", True,
          lambda p: {"supplementary": p["d"]["supplementary"], "xanes": p["xanes"], **p["data"]},
          supplementary.plan, xanes.run_batch, supplementary.finalize),
    Stage("rank", rank.STAGE_ID, "rank", True,
          lambda p: {"rank": {k: (p["d"]["rank"] or {}).get(k) for k in _RANK_KEYS},
                     "candidates": p["xanes"].get("candidates"), "files": p["cands"], "relax": p["d"]["relax"]},
          rank.plan, rank.run_batch, rank.finalize),
)
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}
assert len(_BY_NAME) == len(STAGES) and len({s.id for s in STAGES}) == len(STAGES), "stage names and ids are unique"


def get(name: str) -> Stage:
    """The registered stage ``name`` (:class:`CampaignError` naming the known ones otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise CampaignError(f"unknown stage '{name}' (stages: {', '.join(NAMES)})") from None


def configured(job) -> tuple[str, ...]:
    """Stages the job asks for: ``job.stages`` or, if empty, every stage whose section is set."""
    if job.job.stages:
        return tuple(job.job.stages)
    return tuple(s.name for s in STAGES if s.configured(job))


def fingerprint(job, stage: str | None = None) -> str:
    """Hash of the job keys that change ``stage``'s results (of every stage when None).

    ``job.stages``, ``job.output``, ``job.description`` and ``[run]`` never count.
    """
    p = job.fingerprint_inputs()
    blob = get(stage).keys(p) if stage else {"parts": {s.name: s.keys(p) for s in STAGES},
                                             "simulated": p["simulated"]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]
