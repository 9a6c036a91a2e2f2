"""Stages: glue from job-file sections to task plans.

Each stage module provides ``STAGE_ID`` (fixes its seeds), ``prepare(job, cache) -> StagePlan``
(runs on rank 0; ``cache`` carries reduced spectra etc. between stages of one run) and
``finalize(job, plan, h5file, results)`` (rank 0, serial, after all tasks are written).
"""
from __future__ import annotations

import importlib

MODULES = {
    "selftest": "xasmpi.stages.selftest",
    "reduce": "xasmpi.stages.reduce",
    "fit": "xasmpi.stages.fit",
    "systematics": "xasmpi.stages.systematics",
    "feff": "xasmpi.stages.feff",
    "relax": "xasmpi.stages.relax",
    "xanes": "xasmpi.stages.xanes",
    "analysis": "xasmpi.stages.analysis",
    "supplementary": "xasmpi.stages.supplementary",
    "rank": "xasmpi.stages.rank",
}


def get(name: str):
    """The module implementing stage ``name``."""
    return importlib.import_module(MODULES[name])
