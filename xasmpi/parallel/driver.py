"""The task farm: the only place (with the HDF5 writer) that talks MPI.

* ``block``: uniform tasks (replicates).  Pending tasks are grouped into fixed global
  chunks (``plan.batch`` consecutive indices) and the chunks are split into contiguous
  blocks, one per rank.  A chunk is always computed as a whole, so results do not depend
  on the number of ranks.
* ``dynamic``: uneven tasks (FDMNES runs).  Rank 0 keeps a longest-first queue and hands
  out one task at a time to whichever rank asks; rank 0 also works, running its own task in
  a helper thread while its main thread serves the queue (all MPI calls stay on the main
  thread).

Every rank hands its finished results to ``on_results`` as soon as they exist (the journal
records them at once; HDF5 rows are written in batches); rank 0 logs progress with rate and
ETA.  Waiting ranks sleep-poll instead of spinning, which matters when ranks are oversubscribed.
"""
from __future__ import annotations

import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from mpi4py import MPI

from xasmpi.stages.base import FAILED, StagePlan, Task, TaskResult, failed

log = logging.getLogger("xasmpi")

TAG_PROGRESS, TAG_READY, TAG_TASK = 11, 12, 13


class Progress:
    """Rank-0 progress lines: done/total, rate, ETA, at most every ``interval`` seconds."""

    def __init__(self, stage: str, total: int, *, interval: float = 10.0, already: int = 0):
        self.stage, self.total, self.interval = stage, total, interval
        self.done, self.failed, self.already = 0, 0, already
        self.t0 = self._last = time.monotonic()

    def add(self, n_ok: int, n_failed: int) -> None:
        self.done += n_ok + n_failed
        self.failed += n_failed
        now = time.monotonic()
        if now - self._last >= self.interval and self.done < self.total:
            self._last = now
            self.line()

    def line(self) -> None:
        el = time.monotonic() - self.t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        log.info("%s: %d/%d tasks (%.1f%%), %.3g tasks/s, ETA %s, %d failed", self.stage, self.done,
                 self.total, 100.0 * self.done / max(self.total, 1), rate, _fmt_s(eta), self.failed)

    def summary(self) -> dict:
        wall = time.monotonic() - self.t0
        return {"stage": self.stage, "tasks": self.done, "failed": self.failed, "wall_s": wall,
                "tasks_per_s": self.done / wall if wall > 0 else float("nan"), "resumed": self.already}


