"""FDMNES: finder, input writer, runner (fake fdmnes scripts for failures), real smoke runs."""
from __future__ import annotations

import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from xasmpi.errors import ConfigError, ExternalProgramError, InputError
from xasmpi.xanes.clusters import build_cluster, bulk_crystal
from xasmpi.xanes.fdmnes import (FdmnesSettings, find_fdmnes, run_fdmnes, smoke_test,
                                 write_input)

HEADER = (" 26711.000   48  1  1  6.38E-03 -2.07E+00 -2.0E+00  1  1  2.6469334E+04  1.97E+02"
          "  0.0E+00  6.70E-01  4.0E+00  0.0E+00  = E_edge, Z, n_edge, j_edge, Abs_before_edge,"
          " VO_interstitial, E_cut, ninit, ninit1, Epsii, UnitCell_Volume, Surface_ref,"
          " f0_forward, natomsym_f, abs_u_iso")
SMALL = FdmnesSettings(radius=3.0, e_min=-10.0, e_max=20.0, e_step=5.0)


def _fake(tmp_path: Path, body: str, name: str = "fake_fdmnes") -> Path:
    """A shell script standing in for FDMNES (runs in the task's working directory)."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _table(energies, values, header_lines):
    rows = "\n".join(f"  {e:.4f}  {v:.7E}" for e, v in zip(energies, values))
    return "\n".join(header_lines) + "\n" + rows + "\n"


GOOD_E = np.arange(-10.0, 20.1, 5.0)
GOOD_RAW = _table(GOOD_E, 1e-5 * (1 + np.arange(7)), [HEADER, "    Energy    <xanes>"])
GOOD_CONV = _table(GOOD_E, 1e-3 * (1 + np.arange(7)) ** 2, ["    Energy    <xanes>"])


def _good_script(tmp_path):
    (tmp_path / "raw.txt").write_text(GOOD_RAW)
    (tmp_path / "conv.txt").write_text(GOOD_CONV)
    return _fake(tmp_path, f"""\
        test -f fdmfile.txt || exit 3
        cp {tmp_path}/raw.txt xanes.txt
        cp {tmp_path}/conv.txt xanes_conv.txt
        echo "FDMNES fake done"
        """)


def _input():
    return write_input(Atoms("CdS", positions=[(0, 0, 0), (2.52, 0, 0)]), 0, SMALL)


# --- input writer ----------------------------------------------------------------------------

def test_crystal_input_block():
    text = write_input(bulk_crystal("zincblende"), 0, FdmnesSettings())
    lines = text.splitlines()
    i = lines.index("Crystal")
    assert lines[i + 1] == "5.818 5.818 5.818 90 90 90"
    atoms = [ln.split() for ln in lines[i + 2:i + 10]]
    assert [a[0] for a in atoms] == ["48", "16"] * 4
    assert [float(v) for v in atoms[1][1:]] == [0.25, 0.25, 0.25]
    assert lines[i + 10] == ""
    for key, value in (("Absorber", "1"), ("Range", "-20 1 100"), ("Radius", "4.5"),
                       ("Edge", "K"), ("Filout", "xanes")):
        assert lines[lines.index(key) + 1] == value
    assert "Green" in lines and "SCF" not in lines and "Convolution" in lines
    assert lines[-1] == "End"


def test_molecule_input_fdm_scf_convolution_parameters():
    atoms, _ = build_cluster("zincblende", n_atoms=17)
    s = FdmnesSettings(edge="L3", mode="fdm", scf=True, gamma_hole=2.5, gaussian=1.2, radius=6)
    lines = write_input(atoms, 3, s).splitlines()
    i = lines.index("Molecule")
    assert lines[i + 1] == "1 1 1 90 90 90"
    xyz = np.array([[float(v) for v in ln.split()[1:]] for ln in lines[i + 2:i + 2 + len(atoms)]])
    assert np.allclose(xyz, atoms.positions, atol=1e-6)
    assert "Green" not in lines and "SCF" in lines
    assert lines[lines.index("Absorber") + 1] == "4"  # 1-based
    assert lines[lines.index("Edge") + 1] == "L3"
    assert lines[lines.index("Gamma_hole") + 1] == "2.5"
    assert lines[lines.index("Gaussian") + 1] == "1.2"
    assert "Gamma_max" not in lines  # FDMNES default kept


def test_input_errors():
    with pytest.raises(InputError, match="absorber index 5"):
        write_input(Atoms("CdS", positions=[(0, 0, 0), (2.5, 0, 0)]), 5, SMALL)
    slab = bulk_crystal("zincblende")
    slab.pbc = (True, True, False)
    with pytest.raises(InputError, match="periodic along some axes"):
        write_input(slab, 0, SMALL)


@pytest.mark.parametrize("kwargs", [dict(edge="M1"), dict(mode="lapw"), dict(radius=0.5),
                                    dict(e_min=10, e_max=5), dict(gamma_hole=-1), dict(timeout=0)])
def test_bad_settings(kwargs):
    with pytest.raises(ConfigError):
        FdmnesSettings(**kwargs)


def test_energy_grid():
    grid = FdmnesSettings().energy_grid()
    assert grid.size == 121 and grid[0] == -20.0 and grid[-1] == 100.0
    assert np.allclose(SMALL.energy_grid(), GOOD_E)


# --- finder ----------------------------------------------------------------------------------

def test_find_order(tmp_path, monkeypatch):
    job = _fake(tmp_path, "exit 0\n", "from_job")
    env = _fake(tmp_path, "exit 0\n", "from_env")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    on_path = _fake(bindir, "exit 0\n", "fdmnes")
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("XASMPI_FDMNES", str(env))
    assert find_fdmnes(str(job)) == (job.resolve(), "job file")
    assert find_fdmnes() == (env.resolve(), "XASMPI_FDMNES")
    monkeypatch.delenv("XASMPI_FDMNES")
    assert find_fdmnes() == (on_path.resolve(), "PATH")
    on_path.unlink()
    prefix = tmp_path / "venv"
    (prefix / "opt" / "fdmnes").mkdir(parents=True)
    bundled = _fake(prefix / "opt" / "fdmnes", "exit 0\n", "fdmnes_linux64")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    assert find_fdmnes() == (bundled, "installer")
    bundled.unlink()
    with pytest.raises(ExternalProgramError, match="FDMNES not found"):
        find_fdmnes()
    with pytest.raises(ExternalProgramError, match="job file: .*nope"):
        find_fdmnes(str(tmp_path / "nope"))


# --- runner with fake binaries ---------------------------------------------------------------

def test_run_parses_outputs(tmp_path):
    res = run_fdmnes(_input(), tmp_path / "task", binary=_good_script(tmp_path), timeout=30)
    assert res.convolved and np.allclose(res.energy, GOOD_E)
    assert np.allclose(res.mu, 1e-3 * (1 + np.arange(7)) ** 2)
    assert np.allclose(res.raw_mu, 1e-5 * (1 + np.arange(7)))
    assert res.e_edge == 26711.0 and res.epsii == pytest.approx(26469.334)
    assert "fake done" in res.stdout_tail
    # linear interpolation on a finer grid: known values between the points
    assert res.on_grid(np.array([-7.5, 0.0])) == pytest.approx([2.5e-3, 9e-3])
    with pytest.raises(ExternalProgramError, match="not the requested grid"):
        res.on_grid(np.array([-20.0, 0.0]))
    assert (tmp_path / "task" / "fdmfile.txt").read_text() == "1\nfdmnes_in.txt\n"


def test_nonzero_exit(tmp_path):
    fake = _fake(tmp_path, "echo 'Segmentation fault in mat_solve' >&2\nexit 139\n")
    with pytest.raises(ExternalProgramError, match="exit status 139.*Segmentation fault"):
        run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=30)


def test_timeout_kills_process_group(tmp_path):
    fake = _fake(tmp_path, "echo started\nsleep 60 &\necho $! > child.pid\nwait\n")
    with pytest.raises(ExternalProgramError, match="timed out after 1 s"):
        run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=1)
    child = int((tmp_path / "task" / "child.pid").read_text())
    for _ in range(50):  # the background child of the script was killed with the group
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"child process {child} survived the timeout")


def test_empty_output(tmp_path):
    fake = _fake(tmp_path, "touch xanes.txt\n")
    with pytest.raises(ExternalProgramError, match="no output xanes.txt"):
        run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=30)
    fake = _fake(tmp_path, "exit 0\n", "writes_nothing")
    with pytest.raises(ExternalProgramError, match="no output"):
        run_fdmnes(_input(), tmp_path / "task2", binary=fake, timeout=30)


def test_truncated_output(tmp_path):
    (tmp_path / "raw.txt").write_text("\n".join(GOOD_RAW.splitlines()[:5]) + "\n")  # to 0 eV
    fake = _fake(tmp_path, f"cp {tmp_path}/raw.txt xanes.txt\n")
    with pytest.raises(ExternalProgramError, match="truncated output xanes.txt: -10..0 eV"):
        run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=30)
    # cut in the middle of the last line, after its energy
    (tmp_path / "raw2.txt").write_text(GOOD_RAW[: GOOD_RAW.rindex("20.0000") + 8])
    fake = _fake(tmp_path, f"cp {tmp_path}/raw2.txt xanes.txt\n", "cut")
    with pytest.raises(ExternalProgramError, match="truncated FDMNES output \\(line 9 incomplete"):
        run_fdmnes(_input(), tmp_path / "task2", binary=fake, timeout=30)


def test_garbage_output(tmp_path):
    (tmp_path / "raw.txt").write_text(HEADER + "\n Energy <xanes>\n -10.0 NaNonsense\n 0 1\n")
    fake = _fake(tmp_path, f"cp {tmp_path}/raw.txt xanes.txt\n")
    with pytest.raises(ExternalProgramError, match="garbage"):
        run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=30)


def test_fdmnes_error_file(tmp_path):
    fake = _fake(tmp_path, "echo ' The following line is not understood : Bogus' > fdmnes_error.txt\n")
    with pytest.raises(ExternalProgramError, match="input error.*Bogus"):
        run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=30)


def test_smoke_test_names_binary(tmp_path):
    fake = _fake(tmp_path, "exit 1\n", "broken_fdmnes")
    with pytest.raises(ExternalProgramError, match="smoke test failed for .*broken_fdmnes"):
        smoke_test(fake, timeout=10)


# --- the real binary -------------------------------------------------------------------------

def _real_binary():
    try:
        return find_fdmnes()[0]
    except ExternalProgramError as exc:
        pytest.skip(str(exc))


@pytest.mark.fdmnes
def test_real_smoke_test():
    assert smoke_test(_real_binary(), timeout=60) > 0


@pytest.mark.fdmnes
def test_real_bulk_cds_matches_measured_cds_and_cdo(tmp_path):
    """Green mode, radius 3 Å (first shell), no SCF, 2 eV grid: ~2 s per run.

    Each measured reference is matched best by its own structure after shift + broadening.
    """
    from larch.io import read_xdi

    from xasmpi.testing import xaslib_dir
    from xasmpi.xanes.compare import normalize, rank_candidates

    binary = _real_binary()
    s = FdmnesSettings(radius=3.0, e_min=-20.0, e_max=100.0, e_step=2.0, timeout=120)
    sims = {}
    for name, crystal in (("CdS_zb", bulk_crystal("zincblende")),
                          ("CdO_rs", bulk_crystal("rocksalt", a=4.695, anion="O"))):
        res = run_fdmnes(write_input(crystal, 0, s), tmp_path / name, binary=binary, timeout=120)
        assert res.energy.size == s.energy_grid().size
        sims[name] = normalize(s.energy_grid(), res.on_grid(s.energy_grid()), name=name)
    best = {}
    for ref in ("CdS_10K_01", "CdO_10K_01"):
        d = read_xdi(str(xaslib_dir() / f"{ref}.xdi"))
        rows = rank_candidates(normalize(d.energy, np.log(d.i0 / d.itrans), name=ref), sims)
        best[ref] = rows[0]
        assert rows[0].alignment.r_factor < 0.5 * rows[1].alignment.r_factor
    assert best["CdS_10K_01"].name == "CdS_zb" and best["CdO_10K_01"].name == "CdO_rs"
    cds = best["CdS_10K_01"].alignment
    # relative FDMNES energies + shift = measured; the tabulated Cd K edge is 26711 eV
    assert 26700 < cds.shift < 26720 and cds.r_factor < 0.002


@pytest.mark.fdmnes
def test_epsii_alignment_shifts_o_bonded_against_s_bonded_cd_by_fdmnes_epsii(tmp_path):
    """Two Cd in one model, one in a CdS4 and one in a CdO4 tetrahedron 12 Å apart: FDMNES reports
    a different Epsii for each; on the photon-energy scale (E - E_F + Epsii) of the stage's average
    the O-bonded absorber moves against the S-bonded one by exactly that Epsii difference."""
    from xasmpi.stages.xanes import epsii_average
    from xasmpi.xanes.compare import edge_energy

    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    far = np.array([12.0, 0, 0])
    model = Atoms("CdS4CdO4", positions=[(0, 0, 0), *(2.52 * v), far, *(far + 2.30 * v)])
    s = FdmnesSettings(radius=3.0, e_min=-10.0, e_max=30.0, e_step=0.5, timeout=120)
    grid = s.energy_grid()
    runs = [run_fdmnes(write_input(model, k, s), tmp_path / f"abs{k}", binary=_real_binary(), timeout=120)
            for k in (0, 5)]  # S-bonded Cd, O-bonded Cd
    eps = np.array([r.epsii for r in runs])
    mu = np.array([r.on_grid(grid) for r in runs])
    assert abs(eps[1] - eps[0]) > 1.0  # a chemical shift of more than 1 eV (non-SCF: ~3 eV)
    edges = []
    for row in (0, 1):
        w = np.array([1.0, 0.0]) if row == 0 else np.array([0.0, 1.0])
        energy, avg = epsii_average(grid, mu, w, eps)
        edges.append(edge_energy(energy, avg)[0])
        assert energy[0] == pytest.approx(grid[0] + eps[row])  # one absorber: its own photon scale
    rel = [edge_energy(grid, m)[0] for m in mu]  # edges on each run's own E - E_F scale
    assert edges[1] - edges[0] == pytest.approx((rel[1] - rel[0]) + (eps[1] - eps[0]), abs=0.05)
    # averaging both: each spectrum is shifted by its Epsii minus the weighted mean Epsii
    energy, avg = epsii_average(grid, mu, np.array([0.5, 0.5]), eps)
    ref = eps.mean()
    expect = 0.5 * (np.interp(energy - eps[0], grid, mu[0]) + np.interp(energy - eps[1], grid, mu[1]))
    assert energy == pytest.approx(grid + ref) and np.allclose(avg, expect)


@pytest.mark.fdmnes
@pytest.mark.slow
def test_l3_edge_end_to_end_campaign(tmp_path):
    """A serial xanes campaign at the Cd L3 edge (Green, 3 Å crystals, ~15 s): FDMNES is asked for
    L3 with the tabulated 2.62 eV core hole, both spectra normalise with the common ranges, the
    O-bonded Cd sits below the S-bonded one on the Epsii scale, and CdO has the stronger post-edge
    peak, lower above its edge than CdS's (the paper, Fig. 3b: CdO makes the MSCs' sharp L3 line)."""
    import h5py

    from tests.conftest import run_cli
    from xasmpi.xanes.compare import normalize

    (tmp_path / "l3.toml").write_text(textwrap.dedent("""
        [job]
        name = "l3"
        output = "l3.h5"
        [xanes]
        edge = "L3"
        radius = 3.0
        estep = 1.0
        [[xanes.candidates]]
        name = "CdS-zb"
        crystal = true
        build = {lattice = "zincblende"}
        [[xanes.candidates]]
        name = "CdO-rs"
        crystal = true
        build = {lattice = "rocksalt", a = 4.695, anion = "O"}
        """))
    run_cli(["run", tmp_path / "l3.toml"], cwd=tmp_path, check=True, timeout=600)
    out = {}
    with h5py.File(tmp_path / "l3.h5", "r") as f:
        for c in ("CdS-zb", "CdO-rs"):
            g = f[f"xanes/{c}"]
            text = g["absorbers/input_text"].asstr()[0]
            assert "\nEdge\nL3\n" in text and "\nGamma_hole\n2.62\n" in text
            n = normalize(g["energy"][:], g["mu"][:], name=c)
            k = int(np.argmax(n.norm))
            out[c] = (float(g["absorbers/epsii"][0]), n.norm[k], n.energy[k] - n.e0)
    print("L3 (Epsii eV, strongest peak, its position above e0 eV):", out)
    assert 3400 < out["CdS-zb"][0] < 3540  # Epsii of the Cd 2p3/2 level (tabulated edge 3537.5 eV)
    assert out["CdO-rs"][0] < out["CdS-zb"][0]
    assert out["CdO-rs"][1] > out["CdS-zb"][1] and out["CdO-rs"][2] < out["CdS-zb"][2]


def test_point_group_not_found_reruns_without_symmetry(tmp_path):
    """FDMNES stops with "Point group not found" on a nearly symmetric relaxed cluster (seen on
    the InP-like model): the runner reruns once with Point_group 1 and returns that spectrum."""
    (tmp_path / "raw.txt").write_text(GOOD_RAW)
    (tmp_path / "conv.txt").write_text(GOOD_CONV)
    fake = _fake(tmp_path, f"""\
        if grep -q '^Point_group' fdmnes_in.txt; then
          cp {tmp_path}/raw.txt xanes.txt; cp {tmp_path}/conv.txt xanes_conv.txt
        else
          echo ' Point group not found !' > fdmnes_error.txt
        fi
        """)
    res = run_fdmnes(_input(), tmp_path / "task", binary=fake, timeout=30)
    assert np.allclose(res.energy, GOOD_E)
    assert "Point_group\n 1" in (tmp_path / "task" / "fdmnes_in.txt").read_text()
    # an input that already sets the point group is not rerun: the error stands
    with pytest.raises(ExternalProgramError, match="Point group not found"):
        run_fdmnes("Point_group\n 2\n\n" + _input(), tmp_path / "task2", binary=_fake(
            tmp_path, "echo ' Point group not found !' > fdmnes_error.txt\n", "always_fails"), timeout=30)
