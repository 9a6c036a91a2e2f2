"""The task farm: schedules a stage's tasks over the ranks of a :class:`~xasmpi.parallel.comm.Comm`.

* ``block``: uniform tasks (replicates).  Pending tasks are grouped into fixed global
  chunks (``plan.batch`` consecutive indices) and the chunks are split into contiguous
  blocks, one per rank.  A chunk is always computed as a whole, so results do not depend
  on the number of ranks.
* ``dynamic``: uneven tasks (FDMNES runs).  Rank 0 keeps a longest-first queue and hands
  out guided batches (many small tasks per reply early, one task at a time at the end) to
  whichever rank asks; rank 0 also works, running its own task in a helper thread while its
  main thread serves the queue (all MPI calls stay on the main thread).  Every task's result
  is journalled as soon as it exists, batch or not.

Every rank hands its finished results to ``on_results`` as soon as they exist (the journal
records them at once; HDF5 rows are written in batches); rank 0 logs progress with rate and
ETA.  Waiting ranks sleep-poll instead of spinning, which matters when ranks are oversubscribed.
The messages between ranks go through the mpi4py communicator (``comm.mpi``); a one-rank run
(serial or ``mpirun -n 1``) sends none and never imports mpi4py here.
"""
from __future__ import annotations

import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from xasmpi.parallel.comm import Comm
from xasmpi.parallel.tasks import FAILED, StagePlan, Task, TaskResult, failed

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


def run_tasks(plan: StagePlan, pending: list[Task], *, comm: Comm, on_results: Callable,
              progress: Progress | None) -> None:
    """Run ``pending`` tasks of ``plan`` over ``comm``; every rank calls this."""
    if comm.size == 1:
        _serial(plan, pending, on_results, progress)
    elif plan.schedule == "dynamic":
        _dynamic(plan, pending, comm.mpi, on_results, progress)
    else:
        _blocks(plan, pending, comm.mpi, on_results, progress)


def _units(plan: StagePlan, pending: list[Task]) -> list[list[Task]]:
    """Fixed global chunks (block schedule) or single tasks longest first (dynamic schedule)."""
    if plan.schedule == "block":
        return chunks(plan, pending)
    return [[t] for t in sorted(pending, key=lambda t: (-t.cost, t.index))]


def _serial(plan, pending, on_results, progress):
    """One rank: the units in the order a multi-rank run would start them, no messages."""
    for unit in _units(plan, pending):
        res = _run_unit(plan, unit)
        on_results(res)
        if progress:
            progress.add(*_counts(res))


def _blocks(plan, pending, comm, on_results, progress):
    from mpi4py import MPI

    rank, size = comm.Get_rank(), comm.Get_size()
    units = _units(plan, pending)
    mine = split_blocks(units, size)[rank]
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


def guided_batch(queue: list[Task], pos: int, remaining_cost: float, size: int, *, factor: float = 2.0) -> int:
    """Number of tasks to hand out from ``queue[pos:]`` in one reply (guided self-scheduling).

    The batch holds consecutive tasks (longest first) until their estimated cost reaches
    ``remaining_cost / (factor · size)``, at least one task: early replies carry many small
    tasks (few messages), the tail goes one task at a time (balance).  Batching changes only
    which rank runs a task, never its result (seeds are per task index).
    """
    target = remaining_cost / (factor * max(size, 1))
    n, acc = 0, 0.0
    while pos + n < len(queue):
        c = max(float(queue[pos + n].cost), 0.0)
        if n and acc + c > target:
            break
        acc += c
        n += 1
    return n


def _dynamic(plan, pending, comm, on_results, progress):
    """Master/worker queue with guided batches.  A reply to a worker's request carries a
    batch of consecutive tasks (:func:`guided_batch`: many small tasks early, single tasks at
    the end); the worker runs them one at a time, handing each result to ``on_results`` (the
    journal) as soon as it exists, and asks for its next batch before starting the last task
    of the current one, so it never waits for rank 0.  Rank 0 serves requests from its main
    thread and runs its own tasks, one at a time, in a helper thread."""
    from mpi4py import MPI

    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != 0:
        _worker(plan, comm, on_results)
        return
    queue = sorted(pending, key=lambda t: (-t.cost, t.index))  # longest first
    remaining = sum(max(float(t.cost), 0.0) for t in queue)
    pos, finished = 0, 0
    pool = ThreadPoolExecutor(max_workers=1)
    own = None
    idle = 0.0002
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
                remaining -= max(float(queue[pos].cost), 0.0)
                pos, busy = pos + 1, True
            status = MPI.Status()
            while comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                src, tag = status.Get_source(), status.Get_tag()
                ok, nf = comm.recv(source=src, tag=tag)
                if progress and ok + nf:
                    progress.add(ok, nf)
                if tag == TAG_READY:
                    n = guided_batch(queue, pos, remaining, size)
                    batch = queue[pos:pos + n]
                    comm.send(batch or None, dest=src, tag=TAG_TASK)
                    remaining -= sum(max(float(t.cost), 0.0) for t in batch)
                    pos += n
                else:  # TAG_PROGRESS: the worker has stopped
                    finished += 1
                busy = True
            if busy:
                idle = 0.0002
            else:  # back off while nothing happens (ranks may share cores with rank 0)
                time.sleep(idle)
                idle = min(2 * idle, 0.002)
    finally:
        pool.shutdown(wait=True)


def _worker(plan, comm, on_results) -> None:
    counts = [0, 0]
    comm.send(tuple(counts), dest=0, tag=TAG_READY)
    outstanding = 1
    while outstanding:
        batch = _wait(comm.irecv(source=0, tag=TAG_TASK))
        outstanding -= 1
        if batch is None:
            continue
        if isinstance(batch, Task):  # a single task (older rank-0 protocol)
            batch = [batch]
        for j, task in enumerate(batch):
            if j == len(batch) - 1:  # ask for the next batch now (one ahead)
                comm.send(tuple(counts), dest=0, tag=TAG_READY)
                counts = [0, 0]
                outstanding += 1
            res = _run_unit(plan, [task])
            on_results(res)
            ok, nf = _counts(res)
            counts[0] += ok
            counts[1] += nf
    comm.send(tuple(counts), dest=0, tag=TAG_PROGRESS)  # last counts; this worker is done
