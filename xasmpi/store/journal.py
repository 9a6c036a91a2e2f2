"""Per-rank append-only journals: the durable record of finished tasks.

Every rank appends each finished task (or chunk of tasks) to its own file
``<output>.journal/<stage>.<host>.<pid>.<token>.r<rank>.jnl`` and syncs it before starting the
next unit, so a kill at any instant loses only the tasks in flight.  Records are
``[u32 length][u32 crc32][pickle]``; a torn record at the end of a file (the kill landed
mid-write) is detected by its length or checksum and ignored.  The HDF5 results file is
always rebuilt from the journals, never trusted after a crash.
"""
from __future__ import annotations

import os
import pickle
import socket
import struct
import uuid
import zlib
from pathlib import Path

from xasmpi.parallel.tasks import FAILED, OK, TaskResult

_HEAD = struct.Struct("<II")


def journal_dir(output: str | os.PathLike) -> Path:
    """Folder of the journals that belong to results file ``output``."""
    return Path(str(output) + ".journal")


class JournalWriter:
    """Append-only journal of one rank for one stage."""

    def __init__(self, output: str | os.PathLike, stage: str, rank: int, *, fsync: bool = True):
        d = journal_dir(output)
        d.mkdir(parents=True, exist_ok=True)
        # a fresh file per run and rank (never appended after another run's torn tail)
        self.path = d / f"{stage}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.r{rank}.jnl"
        self._fh = open(self.path, "xb", buffering=0)
        self._fsync = fsync

    def append(self, results: list[TaskResult]) -> None:
        """Durably record finished results (one write, then fsync)."""
        if not results:
            return
        blob = pickle.dumps([(r.index, r.status, r.values, r.message, r.elapsed, r.rank) for r in results],
                            protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._fh.write(_HEAD.pack(len(blob), zlib.crc32(blob)) + blob)
            if self._fsync:
                os.fdatasync(self._fh.fileno())
        except OSError as exc:  # disk full, quota: a torn record is ignored on reading
            from xasmpi.errors import CampaignError

            err = CampaignError(f"{self.path}: cannot append to the journal ({exc.strerror or exc}); "
                                "the records before this one are intact: fix the cause and rerun")
            err.hard_exit = True  # the results file may be open with unflushable data
            raise err from None

    def close(self) -> None:
        self._fh.close()


def _records(path: Path):
    data = path.read_bytes()
    pos = 0
    while pos + _HEAD.size <= len(data):
        n, crc = _HEAD.unpack_from(data, pos)
        blob = data[pos + _HEAD.size: pos + _HEAD.size + n]
        if len(blob) < n or zlib.crc32(blob) != crc:
            break  # torn tail from a kill: everything before it is intact
        yield from pickle.loads(blob)
        pos += _HEAD.size + n


def has_records(path: Path) -> bool:
    """True if the journal file holds at least one intact record."""
    return next(iter(_records(Path(path))), None) is not None


def read_journals(output: str | os.PathLike, stage: str) -> dict[int, TaskResult]:
    """All recorded results of a stage, by task index.

    When a task was recorded more than once (``--retry-failed``), a success wins over a
    failure, and otherwise the later record wins.
    """
    out: dict[int, TaskResult] = {}
    d = journal_dir(output)
    if not d.is_dir():
        return out
    files = sorted(d.glob(f"{stage}.*.jnl"), key=lambda p: p.stat().st_mtime)
    for f in files:
        for index, status, values, message, elapsed, rank in _records(f):
            old = out.get(index)
            if old is not None and old.status == OK and status == FAILED:
                continue
            out[index] = TaskResult(index, status, values, message, elapsed, rank)
    return out
