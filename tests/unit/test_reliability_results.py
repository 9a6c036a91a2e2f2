"""Issue 13, provenance and the results file: a file never claims what it is not, damaged
files and journals are handled, bad states are one-line errors (exit 2).  Serial CLI runs of
small selftest/reduce jobs on the real CdS scan."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from xasmpi.testing import xaslib_dir

LIB = xaslib_dir()
JOB = f"""
[job]
output = "r.h5"
seed = 7
[selftest]
tasks = 12
[[spectra]]
name = "CdS"
file = "{LIB}/CdS_10K_01.xdi"
"""


class _Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys, monkeypatch):
    """``xasmpi ARGS`` in this process (the real CLI entry point; imports paid once)."""
    import logging

    from xasmpi.cli import main

    def run(args, cwd=None, check=False):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        logging.getLogger("xasmpi").handlers.clear()  # bind the log to this call's captured stderr
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        done = _Done(code, out, err)
        if check:
            _ok(done)
        return done

    return run


def _job(tmp_path, text=JOB, name="job.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _ok(p):
    assert p.returncode == 0, p.stdout + p.stderr


def _error_line(p) -> str:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, p.stderr
    return lines[0]


def _attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def test_changed_task_stage_left_out_of_stages_is_refused(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    before = (tmp_path / "r.h5").read_bytes()
    p = cli(["run", job, "--set", "job.seed=8", "--set", "reduction.rbkg=1.2", "--stages", "reduce"],
                cwd=tmp_path)
    line = _error_line(p)
    assert "selftest" in line and "leaves it out" in line
    assert (tmp_path / "r.h5").read_bytes() == before  # the file still describes its results


def test_stage_left_stale_is_marked_in_attrs_and_summary(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    _ok(cli(["run", job, "--set", "reduction.rbkg=1.2", "--stages", "selftest"], cwd=tmp_path))
    a = _attrs(tmp_path / "r.h5")
    assert json.loads(a["stale_stages"]) == ["reduce"]
    runs = json.loads(a["stage_runs"])
    assert runs["reduce"]["fingerprint"] != runs["selftest"]["job_fingerprint"]
    s = cli(["summary", tmp_path / "r.h5"])
    assert "STALE" in s.stdout and "WARNING" in s.stderr and "reduce" in s.stderr
    js = json.loads(cli(["summary", tmp_path / "r.h5", "--json"], check=True).stdout)
    assert js["stale_stages"] == ["reduce"]
    # rerunning the stale stage brings the file up to date
    _ok(cli(["run", job, "--set", "reduction.rbkg=1.2", "--stages", "reduce"], cwd=tmp_path))
    assert json.loads(_attrs(tmp_path / "r.h5")["stale_stages"]) == []


def test_corrected_rerun_after_a_run_died_before_any_task_is_accepted(tmp_path, cli):
    text = JOB.replace("[selftest]\ntasks = 12\n", "") + "[selftest]\ntasks = 4\n[job2]\n"
    text = text.replace("[job2]\n", "")
    job = _job(tmp_path, text.replace('seed = 7', 'seed = 7\nstages = ["reduce", "selftest"]'))
    p = cli(["run", job, "--set", "reduction.kmax=18"], cwd=tmp_path)  # data end at k = 17
    assert p.returncode == 2 and "kmax" in p.stderr
    _ok(cli(["run", job, "--set", "reduction.kmax=11", "--set", "job.seed=9"], cwd=tmp_path))
    assert int(_attrs(tmp_path / "r.h5")["seed"]) == 9


def test_failed_restart_checks_inputs_before_moving_journals(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    manifest = (tmp_path / "r.h5.journal" / "manifest.json").read_text()
    p = cli(["run", job, "--restart", "--set", "job.seed=8", "--set", f'spectra.0.file="{tmp_path}/gone.xdi"'],
                cwd=tmp_path)
    assert "gone.xdi" in _error_line(p)
    assert not list(tmp_path.glob("r.h5.journal.replaced-*")) and not list(tmp_path.glob("r.h5.replaced-*"))
    assert (tmp_path / "r.h5.journal" / "manifest.json").read_text() == manifest
    p = cli(["run", job], cwd=tmp_path)  # the unchanged job still resumes: nothing to recompute
    _ok(p)
    assert "12 already done" in p.stderr


def test_partial_of_an_interrupted_restart_is_never_complete_and_is_flagged(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    # the restart recomputes selftest, then dies in reduce (data end below kmax)
    p = cli(["run", job, "--restart", "--set", "job.seed=8", "--set", "reduction.kmax=18"], cwd=tmp_path)
    assert p.returncode == 2
    partial = tmp_path / "r.h5.partial"
    assert partial.is_file() and bool(_attrs(partial)["complete"]) is False
    s = cli(["summary", partial])
    assert "INCOMPLETE" in s.stdout and "WARNING" in s.stderr and ".partial" in s.stderr
    r = cli(["report", partial, "--out", tmp_path / "rep"])
    assert "INCOMPLETE" in r.stderr


def test_corrupted_output_is_rebuilt_from_the_journals(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    with h5py.File(tmp_path / "r.h5", "r") as f:
        good = f["selftest/values"][()]
    out = tmp_path / "r.h5"
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 3])  # truncated, e.g. copied while a disk filled
    p = cli(["run", job], cwd=tmp_path)
    _ok(p)
    assert "rebuilt from the journals" in p.stderr
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["selftest/values"][()], good)
        assert "CdS" in f["exafs"]


def test_flipped_bit_fails_the_checksum(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    out = tmp_path / "r.h5"
    with h5py.File(out, "r") as f:
        ds = f["selftest/values"]
        assert ds.fletcher32
        off = ds.id.get_chunk_info(0).byte_offset
    with open(out, "r+b") as fh:
        fh.seek(off + 5)
        b = fh.read(1)
        fh.seek(off + 5)
        fh.write(bytes([b[0] ^ 0x10]))
    p = cli(["summary", out])
    assert "selftest/values" in _error_line(p) and "checksum" in p.stderr
    with h5py.File(out, "r") as f:
        assert f["exafs/CdS/chi"].fletcher32  # finalised datasets too


def test_reruns_do_not_grow_the_file(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    first = (tmp_path / "r.h5").stat().st_size
    for _ in range(3):
        _ok(cli(["run", job], cwd=tmp_path))
    assert (tmp_path / "r.h5").stat().st_size <= 1.02 * first


def test_versions_recorded_in_root_attrs(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    a = _attrs(tmp_path / "r.h5")
    v = json.loads(a["versions"])
    import larch
    import mpi4py
    import scipy

    assert v["numpy"] == np.__version__ and v["scipy"] == scipy.__version__ and v["h5py"] == h5py.__version__
    assert v["mpi4py"] == mpi4py.__version__ and v["larch"] == larch.__version__ and "feff" in v
    assert a["version_larch"] == larch.__version__


def test_truncated_manifest_is_a_one_line_error(tmp_path, cli):
    job = _job(tmp_path)
    _ok(cli(["run", job], cwd=tmp_path))
    m = tmp_path / "r.h5.journal" / "manifest.json"
    m.write_text(m.read_text()[:20])
    assert "manifest.json" in _error_line(cli(["run", job], cwd=tmp_path))


def test_all_tasks_failed_exits_non_zero(tmp_path, cli):
    job = _job(tmp_path, '[job]\noutput = "r.h5"\n[selftest]\ntasks = 3\nfail = [0, 1, 2]\n')
    p = cli(["run", job], cwd=tmp_path)
    assert p.returncode == 1 and "every task of stage(s) selftest" in p.stderr and "Traceback" not in p.stderr
    job = _job(tmp_path, '[job]\noutput = "s.h5"\n[selftest]\ntasks = 3\nfail = [1]\n', "some.toml")
    _ok(cli(["run", job], cwd=tmp_path))  # some failed: recorded, exit 0


@pytest.mark.parametrize("mpio", ["", "1"], ids=["mpio-dataset-creation", "serial-journal-append"])
def test_disk_full_mid_run_is_one_line_and_resumes_to_the_same_file(tmp_path, mpio):  # mpio "1": XASMPI_NO_MPIO
    """File-size limit (RLIMIT_FSIZE) stands in for a full disk: writes fail with EFBIG.  With
    mpio the dataset creation (preallocated) fails first; with the serial writer, the journal."""
    text = '[job]\noutput = "r.h5"\nseed = 3\n[selftest]\ntasks = 60\nvalues = 2048\n'
    job = _job(tmp_path, text)
    # one process on MPI (XASMPI_MPI=1: a run without mpirun is otherwise serial, without mpio)
    env = dict(os.environ, PYTHONPATH=str(REPO), XASMPI_NO_MPIO="1" if mpio else "0", XASMPI_MPI="1")
    # the limit is set after MPI_Init (Open MPI's shared-memory files must not hit it)
    code = ("from mpi4py import MPI; import resource, signal, sys; "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000)); "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "from xasmpi.cli import main; main(['run', sys.argv[1]])")
    p = subprocess.run([sys.executable, "-c", code, str(job)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    line = _error_line(p)
    assert "r.h5" in line and any(w in line for w in ("File too large", "write failed", "No space"))
    assert ("cannot append to the journal" in line) if mpio == "1" else ("cannot write the results" in line)
    _ok(run_cli(["run", job], cwd=tmp_path))
    ref = tmp_path / "ref"
    ref.mkdir()
    _ok(run_cli(["run", _job(ref, text)], cwd=ref))
    with h5py.File(tmp_path / "r.h5", "r") as a, h5py.File(ref / "r.h5", "r") as b:
        np.testing.assert_array_equal(a["selftest/values"][()], b["selftest/values"][()])
        assert (a["selftest/status"][()] == 1).all()
