"""Shared fixtures: running the CLI serially and under real ``mpirun``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
XASMPI = [sys.executable, "-m", "xasmpi"]


def mpirun_prefix(n: int) -> list[str]:
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        pytest.fail("mpirun not found: run the README's test command, which installs Open MPI")
    flags = ["--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    return [exe, *flags, "-n", str(n)]


def run_cli(args: list[str], *, n: int | None = None, cwd=None, env=None, timeout: float = 600,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run ``xasmpi ARGS`` (under ``mpirun -n N`` when ``n`` is given)."""
    cmd = (mpirun_prefix(n) if n else []) + XASMPI + [str(a) for a in args]
    e = dict(os.environ)
    e.setdefault("PYTHONPATH", str(REPO))
    if env:
        e.update(env)
    p = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def cli():
    return run_cli