def _fmt_s(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _run_unit(plan: StagePlan, tasks: list[Task]) -> list[TaskResult]:
    t0 = time.monotonic()
    try:
        results = plan.run_batch(tasks, plan.context)
    except Exception as exc:  # a bug or bad input inside the task function: record, go on
        msg = f"{type(exc).__name__}: {exc}"
        log.debug("unit failed: %s", traceback.format_exc())
        el = (time.monotonic() - t0) / max(len(tasks), 1)
        return [failed(t.index, msg, el) for t in tasks]
    return results


def _counts(results: list[TaskResult]) -> tuple[int, int]:
    nf = sum(1 for r in results if r.status == FAILED)
    return len(results) - nf, nf


def chunks(plan: StagePlan, pending: list[Task]) -> list[list[Task]]:
    """Pending tasks grouped by fixed global chunk (``index // plan.batch``), in index order."""
    out: dict[int, list[Task]] = {}
    for t in sorted(pending, key=lambda t: t.index):
        out.setdefault(t.index // plan.batch, []).append(t)
    return list(out.values())


def split_blocks(units: list[list[Task]], size: int) -> list[list[list[Task]]]:
    """Contiguous blocks of units, balanced by task count."""
    total = sum(len(u) for u in units)
    blocks: list[list[list[Task]]] = [[] for _ in range(size)]
    seen = 0
    for u in units:
        mid = seen + len(u) / 2.0
        blocks[min(int(mid * size / max(total, 1)), size - 1)].append(u)
        seen += len(u)
    return blocks


def run_tasks(plan: StagePlan, pending: list[Task], *, comm, on_results: Callable,
              progress: Progress | None) -> None:
    """Run ``pending`` tasks of ``plan`` over ``comm``; every rank calls this."""
    if plan.schedule == "dynamic" and comm.Get_size() > 1:
        _dynamic(plan, pending, comm, on_results, progress)
    else:
        _blocks(plan, pending, comm, on_results, progress)


def _blocks(plan, pending, comm, on_results, progress):
    rank, size = comm.Get_rank(), comm.Get_size()
    units = chunks(plan, pending) if plan.schedule == "block" else [[t] for t in sorted(pending, key=lambda t: (-t.cost, t.index))]
    mine = split_blocks(units, size)[rank] if plan.schedule == "block" else units
    expected_remote = sum(len(u) for u in units) - sum(len(u) for u in mine)
    reqs = []
    for unit in mine:
        res = _run_unit(plan, unit)
        on_results(res)
        if rank == 0:
            if progress:
                progress.add(*_counts(res))
            while comm.Iprobe(source=MPI.ANY_SOURCE, tag=TAG_PROGRESS):
                ok, nf = comm.recv(source=MPI.ANY_SOURCE, tag=TAG_PROGRESS)
                expected_remote -= ok + nf
                if progress:
                    progress.add(ok, nf)
        else:
            reqs.append(comm.isend(_counts(res), dest=0, tag=TAG_PROGRESS))
    if rank == 0:
        while expected_remote > 0:
            if comm.Iprobe(source=MPI.ANY_SOURCE, tag=TAG_PROGRESS):
                ok, nf = comm.recv(source=MPI.ANY_SOURCE, tag=TAG_PROGRESS)
                expected_remote -= ok + nf
                if progress:
                    progress.add(ok, nf)
            else:
                time.sleep(0.002)
    for r in reqs:
        r.wait()


def _wait(req, pause: float = 0.0002):
    """Complete a non-blocking receive without spinning a core (ranks may be oversubscribed)."""
    while True:
        done, value = req.test()
        if done:
            return value
        time.sleep(pause)


def _dynamic(plan, pending, comm, on_results, progress):
    """Master/worker queue.  Each worker keeps one request ahead (it asks for its next task
    before running the current one), so it never waits for rank 0 between tasks; rank 0
    serves requests from its main thread and runs its own tasks in a helper thread."""
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != 0:
        _worker(plan, comm, on_results)
        return
    queue = sorted(pending, key=lambda t: (-t.cost, t.index))  # longest first
    pos, finished = 0, 0
    pool = ThreadPoolExecutor(max_workers=1)
    own = None
    try:
        while finished < size - 1 or own is not None or pos < len(queue):
            busy = False
            if own is not None and own.done():
                res = own.result()
                on_results(res)
                if progress:
                    progress.add(*_counts(res))
                own, busy = None, True
            if own is None and pos < len(queue):
                own = pool.submit(_run_unit, plan, [queue[pos]])
                pos, busy = pos + 1, True
            status = MPI.Status()
            while comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                src, tag = status.Get_source(), status.Get_tag()
                ok, nf = comm.recv(source=src, tag=tag)
                if progress and ok + nf:
                    progress.add(ok, nf)
                if tag == TAG_READY:
                    comm.send(queue[pos] if pos < len(queue) else None, dest=src, tag=TAG_TASK)
                    pos = min(pos + 1, len(queue))
                else:  # TAG_PROGRESS: the worker has stopped
                    finished += 1
                busy = True
            if not busy:
                time.sleep(0.0002)
    finally:
        pool.shutdown(wait=True)


def _worker(plan, comm, on_results) -> None:
    counts = (0, 0)
    comm.send(counts, dest=0, tag=TAG_READY)
    outstanding = 1
    while outstanding:
        task = _wait(comm.irecv(source=0, tag=TAG_TASK))
        outstanding -= 1
        if task is None:
            continue
        comm.send(counts, dest=0, tag=TAG_READY)  # ask for the next task now (one ahead)
        outstanding += 1
        res = _run_unit(plan, [task])
        on_results(res)
        counts = _counts(res)
    comm.send(counts, dest=0, tag=TAG_PROGRESS)  # last counts; this worker is done
