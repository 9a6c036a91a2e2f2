"""Issue 13, MPI: external programs never outlive their task or their rank, structure files
read on one rank while the other waits (ASE I/O with parallel=False), a featureless FDMNES
spectrum is a failed task, ranks recorded per stage — all under real ``mpirun -n 2``."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, XASMPI, mpirun_prefix, run_cli

pytestmark = pytest.mark.mpi


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pids(folder: Path, prefix: str) -> list[int]:
    return [int(p.read_text().split()[0]) for p in sorted(folder.glob(prefix + "*")) if p.read_text().strip()]


def _cleanup(pids):
    """Kill, by id, test processes an old build may have left behind."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_background_children_die_with_their_task(tmp_path):
    job = tmp_path / "bg.toml"
    job.write_text(f'[job]\noutput = "bg.h5"\n[selftest]\ntasks = 4\nschedule = "dynamic"\n'
                   f'command = "sleep 301 & echo $! > {tmp_path}/bg_{{index}}; exit 0"\n')
    p = run_cli(["run", job], n=2, cwd=tmp_path, timeout=300)
    pids = _pids(tmp_path, "bg_")
    try:
        assert p.returncode == 0, p.stderr
        assert len(pids) == 4
        time.sleep(0.5)
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        _cleanup(pids)


def test_programs_die_when_mpirun_is_killed(tmp_path):
    job = tmp_path / "long.toml"
    job.write_text(f'[job]\noutput = "long.h5"\n[selftest]\ntasks = 4\n'
                   f'command = "echo $$ > {tmp_path}/run_{{index}}; exec sleep 302"\ntimeout = 600\n')
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = mpirun_prefix(2) + XASMPI + ["run", str(job)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids: list[int] = []
    try:
        t_end = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < t_end:  # one program per rank is running
            time.sleep(0.2)
            pids = _pids(tmp_path, "run_")
        assert len(pids) >= 2 and all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t_end = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < t_end:
            time.sleep(0.2)
        assert not [pid for pid in pids if _alive(pid)], "programs outlived the killed run"
    finally:
        if proc.poll() is None:
            proc.kill()
        _cleanup(pids)


def test_ranks_recorded_per_stage_after_a_serial_resume(tmp_path):
    flag = tmp_path / "flag_3"
    flag.write_text("")
    job = tmp_path / "r.toml"
    job.write_text(f'[job]\noutput = "r.h5"\n[selftest]\ntasks = 8\n'
                   f'command = "test ! -f {tmp_path}/flag_{{index}}"\n')
    p = run_cli(["run", job], n=2, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr  # 7 of 8 ok
    flag.unlink()
    run_cli(["run", job, "--retry-failed"], cwd=tmp_path, check=True, timeout=300)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert json.loads(f.attrs["stage_runs"])["selftest"]["ranks"] == [2, 1]
        assert (f["selftest/status"][()] == 1).all()
    s = run_cli(["summary", tmp_path / "r.h5"], check=True)
    assert "selftest (2+1 ranks)" in s.stdout


XANES_FROM_FILES = """
[job]
output = "files.h5"
[xanes]
radius = 3.0
emin = -40
emax = 60
estep = 2.0
{fdmnes}
[[xanes.candidates]]
name = "tetra"
file = "tetra.xyz"
[analysis]
models = ["tetra.xyz"]
"""


def _tetra(folder: Path) -> None:
    from ase import Atoms
    from ase.io import write

    d = 2.52 / np.sqrt(3)
    atoms = Atoms("CdS4", positions=[(0, 0, 0), (d, d, d), (-d, -d, d), (-d, d, -d), (d, -d, -d)])
    write(str(folder / "tetra.xyz"), atoms, parallel=False)


@pytest.mark.fdmnes
def test_xanes_candidate_and_analysis_model_from_files(tmp_path):
    _tetra(tmp_path)
    job = tmp_path / "files.toml"
    job.write_text(XANES_FROM_FILES.format(fdmnes=""))
    p = run_cli(["run", job], n=2, cwd=tmp_path, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    with h5py.File(tmp_path / "files.h5", "r") as f:
        assert (f["/xanes/tetra/absorbers/status"][()] == 1).all()
        assert np.ptp(f["/xanes/tetra/mu"][()]) > 0
        assert "tetra" in f["/analysis/angles"]


def test_featureless_fdmnes_spectrum_is_a_failed_task_and_all_failed_exits_non_zero(tmp_path):
    _tetra(tmp_path)
    fake = tmp_path / "flat_fdmnes"
    rows = "\n".join(f"  {e:.4f}  1.0000000E-03" for e in np.arange(-40.0, 60.1, 2.0))
    header = (" 26711.000   48  1  1  6.38E-03 -2.07E+00 -2.0E+00  1  1  2.6469334E+04  1.97E+02  0.0E+00"
              "  6.70E-01  4.0E+00  0.0E+00  = E_edge, Z, n_edge, j_edge, Abs_before_edge, VO_interstitial,"
              " E_cut, ninit, ninit1, Epsii, UnitCell_Volume, Surface_ref, f0_forward, natomsym_f, abs_u_iso")
    (tmp_path / "flat.txt").write_text(header + "\n    Energy    <xanes>\n" + rows + "\n")
    smoke = "\n".join(f"  {e:.4f}  {1e-3 * (2 + i):.7E}" for i, e in enumerate((-5.0, 0.0, 5.0, 10.0)))
    (tmp_path / "smoke.txt").write_text(header + "\n    Energy    <xanes>\n" + smoke + "\n")
    # passes the driver's smoke test (a binary that works), then computes nothing: flat output, exit 0
    fake.write_text("#!/bin/sh\n" + textwrap.dedent(f"""\
        out=$(sed -n '/^ *Filout/{{n;p}}' fdmnes_in.txt | tr -d ' ')
        if grep -q "smoke test" fdmnes_in.txt; then cp {tmp_path}/smoke.txt "$out.txt"; exit 0; fi
        cp {tmp_path}/flat.txt "$out.txt"
        exit 0
        """))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    job = tmp_path / "flat.toml"
    job.write_text(XANES_FROM_FILES.format(fdmnes=f'fdmnes = "{fake}"').replace("[analysis]\nmodels = [\"tetra.xyz\"]\n", ""))
    p = run_cli(["run", job, "--stages", "xanes"], n=2, cwd=tmp_path, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "every task of stage(s) xanes" in p.stderr and "MPI_ABORT" not in p.stderr
    with h5py.File(tmp_path / "files.h5", "r") as f:
        msgs = list(f["/tasks/xanes/failed_message"].asstr()[()])
        assert msgs and all("featureless" in m for m in msgs)
    # a rerun and --retry-failed get past it the same way (recorded again, not an abort)
    p = run_cli(["run", job, "--stages", "xanes", "--retry-failed"], n=2, cwd=tmp_path, timeout=600)
    assert p.returncode == 1 and "every task" in p.stderr
