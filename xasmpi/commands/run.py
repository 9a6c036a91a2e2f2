"""``xasmpi run JOB.toml``: run a campaign (serially, or under ``mpirun -n N``)."""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("run", help="run the stages of a job file (under mpirun for parallel runs)",
                       description="Run a campaign. `mpirun -n N xasmpi run JOB.toml` runs in parallel; "
                                   "the same command without mpirun runs serially. Rerunning resumes.")
    p.add_argument("job", help="TOML job file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job-file key for this run (dotted, repeatable), e.g. fit.replicates=200")
    p.add_argument("--stages", help="comma-separated subset of stages to run")
    p.add_argument("--restart", action="store_true",
                   help="start over even if the output was made by a different job (old results are kept aside)")
    p.add_argument("--retry-failed", action="store_true", help="rerun only the tasks recorded as failed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xasmpi.campaign import run_campaign
    from xasmpi.config import load_job
    from xasmpi.parallel.comm import session

    with session() as comm:
        job = load_job(args.job, args.overrides)
        summary = run_campaign(job, stages=stage_list(args.stages), restart=args.restart,
                               retry_failed=args.retry_failed, comm=comm)
    if summary is None:
        return 1
    dead = [s for s in summary.get("stages", []) if s.get("n_tasks") and not s.get("ok_total")]
    if dead and comm.rank == 0:
        names = ", ".join(f"{s.get('stage', '?')} ({s['n_tasks']} tasks)" for s in dead)
        print(f"xasmpi: error: every task of stage(s) {names} failed: see /tasks/<stage>/failed_message "
              f"in {summary['output']} (`xasmpi summary`)", file=sys.stderr)
        return 1
    return 0


def stage_list(text: str | None) -> tuple[str, ...] | None:
    """``--stages a,b`` as a tuple of names (None: the job's configured stages)."""
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else None
