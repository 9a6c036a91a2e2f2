"""Running external programs (FDMNES, user commands) safely: own process group, timeout."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from xasmpi.errors import ExternalProgramError


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
    programs can write a lot), else to temporary files.  On timeout the whole process group
    is killed.  A program that cannot start, exits non-zero or times out raises
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
    with tempfile.TemporaryDirectory(prefix="xasmpi-run-") as tmp:
        out_path = Path(stdout) if stdout else Path(tmp) / "stdout"
        err_path = Path(stderr) if stderr else Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as exc:
                raise ExternalProgramError(f"{name}: cannot start ({exc.strerror or exc})") from None
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
                rc = None
        o = out_path.read_text(errors="replace")
        e = err_path.read_text(errors="replace")
    last = tail(e) or tail(o)
    if rc is None:
        raise ExternalProgramError(f"{name}{where}: timed out after {timeout:g} s (killed)"
                                   + (f"; tail: {last}" if last else ""))
    if rc != 0:
        raise ExternalProgramError(f"{name}{where}: exit status {rc}; tail: {last or '(no output)'}")
    return subprocess.CompletedProcess(args, rc, o, e)
