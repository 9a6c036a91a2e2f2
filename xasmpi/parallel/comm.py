"""The communicator the campaign talks to: the one place that decides between MPI and a serial run.

:class:`Comm` is the small interface the rest of xasmpi uses (``rank``, ``size``, ``bcast``,
``gather``, ``barrier``, ``bcast_or_raise``, ``abort``).  :class:`MpiComm` wraps an mpi4py
communicator; :class:`SerialComm` is one process and never imports mpi4py.  :func:`world`
picks one: MPI when the process was started by an MPI launcher (``mpirun``/``mpiexec``/``srun``
set ``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``, ``PMIX_RANK``, ...) or when ``XASMPI_MPI=1``; serial
otherwise (or with ``XASMPI_MPI=0``).  Results do not depend on the choice (seeds are per task
index): a serial run writes the same values as ``mpirun -n 1``.

The task farm (:mod:`xasmpi.parallel.driver`) uses the mpi4py communicator itself for its
point-to-point messages (``Comm.mpi``); so does h5py's ``mpio`` driver in :mod:`xasmpi.store`
(the handle is passed through, never used outside ``parallel/`` and ``store/``).
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from contextlib import contextmanager
from importlib import metadata
from typing import Any, Iterator

#: environment variables set by MPI launchers (Open MPI, PMIx, MPICH/Hydra/Intel MPI, MVAPICH)
LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MV2_COMM_WORLD_SIZE",
                 "MPI_LOCALNRANKS")
#: seconds between tests of a non-blocking barrier (waiting ranks sleep instead of spinning a core)
POLL_S = 0.005


class Comm:
    """What the campaign needs from a communicator; root is always rank 0."""

    rank: int = 0
    size: int = 1
    #: the mpi4py communicator (for the task farm and h5py's mpio driver), None for a serial run
    mpi: Any = None

    def bcast(self, value):
        """``value`` of rank 0 on every rank."""
        raise NotImplementedError

    def gather(self, value) -> list | None:
        """Rank 0: the list of every rank's ``value`` in rank order; other ranks: None."""
        raise NotImplementedError

    def barrier(self) -> None:
        """Wait for every rank, sleeping between tests (ranks may share cores)."""
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        """Stop every rank at once (a bug on one rank must not leave the others in a collective)."""
        raise NotImplementedError

    def bcast_or_raise(self, value, error: BaseException | None):
        """Rank 0's ``value``, or rank 0's ``error`` raised on every rank.

        The other ranks wait in :meth:`barrier` (rank 0 may be busy preparing a stage for
        minutes) before the broadcast, so they do not spin a core.
        """
        self.barrier()
        value, error = self.bcast((value, error))
        if error is not None:
            raise error
        return value


class SerialComm(Comm):
    """One process, no MPI."""

    def bcast(self, value):
        return value

    def gather(self, value) -> list:
        return [value]

    def barrier(self) -> None:
        return None

    def abort(self, code: int = 1) -> None:
        sys.stderr.flush()
        os._exit(code)


class MpiComm(Comm):
    """An mpi4py communicator behind :class:`Comm`."""

    def __init__(self, comm):
        self.mpi = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def bcast(self, value):
        return self.mpi.bcast(value, root=0)

    def gather(self, value) -> list | None:
        return self.mpi.gather(value, root=0)

    def barrier(self) -> None:
        req = self.mpi.Ibarrier()
        while not req.Test():
            time.sleep(POLL_S)

    def abort(self, code: int = 1) -> None:
        self.mpi.Abort(code)


def launched_by_mpi(environ=os.environ) -> bool:
    """True when an MPI launcher started this process (or ``XASMPI_MPI=1``); ``XASMPI_MPI=0`` forces serial."""
    force = environ.get("XASMPI_MPI", "").strip().lower()
    if force in ("0", "no", "false", "off"):
        return False
    if force in ("1", "yes", "true", "on"):
        return True
    return any(v in environ for v in LAUNCHER_VARS)


def world() -> Comm:
    """The communicator of all processes of this run: MPI under a launcher, else serial."""
    if not launched_by_mpi():
        return SerialComm()
    from mpi4py import MPI

    return MpiComm(MPI.COMM_WORLD)


def as_comm(comm) -> Comm:
    """``comm`` as a :class:`Comm`: None → :func:`world`, an mpi4py communicator → :class:`MpiComm`."""
    if comm is None:
        return world()
    if isinstance(comm, Comm):
        return comm
    return MpiComm(comm)


@contextmanager
def session(comm: Comm | None = None) -> Iterator[Comm]:
    """The set-up of a command that runs a campaign on every rank.

    Installs the exit handlers (programs started by this rank die with it, on SIGTERM/SIGHUP
    from mpirun or the scheduler) and yields the communicator; only rank 0 logs below WARNING
    (progress and summaries come from rank 0).  An error of xasmpi (raised identically on every
    rank) propagates; any other exception on one rank of a multi-rank run prints its traceback
    and aborts all ranks, so none is left waiting in a collective.
    """
    from xasmpi.errors import XasmpiError
    from xasmpi.external import install_exit_handlers

    install_exit_handlers()
    comm = as_comm(comm)
    if comm.rank != 0:
        logging.getLogger("xasmpi").setLevel(logging.WARNING)
    try:
        yield comm
    except XasmpiError:
        raise
    except Exception:
        if comm.size > 1:
            traceback.print_exc()
            sys.stderr.flush()
            comm.abort(1)
        raise


def mpi_versions() -> dict[str, str]:
    """``{"mpi4py": version}`` of the installed package (without importing it; "missing" if absent)."""
    try:
        return {"mpi4py": metadata.version("mpi4py")}
    except metadata.PackageNotFoundError:
        return {"mpi4py": "missing"}


def mpi_library() -> tuple[str, str]:
    """(MPI library version line, MPI standard version) for ``xasmpi doctor``; imports mpi4py."""
    from mpi4py import MPI

    lib = " ".join(MPI.Get_library_version().split()[:5]).rstrip(",")
    return lib, ".".join(map(str, MPI.Get_version()))
