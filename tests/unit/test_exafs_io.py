"""read_spectrum on the real Cd K-edge files and on malformed copies written to tmp_path."""
from pathlib import Path

import numpy as np
import pytest

from xasmpi.errors import InputError
from xasmpi.exafs.io import read_spectrum
from xasmpi.testing import xaslib_dir

CDS = xaslib_dir() / "CdS_10K_01.xdi"


def _lines():
    return CDS.read_text().splitlines(keepends=True)


def _first_data_line(lines):
    return next(i for i, s in enumerate(lines) if s.strip() and not s.lstrip().startswith("#"))


def test_xdi_transmission_matches_columns():
    s = read_spectrum(CDS)
    i0, it = s.columns["i0"], s.columns["itrans"]
    assert s.kind == "mu" and s.name == "CdS_10K_01"
    assert (s.element, s.edge) == ("Cd", "K")
    assert s.energy.size == 368 and np.all(np.diff(s.energy) > 0)
    np.testing.assert_allclose(s.mu, np.log(i0 / it))


def test_plain_columns_found_by_name_not_position(tmp_path):
    """Reordered, renamed (aliases, other case) columns in a plain file give the same μ."""
    ref = read_spectrum(CDS)
    c = ref.columns
    data = np.column_stack([c["itrans"], c["energy"], c["i0"]])
    f = tmp_path / "reordered.dat"
    np.savetxt(f, data, header="IT  Energy  I0")
    s = read_spectrum(f, element="Cd", edge="K")
    np.testing.assert_allclose(s.energy, ref.energy)
    np.testing.assert_allclose(s.mu, ref.mu, rtol=1e-12)
    assert s.element == "Cd"


def test_expression_and_user_column_names(tmp_path):
    ref = read_spectrum(CDS)
    s = read_spectrum(CDS, absorbance="-log(itrans / I0)")
    np.testing.assert_allclose(s.mu, ref.mu, rtol=1e-12)
    f = tmp_path / "odd.dat"
    c = ref.columns
    np.savetxt(f, np.column_stack([c["energy"], c["i0"], c["itrans"]]), header="mono_e mon1 det_t")
    s = read_spectrum(f, columns={"energy": "mono_e", "i0": "MON1", "itrans": "det_t"})
    np.testing.assert_allclose(s.mu, ref.mu, rtol=1e-12)


@pytest.mark.parametrize("expr", ['__import__("os").getcwd()', "i0.real", "open(i0)", "i0[0]"])
def test_expression_rejects_code(expr):
    with pytest.raises(InputError, match="CdS_10K_01"):
        read_spectrum(CDS, absorbance=expr)


def test_fluorescence_and_mu_columns(tmp_path):
    ref = read_spectrum(CDS)
    c = ref.columns
    f = tmp_path / "fl.dat"
    np.savetxt(f, np.column_stack([c["energy"], c["i0"], c["itrans"], ref.mu]), header="energy i0 ifluor xmu")
    np.testing.assert_allclose(read_spectrum(f, absorbance="fluorescence").mu, c["itrans"] / c["i0"])
    np.testing.assert_allclose(read_spectrum(f, absorbance="mu").mu, ref.mu)


def test_chi_file(tmp_path):
    k = np.arange(0, 15, 0.05)
    f = tmp_path / "x.chi"
    np.savetxt(f, np.column_stack([k, np.sin(5 * k)]), header="k chi")
    s = read_spectrum(f)
    assert s.kind == "chi" and s.energy is None
    np.testing.assert_allclose(s.chi, np.sin(5 * k))


def test_athena_project(tmp_path):
    from larch.io import AthenaProject, read_xdi

    prj = AthenaProject(str(tmp_path / "two.prj"))
    for name in ("CdS_10K_01", "CdO_10K_01"):
        g = read_xdi(str(xaslib_dir() / f"{name}.xdi"))
        g.mu, g.filename = np.log(g.i0 / g.itrans), name
        prj.add_group(g)
    prj.save()
    s = read_spectrum(tmp_path / "two.prj", athena_group="CdS_10K_01")
    np.testing.assert_allclose(s.mu, read_spectrum(CDS).mu, rtol=1e-6)
    assert s.source.endswith("two.prj:CdS_10K_01") and s.element == "Cd"
    with pytest.raises(InputError, match="two.prj.*athena_group"):
        read_spectrum(tmp_path / "two.prj")
    with pytest.raises(InputError, match="no group 'nope'"):
        read_spectrum(tmp_path / "two.prj", athena_group="nope")


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    lines = _lines()
    i = _first_data_line(lines)
    out = {}

    def write(name, text):
        f = tmp_path / name
        f.write_text("".join(text))
        return f

    out["empty"] = (write("empty.xdi", ""), "empty")
    trunc = lines.copy()
    trunc[i + 50] = " ".join(trunc[i + 50].split()[:2]) + "\n"
    out["truncated"] = (write("trunc.xdi", trunc), "truncated line")
    nan = lines.copy()
    v = nan[i + 60].split()
    nan[i + 60] = " ".join([v[0], "nan", *v[2:]]) + "\n"
    out["nan"] = (write("nan.xdi", nan), "NaN")
    dup = lines.copy()
    dup.insert(i + 70, dup[i + 70])
    out["duplicate"] = (write("dup.xdi", dup), "duplicate energy")
    swap = lines.copy()
    swap[i + 80], swap[i + 81] = swap[i + 81], swap[i + 80]
    out["nonmonotonic"] = (write("swap.xdi", swap), "not increasing")
    out["missing"] = (write("noit.xdi", [s.replace("itrans", "ifoo") for s in lines]), "missing itrans column")
    return out


@pytest.mark.parametrize("case", ["empty", "truncated", "nan", "duplicate", "nonmonotonic", "missing"])
def test_bad_input_one_line_error_naming_file(tmp_path, case):
    path, problem = _bad_files(tmp_path)[case]
    with pytest.raises(InputError) as err:
        read_spectrum(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and problem in msg


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_spectrum(tmp_path / "nothere.xdi")
