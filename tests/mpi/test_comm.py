"""The communicator layer: a run without mpirun is serial (no mpi4py import) and writes the same
bits as the same job on 2 ranks; only an MPI launcher (or XASMPI_MPI) selects MPI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.mpi

JOB = """
[job]
name = "comm-test"
seed = 99
output = "{out}"
[selftest]
tasks = 120
schedule = "{schedule}"
fail = [5]
"""

#: run the CLI in this process and report whether mpi4py's MPI module was ever imported
IN_PROCESS = """
import sys
from xasmpi.cli import main
try:
    main(["run", sys.argv[1]])
except SystemExit as exc:
    assert not exc.code, exc.code
print("MPI-IMPORTED" if "mpi4py.MPI" in sys.modules else "NO-MPI")
"""


def _job(tmp: Path, name: str, schedule: str) -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(JOB.format(out=f"{name}.h5", schedule=schedule))
    return p


def _read(path: Path):
    with h5py.File(path, "r") as f:
        return f["selftest/values"][:], f["selftest/status"][:], int(f.attrs["n_ranks"])


@pytest.mark.parametrize("schedule", ["block", "dynamic"])
def test_serial_run_needs_no_mpi_and_matches_two_ranks(tmp_path, schedule):
    env = {k: v for k, v in __import__("os").environ.items() if k != "XASMPI_MPI"}
    env.setdefault("PYTHONPATH", str(REPO))
    p = subprocess.run([sys.executable, "-c", IN_PROCESS, str(_job(tmp_path, "serial", schedule))], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("NO-MPI")
    assert "1 rank(s)" in p.stderr and "gathered on rank 0" not in p.stderr
    run_cli(["run", _job(tmp_path, "two", schedule)], n=2, cwd=tmp_path, check=True)
    (v1, s1, n1), (v2, s2, n2) = _read(tmp_path / "serial.h5"), _read(tmp_path / "two.h5")
    assert (n1, n2) == (1, 2)
    assert np.array_equal(v1, v2, equal_nan=True) and np.array_equal(s1, s2)  # bit-identical
    assert (s1 == 1).sum() == 119 and s1[5] == -1


def test_launcher_environment_selects_mpi():
    from xasmpi.parallel.comm import SerialComm, as_comm, launched_by_mpi

    assert not launched_by_mpi({})
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "1"}) and launched_by_mpi({"PMI_SIZE": "4"})
    assert launched_by_mpi({"XASMPI_MPI": "1"}) and not launched_by_mpi({"XASMPI_MPI": "0", "PMIX_RANK": "0"})
    c = SerialComm()
    assert as_comm(c) is c and (c.rank, c.size, c.mpi) == (0, 1, None)
    assert c.gather(3) == [3] and c.bcast_or_raise(7, None) == 7
    with pytest.raises(KeyError):
        c.bcast_or_raise(None, KeyError("rank 0's error"))


@pytest.mark.parametrize("force, expect", [(None, "MPI-IMPORTED"), ("0", "NO-MPI")])
def test_mpirun_selects_mpi_unless_forced_serial(tmp_path, force, expect):
    """Under ``mpirun -n 1`` the run uses MPI; ``XASMPI_MPI=0`` makes it serial; same values."""
    from tests.conftest import mpirun_prefix

    env = {k: v for k, v in __import__("os").environ.items() if k != "XASMPI_MPI"}
    env.setdefault("PYTHONPATH", str(REPO))
    if force is not None:
        env["XASMPI_MPI"] = force
    name = f"one{force}"
    p = subprocess.run(mpirun_prefix(1) + [sys.executable, "-c", IN_PROCESS, str(_job(tmp_path, name, "block"))],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith(expect)
    v, s, n = _read(tmp_path / f"{name}.h5")
    assert n == 1 and (s == 1).sum() == 119 and s[5] == -1
