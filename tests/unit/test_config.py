"""Job files: validation, units, overrides, paths; example jobs; job scripts."""
from __future__ import annotations

from pathlib import Path

import pytest

from xasmpi.config import load_job
from xasmpi.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "jobs" / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_example_jobs_are_valid(path):
    job = load_job(path)
    assert job.text.startswith("#")  # commented
    assert Path(job.job.output).is_absolute()


def test_paper_example_mirrors_the_paper():
    job = load_job(REPO / "jobs/examples/paper.toml")
    r = job.reduction
    assert (r.rbkg, r.kmin, r.kmax, r.kweight) == (0.8, 2.0, 16.5, 2)
    assert [p.name for p in job.paths] == ["Cd-O", "Cd-S", "Cd-Cd"]
    assert job.fit.replicates == 10000


def write(tmp_path, text):
    p = tmp_path / "job.toml"
    p.write_text(text)
    return p


def test_units_are_converted_and_relative_paths_resolve(tmp_path):
    p = write(tmp_path, '[job]\noutput = "out/r.h5"\n[xanes]\nradius = "0.45 nm"\nemax = "0.1 keV"\n'
                        'timeout = "2 h"\n[reduction]\nrbkg = "80 pm"\n')
    job = load_job(p)
    assert job.xanes.radius == pytest.approx(4.5)
    assert job.xanes.emax == pytest.approx(100.0)
    assert job.xanes.timeout == pytest.approx(7200.0)
    assert job.reduction.rbkg == pytest.approx(0.8)
    assert job.job.output == str(tmp_path / "out" / "r.h5")


@pytest.mark.parametrize("text, message", [
    ("[fit]\nreplicats = 5\n", "'fit.replicats': unknown key"),
    ("[fit]\nreplicates = 2.5\n", "'fit.replicates': expected an integer"),
    ("[fit.de]\nrecombination = 1.5\n", "'fit.de.recombination': value 1.5 is out of range"),
    ("[reduction]\nkmax = '16.5 eV'\n", "'reduction.kmax': unit 'eV' is not a unit of Å^-1"),
    ("[xanes]\nmode = 'fast'\n", "'xanes.mode': 'fast' is not one of"),
    ("[[paths]]\nname = 'Cd-S'\nreference = 'nope'\nrmin = 1\nrmax = 2\n", "'paths[0].reference'"),
    ("[job]\nstages = ['fitt']\n", "unknown stage 'fitt'"),
    ("[[spectra]]\nname = 'a'\nfile = 'a.xdi'\nreduction = {rbkk = 1}\n", "spectra[0].reduction.rbkk"),
    ("not toml = = 1", "not valid TOML"),
])
def test_bad_job_files_name_file_and_key(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_job(p)
    assert str(p) in str(exc.value) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_overrides_are_validated_and_recorded(tmp_path):
    p = write(tmp_path, "[fit]\nreplicates = 100\n")
    job = load_job(p, ["fit.replicates=200", "fit.de.popsize=20", "fit.mode=noise"])
    assert (job.fit.replicates, job.fit.de.popsize, job.fit.mode) == (200, 20, "noise")
    assert job.overrides == ("fit.replicates=200", "fit.de.popsize=20", "fit.mode=noise")
    with pytest.raises(ConfigError, match="'fit.replicates': expected an integer"):
        load_job(p, ["fit.replicates=lots"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_job(p, ["fit.replicates"])


def test_fingerprint_is_per_stage(tmp_path):
    p = write(tmp_path, "[fit]\nreplicates = 100\n[analysis]\nmass = 5160\n")
    a, b = load_job(p), load_job(p, ["analysis.mass=5000"])
    assert a.fingerprint("fit") == b.fingerprint("fit")
    assert a.fingerprint("analysis") != b.fingerprint("analysis")
    assert a.fingerprint("fit") != load_job(p, ["job.seed=1"]).fingerprint("fit")
    assert a.fingerprint("fit") == load_job(p, ["run.progress_interval=1"]).fingerprint("fit")


def test_jobscripts_follow_scheduler_conventions(cli, tmp_path):
    job = REPO / "jobs/examples/selftest.toml"
    sge = cli(["jobscript", job, "--scheduler", "sge", "--ranks", "8", "--hours", "2.5",
               "--mem-per-rank", "3"], check=True).stdout
    for line in ("#$ -pe smp 8", "#$ -l h_rt=2:30:00", "#$ -l h_vmem=3G", "#$ -cwd", "#$ -j y",
                 "module load openmpi", "mpirun -np $NSLOTS xasmpi run"):
        assert line in sge
    slurm = cli(["jobscript", job, "--scheduler", "slurm", "--ranks", "64", "--hours", "1"], check=True).stdout
    for line in ("#SBATCH --ntasks=64", "#SBATCH --time=1:00:00", "#SBATCH --mem-per-cpu=2048M", "srun xasmpi run"):
        assert line in slurm
    assert "-pe parallel 96" in cli(["jobscript", job, "--scheduler", "sge", "--ranks", "96"], check=True).stdout
    bad = cli(["jobscript", tmp_path / "missing.toml", "--scheduler", "sge", "--ranks", "2"])
    assert bad.returncode == 2 and "job file not found" in bad.stderr


def test_doctor_reports_each_component(cli):
    p = cli(["doctor", "--no-smoke"])
    out = p.stdout
    for what in ("MPI", "parallel HDF5", "FDMNES", "FEFF", "libraries"):
        assert what in out
    assert "Open MPI" in out and "MPI yes" in out
    assert p.returncode == 0
    bad = cli(["doctor", "--fdmnes", "/nonexistent/fdmnes"])
    assert "/nonexistent/fdmnes" in bad.stdout and bad.returncode == 0  # FDMNES optional without a job
    bad = cli(["doctor", REPO / "jobs/examples/xanes.toml", "--fdmnes", "/nonexistent/fdmnes"])
    assert bad.returncode == 1 and "[FAIL] FDMNES" in bad.stdout and "xanes stage needs it" in bad.stdout
