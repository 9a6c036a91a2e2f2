"""Running external programs (FDMNES, user commands) safely: own process group, timeout,
no orphans.

* Each program runs in its own session (process group); when it ends, times out or fails,
  the whole group is killed, so background children it left behind do not outlive the task.
* The program gets ``PR_SET_PDEATHSIG = SIGKILL`` (Linux): if the rank dies (``kill -9`` of
  mpirun or of the rank), the kernel kills the program too.  Groups still running when the
  rank exits normally, or on SIGTERM/SIGHUP (:func:`install_exit_handlers`), are killed.
* With a working directory the running program is recorded in ``<cwd>/.xasmpi-running``
  (pid, start time, host).  A resumed task whose previous program (e.g. an orphan from a
  killed run on a system without ``PDEATHSIG``) is still running kills that group and waits
  for it before starting, so two runs never share a working directory.
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from xasmpi.errors import ExternalProgramError

log = logging.getLogger("xasmpi")
RUNNING_FILE = ".xasmpi-running"
_PR_SET_PDEATHSIG = 1
try:  # resolved once here: the child calls only this function pointer between fork and exec
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


def _child_setup() -> None:  # runs in the child after fork
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def kill_group(pgid: int) -> None:
    """SIGKILL process group ``pgid`` (no error if it is gone)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all() -> None:
    """Kill every process group this process started and that may still run."""
    with _LIVE_LOCK:
        groups = list(_LIVE)
        _LIVE.clear()
    for g in groups:
        kill_group(g)


atexit.register(kill_all)


def install_exit_handlers() -> None:
    """On SIGTERM/SIGHUP (mpirun aborting, the scheduler ending the job): kill the running
    programs, then die of the signal as before.  Call from the main thread."""
    def handler(signum, frame):
        kill_all()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, handler)


def _start_time(pid: int) -> str | None:
    """Start time of ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_previous(cwd: str | os.PathLike) -> bool:
    """Kill the program a previous run left running in ``cwd`` (see the module docstring).

    Returns True if one was still running (and is now gone).
    """
    f = Path(cwd) / RUNNING_FILE
    try:
        pid_s, _start, host = f.read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return False
    # the program leads its own group (pgid = pid): the group exists while it or a child runs
    alive = host == socket.gethostname() and _group_alive(pid)
    if alive:
        log.warning("%s: the program of a previous run (pid %d) is still running: killing its process "
                    "group before starting again", cwd, pid)
        kill_group(pid)
        t_end = time.monotonic() + 10.0
        while _group_alive(pid) and time.monotonic() < t_end:
            time.sleep(0.05)
    f.unlink(missing_ok=True)
    return alive


def tail(text: str | bytes | None, n: int = 400) -> str:
    """Last ``n`` characters of a program's output, on one line."""
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text[-n:].split())


def run_program(args: list[str], *, timeout: float, cwd: str | os.PathLike | None = None,
                name: str | None = None, stdout: str | os.PathLike | None = None,
                stderr: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run ``args`` in its own process group with a timeout.

    Output goes to the files ``stdout``/``stderr`` when given (kept for inspection; long
    programs can write a lot), else to temporary files.  When the program ends (or times
    out, or this call is interrupted) its whole process group is killed.  A program that cannot start, exits non-zero or times out raises
    :class:`ExternalProgramError` with the tail of its stderr (or stdout).

    Parameters
    ----------
    args : list of str
        Program and arguments.
    timeout : float
        Seconds before the program (and its children) are killed.
    cwd : path, optional
        Working directory.
    name : str, optional
        Label for messages (default: the program path).
    stdout, stderr : path, optional
        Files that receive the program's output.

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` and ``stderr`` as text.
    """
    name = name or args[0]
    where = f" (in {cwd})" if cwd else ""
    running = Path(cwd) / RUNNING_FILE if cwd else None
    if running is not None:
        stop_previous(cwd)
    with tempfile.TemporaryDirectory(prefix="xasmpi-run-") as tmp:
        out_path = Path(stdout) if stdout else Path(tmp) / "stdout"
        err_path = Path(stderr) if stderr else Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=_child_setup)
            except OSError as exc:
                raise ExternalProgramError(f"{name}: cannot start ({exc.strerror or exc})") from None
            with _LIVE_LOCK:
                _LIVE.add(proc.pid)
            try:
                if running is not None:
                    running.write_text(f"{proc.pid} {_start_time(proc.pid) or 0} {socket.gethostname()}\n")
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    rc = None
            finally:
                # the program, and anything it left in its group, ends with the task
                kill_group(proc.pid)
                proc.wait()
                with _LIVE_LOCK:
                    _LIVE.discard(proc.pid)
                if running is not None:
                    running.unlink(missing_ok=True)
        o = out_path.read_text(errors="replace")
        e = err_path.read_text(errors="replace")
    last = tail(e) or tail(o)
    if rc is None:
        raise ExternalProgramError(f"{name}{where}: timed out after {timeout:g} s (killed)"
                                   + (f"; tail: {last}" if last else ""))
    if rc != 0:
        raise ExternalProgramError(f"{name}{where}: exit status {rc}; tail: {last or '(no output)'}")
    return subprocess.CompletedProcess(args, rc, o, e)
