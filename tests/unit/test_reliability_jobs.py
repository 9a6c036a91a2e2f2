"""Issue 13, job files: bad values are one-line ConfigErrors naming the key (exit 2, no
traceback); ``--set`` array forms; analysis keys derived from and checked against the paths."""
from __future__ import annotations

import pytest

from tests.conftest import run_cli
from xasmpi.config import load_job
from xasmpi.errors import ConfigError
from xasmpi.testing import xaslib_dir

LIB = xaslib_dir()

BASE = f"""
[job]
output = "r.h5"
[[spectra]]
name = "CdS_ref"
file = "{LIB}/CdS_10K_01.xdi"
role = "reference"
[[spectra]]
name = "CdO_ref"
file = "{LIB}/CdO_10K_01.xdi"
role = "reference"
[[spectra]]
name = "mix"
file = "{LIB}/CdS_10K_02.xdi"
[[paths]]
name = "Cd-S"
reference = "CdS_ref"
rmin = 1.3
rmax = 2.9
[[paths]]
name = "Cd-Cd"
reference = "CdS_ref"
rmin = 2.9
rmax = 4.4
"""


def _job(tmp_path, extra: str = "", base: str = BASE):
    p = tmp_path / "job.toml"
    p.write_text(base + extra)
    return p


@pytest.mark.parametrize("text, key", [
    ("[job]\nseed = -1\n", "job.seed"),
    ('[job]\noutput = ""\n', "job.output"),
    ('[job]\noutput = "."\n', "job.output"),
])
def test_bad_job_values_name_the_key_exit_2(tmp_path, text, key):
    p = tmp_path / "bad.toml"
    p.write_text(text + "[selftest]\ntasks = 2\n")
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_job(p)
    r = run_cli(["run", p], cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and f"key '{key}'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_output_that_is_an_existing_directory_is_refused_before_running(tmp_path):
    (tmp_path / "results.h5").mkdir()
    p = tmp_path / "dir.toml"
    p.write_text('[job]\noutput = "results.h5"\n[selftest]\ntasks = 2\n')
    r = run_cli(["run", p], cwd=tmp_path)
    assert r.returncode == 2 and "is a directory" in r.stderr and "stage selftest" not in r.stderr


@pytest.mark.parametrize("form", ["spectra[2].file", "spectra.2.file"])
def test_set_array_element_both_forms(tmp_path, form):
    other = LIB / "CdO_10K_02.xdi"
    job = load_job(_job(tmp_path), [f'{form}="{other}"'])
    assert job.spectra[2].file == str(other)


def test_set_bad_key_names_the_valid_form(tmp_path):
    with pytest.raises(ConfigError, match=r"spectra\.2\.file=.*spectra\[2\]\.file="):
        load_job(_job(tmp_path), ['spectra{2}.file="x"'])


def test_analysis_defaults_derived_from_the_paths(tmp_path):
    from xasmpi.stages.analysis import choices

    job = load_job(_job(tmp_path, "[analysis]\nmass = 5160\n"))
    assert choices(job, "Cd") == (("Cd", "S"), "Cd-S", ("Cd-S", "Cd-Cd"))
    zn = BASE.replace('"Cd-S"', '"Zn-S"').replace('"Cd-Cd"', '"Zn-Zn"')
    job = load_job(_job(tmp_path, "[analysis]\nmass = 2500\n", base=zn))
    assert choices(job, "Zn") == (("Zn", "S"), "Zn-S", ("Zn-S", "Zn-Zn"))
    assert choices(job, None) == (("Zn", "S"), "Zn-S", ("Zn-S", "Zn-Zn"))  # absorber from the names


def test_analysis_cn_path_ambiguous_is_refused(tmp_path):
    from xasmpi.stages.analysis import choices

    extra = '[[paths]]\nname = "Cd-O"\nreference = "CdO_ref"\nrmin = 1.2\nrmax = 2.4\n[analysis]\nmass = 5160\n'
    job = load_job(_job(tmp_path, extra))
    with pytest.raises(ConfigError, match=r"analysis\.cn_path.*Cd-S, Cd-O"):
        choices(job, "Cd")
    job = load_job(_job(tmp_path, extra + 'cn_path = "Cd-S"\n'))
    assert choices(job, "Cd")[:2] == (("Cd", "S"), "Cd-S")


@pytest.mark.parametrize("extra, key", [
    ('[analysis]\nmass = 5160\ncn_path = "Cd-X"\n', "analysis.cn_path"),
    ('[analysis]\nangle_paths = ["Cd-S", "Cd-Se"]\n', "analysis.angle_paths"),
    ('[analysis]\nelements = ["Cd", "Xx"]\n', "analysis.elements"),
])
def test_analysis_names_not_of_the_job_are_refused(tmp_path, extra, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_job(_job(tmp_path, extra))
