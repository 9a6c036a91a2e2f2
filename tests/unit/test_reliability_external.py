"""Issue 13, external programs: no orphans after a task, none after the calling process dies,
and a resumed task does not start beside its previous program (serial; real processes)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xasmpi.external import run_program

RUNNING_FILE = ".xasmpi-running"  # xasmpi.external.RUNNING_FILE (spelled out: the test must run on old builds)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    t_end = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < t_end:
        time.sleep(0.05)
    return not _alive(pid)


def test_program_group_is_killed_when_the_task_ends(tmp_path):
    run_program(["/bin/sh", "-c", f"sleep 303 & echo $! > {tmp_path}/bg; exit 0"], timeout=30)
    pid = int((tmp_path / "bg").read_text())
    try:
        assert _wait_gone(pid, 2.0)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_failing_program_leaves_no_children(tmp_path):
    with pytest.raises(Exception, match="exit status 3"):
        run_program(["/bin/sh", "-c", f"sleep 304 & echo $! > {tmp_path}/bg; exit 3"], timeout=30)
    pid = int((tmp_path / "bg").read_text())
    try:
        assert _wait_gone(pid, 2.0)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_program_dies_with_the_process_that_started_it(tmp_path):
    code = ("import sys; from xasmpi.external import run_program; "
            f"run_program(['/bin/sh', '-c', 'echo $$ > {tmp_path}/pid; exec sleep 305'], timeout=600)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    pid = None
    try:
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end and not (tmp_path / "pid").is_file():
            time.sleep(0.05)
        time.sleep(0.2)
        pid = int((tmp_path / "pid").read_text())
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)  # like kill -9 of mpirun or of a rank
        parent.wait()
        assert _wait_gone(pid), "the program outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_resumed_task_stops_the_previous_program_first(tmp_path):
    """An orphan of an earlier run (recorded in the task folder) is stopped before the rerun."""
    old = subprocess.Popen(["sleep", "306"], start_new_session=True)
    try:
        (tmp_path / RUNNING_FILE).write_text(f"{old.pid} 0 {socket.gethostname()}\n")
        out = run_program(["/bin/sh", "-c", "echo rerun"], timeout=30, cwd=tmp_path)
        assert out.stdout.strip() == "rerun"
        assert old.wait(timeout=10) == -signal.SIGKILL
        assert not (tmp_path / RUNNING_FILE).exists()
    finally:
        if old.poll() is None:
            old.kill()


def test_featureless_fdmnes_output_is_an_error(tmp_path):
    """FDMNES exits 0 but computed nothing: a failed task, not a spectrum."""
    import numpy as np
    from ase import Atoms

    from xasmpi.errors import ExternalProgramError
    from xasmpi.xanes.fdmnes import FdmnesSettings, run_fdmnes, write_input

    header = (" 26711.000   48  1  1  6.38E-03 -2.07E+00 -2.0E+00  1  1  2.6469334E+04  1.97E+02  0.0E+00"
              "  6.70E-01  4.0E+00  0.0E+00  = E_edge, Z, n_edge, j_edge, Abs_before_edge, VO_interstitial,"
              " E_cut, ninit, ninit1, Epsii, UnitCell_Volume, Surface_ref, f0_forward, natomsym_f, abs_u_iso")
    rows = "\n".join(f"  {e:.4f}  0.0000000E+00" for e in np.arange(-10.0, 20.1, 5.0))
    (tmp_path / "flat.txt").write_text(header + "\n    Energy    <xanes>\n" + rows + "\n")
    fake = tmp_path / "fake"
    fake.write_text(f"#!/bin/sh\ncp {tmp_path}/flat.txt xanes.txt\nexit 0\n")
    fake.chmod(0o755)
    text = write_input(Atoms("CdS", positions=[(0, 0, 0), (2.52, 0, 0)]), 0,
                       FdmnesSettings(radius=3.0, e_min=-10.0, e_max=20.0, e_step=5.0, convolution=False))
    with pytest.raises(ExternalProgramError, match="featureless spectrum"):
        run_fdmnes(text, tmp_path / "work", binary=fake, timeout=30)
