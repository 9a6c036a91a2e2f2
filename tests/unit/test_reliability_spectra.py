"""Issue 13, spectra: malformed or physically empty spectra are refused with one line naming
the file and the line (real CdS K-edge scan, damaged copies written to tmp_path)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xasmpi.config import load_job
from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.io import read_spectrum
from xasmpi.exafs.reduce import ReductionSettings, reduce_spectrum
from xasmpi.testing import xaslib_dir

CDS = xaslib_dir() / "CdS_10K_01.xdi"


def _lines() -> list[str]:
    return CDS.read_text().splitlines(keepends=True)


def _data_start(lines: list[str]) -> int:
    return next(i for i, s in enumerate(lines) if s.strip() and not s.lstrip().startswith("#"))


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    f = tmp_path / name
    f.write_text("".join(lines))
    return f


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("row", [11, 101])
def test_non_numeric_cell_is_refused_naming_its_line(tmp_path, row):
    """larch takes every line before a bad cell as header (357 of 368 rows were fitted)."""
    lines = _lines()
    i = _data_start(lines) + row - 1
    v = lines[i].split()
    lines[i] = " ".join([v[0], "4827O.0", *v[2:]]) + "\n"  # letter O for a zero
    f = _write(tmp_path, "badcell.xdi", lines)
    with pytest.raises(InputError) as err:
        read_spectrum(f)
    msg = _one_line(err)
    assert str(f) in msg and f"line {i + 1}:" in msg and "'4827O.0'" in msg and "column 2" in msg


def test_extra_value_names_the_right_line(tmp_path):
    lines = _lines()
    i = 326  # line 327
    lines[i] = lines[i].rstrip("\n") + "  1.0\n"
    f = _write(tmp_path, "extra.xdi", lines)
    with pytest.raises(InputError) as err:
        read_spectrum(f)
    msg = _one_line(err)
    assert "line 327 has 5 values" in msg and "truncated" not in msg


def test_nan_in_an_unused_column_is_reported_as_nan_at_its_line(tmp_path):
    lines = _lines()
    i = _data_start(lines) + 40
    v = lines[i].split()
    lines[i] = " ".join([*v[:3], "nan"]) + "\n"  # irefer: not used for the absorbance
    f = _write(tmp_path, "nanref.xdi", lines)
    with pytest.raises(InputError) as err:
        read_spectrum(f)
    msg = _one_line(err)
    assert f"column 4 at line {i + 1}" in msg and "NaN" in msg and "truncated" not in msg


def test_xdi_without_space_after_hash_keeps_element_and_edge(tmp_path):
    lines = _lines()
    assert lines[0].startswith("# XDI/1.0")
    lines[0] = "#XDI/1.1\n"
    f = _write(tmp_path, "nospace.dat", lines)  # no .xdi suffix: recognised by its header
    s = read_spectrum(f)
    ref = read_spectrum(CDS)
    assert (s.element, s.edge) == ("Cd", "K")
    assert s.energy.size == 368
    np.testing.assert_array_equal(s.mu, ref.mu)


def _columns_file(tmp_path: Path, name: str, energy, i0, it) -> Path:
    f = tmp_path / name
    np.savetxt(f, np.column_stack([energy, i0, it]), header="energy i0 itrans")
    return f


def test_flat_spectrum_without_edge_is_refused(tmp_path):
    """itrans = 0.5 i0 gave an edge step of 1e-12 and a 'fit' with R-factor 0.94, exit 0."""
    c = read_spectrum(CDS).columns
    f = _columns_file(tmp_path, "flat.dat", c["energy"], c["i0"], 0.5 * c["i0"])
    s = read_spectrum(f, element="Cd", edge="K")
    with pytest.raises(InputError) as err:
        reduce_spectrum(s, ReductionSettings())
    msg = _one_line(err)
    assert str(f) in msg and "no clear absorption edge" in msg


def test_flat_noisy_spectrum_without_edge_is_refused(tmp_path):
    c = read_spectrum(CDS).columns
    rng = np.random.default_rng(1)
    it = 0.5 * c["i0"] * (1 + 1e-3 * rng.standard_normal(c["i0"].size))
    f = _columns_file(tmp_path, "flatnoise.dat", c["energy"], c["i0"], it)
    with pytest.raises(InputError, match="no clear absorption edge"):
        reduce_spectrum(read_spectrum(f), ReductionSettings())


def test_e0_far_from_the_tabulated_edge_is_refused(tmp_path):
    c = read_spectrum(CDS).columns
    f = _columns_file(tmp_path, "shifted.dat", c["energy"] + 178.0, c["i0"], c["itrans"])
    with pytest.raises(InputError) as err:
        reduce_spectrum(read_spectrum(f, element="Cd", edge="K"), ReductionSettings())
    msg = _one_line(err)
    assert "eV from the tabulated Cd K edge (26711 eV" in msg and str(f) in msg
    shift = float(msg.split(" eV is ")[1].split()[0])
    assert 170 < shift < 190  # 178 eV plus larch's E0 on the real scan (~1.7 eV above the table)
    # the real scan passes both checks
    r = reduce_spectrum(read_spectrum(CDS), ReductionSettings())
    assert abs(r.e0 - 26711) < 10 and r.edge_step > 0.3


@pytest.mark.parametrize("n", [12, 40])
def test_too_few_points_one_line_error_naming_the_file(tmp_path, n):
    """12 points gave 'ValueError: zero-size array' without the file; 40 points were fitted."""
    c = read_spectrum(CDS).columns
    idx = np.unique(np.linspace(0, c["energy"].size - 1, n).round().astype(int))
    f = _columns_file(tmp_path, f"few{n}.dat", c["energy"][idx], c["i0"][idx], c["itrans"][idx])
    with pytest.raises(InputError) as err:
        reduce_spectrum(read_spectrum(f, element="Cd", edge="K"), ReductionSettings())
    msg = _one_line(err)
    assert str(f) in msg and ("only 12 data rows" in msg if n == 12 else "too few points" in msg)


def test_fit_kmax_beyond_the_grid_names_the_key(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'[job]\noutput = "r.h5"\n[[spectra]]\nname = "s"\nfile = "{CDS}"\n'
                   '[fit]\nkmax = 25\nreplicates = 0\n')
    with pytest.raises(ConfigError, match=r"key 'fit\.kmax'.*beyond"):
        load_job(job)
