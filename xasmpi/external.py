"""Running external programs (FDMNES, FEFF helpers, user commands) safely."""
from __future__ import annotations

import os
import signal
import subprocess
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
                name: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``args`` in its own process group with a timeout.

    On timeout the whole process group is killed.  A non-zero exit or a timeout raises
    :class:`ExternalProgramError` with the tail of stderr (or stdout).

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
    """
    name = name or args[0]
    try:
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                start_new_session=True)
    except FileNotFoundError:
        raise ExternalProgramError(f"{args[0]}: program not found") from None
    except PermissionError:
        raise ExternalProgramError(f"{args[0]}: not executable") from None
    try:
        out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise ExternalProgramError(f"{name}: timed out after {timeout:g} s"
                                   + (f"; stderr: {tail(err)}" if err else "")
                                   + (f" (in {cwd})" if cwd else "")) from None
    if proc.returncode != 0:
        raise ExternalProgramError(f"{name}: exit status {proc.returncode}"
                                   f"{' (in ' + str(cwd) + ')' if cwd else ''}; "
                                   f"stderr: {tail(err) or '(empty)'}; stdout: {tail(out, 200) or '(empty)'}")
    return subprocess.CompletedProcess(args, proc.returncode, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))
