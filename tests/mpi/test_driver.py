"""The campaign driver under real mpirun: rank independence, parallel HDF5, resume after
SIGKILL, failures and timeouts, locking, changed jobs and bad job files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import XASMPI, mpirun_prefix, run_cli

pytestmark = pytest.mark.mpi

JOB = """
[job]
name = "driver-test"
seed = 4242
output = "{out}"
[selftest]
tasks = {tasks}
sleep = {sleep}
schedule = "{schedule}"
fail = {fail}
{extra}
[run]
progress_interval = 0.5
"""


def write_job(tmp: Path, name: str, *, tasks=300, sleep=0.0, schedule="block", fail=(), extra="") -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(JOB.format(out=f"{name}.h5", tasks=tasks, sleep=sleep, schedule=schedule,
                            fail=list(fail), extra=extra))
    return p


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return f["selftest/values"][:], f["selftest/status"][:]


def test_parallel_hdf5_is_available():
    assert h5py.get_config().mpi, "h5py must be built against parallel HDF5 (README test command does it)"


@pytest.mark.parametrize("schedule", ["block", "dynamic"])
def test_results_identical_for_1_2_3_ranks(tmp_path, schedule):
    outs = []
    for n in (1, 2, 3):
        job = write_job(tmp_path, f"r{n}{schedule}", tasks=300, schedule=schedule, fail=(17,))
        p = run_cli(["run", job], n=n, cwd=tmp_path, check=True)
        assert "gathered on rank 0" not in p.stderr  # written through the mpio driver
        assert f"{n} rank(s)" in p.stderr
        outs.append(read(tmp_path / f"r{n}{schedule}.h5"))
        with h5py.File(tmp_path / f"r{n}{schedule}.h5", "r") as f:
            assert f.attrs["n_ranks"] == n
            assert "[selftest]" in f.attrs["job_toml"]
    for values, status in outs[1:]:
        assert np.array_equal(values, outs[0][0], equal_nan=True)  # bit-identical
        assert np.array_equal(status, outs[0][1])
    values, status = outs[0]
    assert (status == 1).sum() == 299 and status[17] == -1
    assert np.isnan(values[17]).all() and np.isfinite(values[np.arange(300) != 17]).all()


def test_fallback_without_mpio_gathers_on_rank0(tmp_path):
    ref = write_job(tmp_path, "ref", tasks=120)
    run_cli(["run", ref], n=1, cwd=tmp_path, check=True)
    job = write_job(tmp_path, "nompio", tasks=120)
    p = run_cli(["run", job], n=2, cwd=tmp_path, env={"XASMPI_NO_MPIO": "1"}, check=True)
    assert "gathered on rank 0" in p.stderr
    assert np.array_equal(read(tmp_path / "nompio.h5")[0], read(tmp_path / "ref.h5")[0], equal_nan=True)


def _journal_records(out: Path) -> int:
    d = Path(str(out) + ".journal")
    return sum(f.stat().st_size for f in d.glob("selftest.*.jnl")) if d.is_dir() else 0


def _session_pids(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _rank_pids(sid: int) -> list[int]:
    out = []
    for pid in _session_pids(sid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"xasmpi" in cmd and not any(c.endswith(b"mpirun") for c in cmd[:1]):
            out.append(pid)
    return sorted(out)


@pytest.mark.parametrize("victim", ["job", "one-rank"])
def test_sigkill_midway_resumes_to_same_file(tmp_path, victim):
    ref = write_job(tmp_path, "full", tasks=400, sleep=0.01)
    run_cli(["run", ref], n=2, cwd=tmp_path, check=True)
    job = write_job(tmp_path, "killed", tasks=400, sleep=0.01)
    cmd = mpirun_prefix(2) + XASMPI + ["run", str(job)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out = tmp_path / "killed.h5"
    deadline = time.monotonic() + 60
    while _journal_records(out) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    if victim == "job":  # what a scheduler does: SIGKILL to mpirun and every rank at once
        for pid in _session_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)
    else:  # one rank dies; mpirun tears the job down
        os.kill(_rank_pids(proc.pid)[-1], signal.SIGKILL)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while _session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not out.exists(), "killed before the end: the final file must not exist yet"
    p = run_cli(["run", job], n=2, cwd=tmp_path, check=True)
    resumed = [line for line in p.stderr.splitlines() if "already done" in line][0]
    already = int(resumed.split("tasks, ")[1].split(" already")[0])
    assert 0 < already < 400, resumed
    a, b = read(out), read(tmp_path / "full.h5")
    assert np.array_equal(a[0], b[0], equal_nan=True) and np.array_equal(a[1], b[1])


def test_failures_and_hanging_program_are_recorded_then_retried(tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("x")
    # task 3 raises; task 5 runs a program that hangs; task 9 fails while the flag file exists
    cmd = (f"if [ {{index}} -eq 5 ] && [ -e {flag} ]; then sleep 60; fi; "
           f"if [ {{index}} -eq 9 ] && [ -e {flag} ]; then echo disk on fire >&2; exit 3; fi")
    job = write_job(tmp_path, "fail", tasks=40, schedule="dynamic", fail=(3,),
                    extra=f"command = '''{cmd}'''\ntimeout = 1.0")
    p = run_cli(["run", job], n=2, cwd=tmp_path, check=True, timeout=120)
    assert "3 failed" in p.stderr
    s = json.loads(run_cli(["summary", tmp_path / "fail.h5", "--json"], check=True).stdout)
    assert s["failed_tasks"] == 3
    with h5py.File(tmp_path / "fail.h5", "r") as f:
        msgs = dict(zip(f["tasks/selftest/failed_index"][:], f["tasks/selftest/failed_message"].asstr()[:]))
    assert set(msgs) == {3, 5, 9}
    assert "injected failure" in msgs[3]
    assert "timed out after 1 s" in msgs[5]
    assert "exit status 3" in msgs[9] and "disk on fire" in msgs[9]
    flag.unlink()
    p = run_cli(["run", job, "--retry-failed"], n=2, cwd=tmp_path, check=True, timeout=120)
    assert "3 to run" in p.stderr  # only the failed ones
    values, status = read(tmp_path / "fail.h5")
    assert status[3] == -1 and (np.delete(status, 3) == 1).all()  # injected failure is deterministic


def test_second_run_on_same_output_is_refused(tmp_path):
    job = write_job(tmp_path, "busy", tasks=200, sleep=0.02)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    first = subprocess.Popen(XASMPI + ["run", str(job)], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while _journal_records(tmp_path / "busy.h5") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    p = run_cli(["run", job], n=2, cwd=tmp_path)
    first.wait(timeout=120)
    assert p.returncode == 2
    assert "another xasmpi run is writing this output" in p.stderr and "Traceback" not in p.stderr
    assert first.returncode == 0


def test_changed_job_refused_unless_restart(tmp_path):
    job = write_job(tmp_path, "chg", tasks=20)
    run_cli(["run", job], cwd=tmp_path, check=True)
    before = read(tmp_path / "chg.h5")[0]
    p = run_cli(["run", job, "--set", "selftest.values=5"], n=2, cwd=tmp_path)
    assert p.returncode == 2 and "different job" in p.stderr and "selftest" in p.stderr and "--restart" in p.stderr
    assert np.array_equal(read(tmp_path / "chg.h5")[0], before)  # untouched
    p = run_cli(["run", job, "--set", "selftest.values=5", "--restart"], n=2, cwd=tmp_path, check=True)
    assert read(tmp_path / "chg.h5")[0].shape == (20, 5)
    kept = list(tmp_path.glob("chg.h5.replaced-*"))
    assert kept and np.array_equal(h5py.File(kept[0], "r")["selftest/values"][:], before)
    with h5py.File(tmp_path / "chg.h5", "r") as f:
        assert json.loads(f.attrs["job_overrides"]) == ["selftest.values=5"]


@pytest.mark.parametrize("body, key, problem", [
    ("[selftest]\ntasks = 5\nbogus = 1\n", "selftest.bogus", "unknown key"),
    ("[selftest]\ntasks = 'many'\n", "selftest.tasks", "expected an integer"),
    ("[selftest]\ntasks = -3\n", "selftest.tasks", "out of range"),
    ("[selftest]\nsleep = '2 parsecs'\n", "selftest.sleep", "unit 'parsecs'"),
    ("[reduction]\nrbkg = '0.8 eV'\n[selftest]\n", "reduction.rbkg", "unit 'eV'"),
])
def test_bad_job_files_exit_2_with_key_and_file(tmp_path, body, key, problem):
    job = tmp_path / "bad.toml"
    job.write_text(body)
    p = run_cli(["run", job], n=2, cwd=tmp_path)
    assert p.returncode != 0
    assert str(job) in p.stderr and f"'{key}'" in p.stderr and problem in p.stderr
    assert "Traceback" not in p.stderr
    assert run_cli(["run", job], cwd=tmp_path).returncode == 2


def test_guided_batches_cover_the_queue_longest_first_and_end_with_single_tasks():
    from xasmpi.parallel.driver import guided_batch
    from xasmpi.parallel.tasks import Task

    queue = [Task(index=i, group="/g", row=i, cost=1.0) for i in range(2000)]
    pos, remaining, sizes = 0, 2000.0, []
    while pos < len(queue):
        n = guided_batch(queue, pos, remaining, 16)
        assert n >= 1
        sizes.append(n)
        remaining -= n
        pos += n
    assert sum(sizes) == 2000 and sizes[0] == 62 and sizes[-1] == 1   # 2000 / (2 x 16) first
    assert len(sizes) < 300                                           # not one message per task
    # uneven costs: an expensive task goes alone
    q2 = [Task(index=0, group="/g", row=0, cost=100.0)] + [Task(index=i, group="/g", row=i, cost=1.0)
                                                            for i in range(1, 50)]
    assert guided_batch(q2, 0, 149.0, 2) == 1
