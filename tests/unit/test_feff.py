"""FEFF route: structures, feff6l/feff8l runs, Paths equal to larch's own path χ(k)."""
import numpy as np
import pytest

from xasmpi.errors import ConfigError, InputError
from xasmpi.exafs.feff import cluster, crystal, feff_paths, run_feff


def test_crystal_shells_match_readme():
    """Neighbour distances of the ASE builds are the README's crystallographic shells."""
    c = cluster(crystal("CdS-wurtzite"), absorber_index=0, radius=4.2)
    d = np.linalg.norm(c.positions, axis=1)
    s = np.array(c.get_chemical_symbols())
    np.testing.assert_allclose(np.sort(d[s == "S"])[:4], [2.527, 2.527, 2.527, 2.532], atol=2e-3)
    cdcd = np.sort(d[(s == "Cd") & (d > 0)])
    assert cdcd.size == 12 and np.allclose(cdcd, [4.121] * 6 + [4.137] * 6, atol=2e-3)
    o = cluster(crystal("CdO-rocksalt"), absorber_index=0, radius=3.4)
    d, s = np.linalg.norm(o.positions, axis=1), np.array(o.get_chemical_symbols())
    assert np.sum(s == "O") == 6 and np.allclose(d[s == "O"], 2.3475)
    assert np.sum((s == "Cd") & (d > 0)) == 12 and np.allclose(d[(s == "Cd") & (d > 0)], 3.3199, atol=1e-4)
    zb = cluster(crystal("CdS-zincblende"), absorber_index=0, radius=2.6)
    assert len(zb) == 5 and np.allclose(np.linalg.norm(zb.positions[1:], axis=1), 5.818 * np.sqrt(3) / 4)
    with pytest.raises(ConfigError):
        crystal("CdSe")


@pytest.fixture(scope="module")
def cds_run(tmp_path_factory):
    return run_feff(crystal("CdS-wurtzite"), absorber_index=0, radius=6.0,
                    workdir=tmp_path_factory.mktemp("feff6"), rmax_path=4.5)


def _larch_chi(files, k, **pars):
    from larch.xafs import feffpath, path2chi

    total = np.zeros_like(k)
    for f in files:
        fp = feffpath(f, s02=1.0, **pars)
        path2chi(fp, k=k)
        total += fp.chi
    return total


def test_feff6_paths_equal_larch(cds_run):
    """At the shell's N, R, σ²_ref Path.chi is larch's feffpath χ(k) (sum over the shell's files) to 1e-6."""
    ss = [(p.scatterer, round(p.reff, 3)) for p in cds_run.paths if p.nleg == 2]
    assert ("S", 2.527) in ss and ("S", 2.532) in ss
    cds, cdcd = feff_paths(cds_run, [("S", 2.53), ("Cd", 4.13)], sigma2=[0.003, 0.006])
    assert (cds.name, cds.n_ref, cds.source) == ("Cd-S", 4.0, "feff")
    assert cdcd.n_ref == 12.0 and abs(cdcd.r_ref - 4.129) < 1e-3
    for p in (cds, cdcd):
        ref = _larch_chi(p.provenance["files"], p.k, sigma2=p.sigma2_ref)
        # k = 0 excluded: larch extrapolates χ(0) linearly, the Path contract sets it to 0
        assert np.max(np.abs(p.chi(n=p.n_ref) - ref)[1:]) < 1e-6 * np.max(np.abs(ref))
        # off the reference: plane-wave Debye-Waller vs FEFF's complex p, < 1 % (R-factor)
        off = _larch_chi(p.provenance["files"], p.k, sigma2=p.sigma2_ref + 0.003, deltar=0.02)
        mine = p.chi(n=p.n_ref, r=p.r_ref + 0.02, sigma2=p.sigma2_ref + 0.003)
        w = (p.k >= 2) & (p.k <= 16.5)
        assert np.sum((mine - off)[w] ** 2) / np.sum(off[w] ** 2) < 0.01


def test_missing_shell_is_input_error(cds_run):
    with pytest.raises(InputError, match="no single-scattering path to O"):
        feff_paths(cds_run, [("O", 2.35)])


def test_feff8_cdo(tmp_path):
    run = run_feff(crystal("CdO-rocksalt"), absorber_index=0, radius=5.0, workdir=tmp_path,
                   rmax_path=3.5, version=8)
    cdo, cdcd = feff_paths(run, [("O", 2.348), ("Cd", 3.32)], sigma2=0.004)
    assert (cdo.n_ref, cdcd.n_ref) == (6.0, 12.0)
    ref = _larch_chi(cdo.provenance["files"], cdo.k, sigma2=0.004)
    assert np.max(np.abs(cdo.chi(n=6.0) - ref)[1:]) < 1e-6 * np.max(np.abs(ref))


def test_leg_factors_follow_the_shell_legs(tmp_path):
    """Wurtzite triangles: Cd–Cd–S has one Cd–Cd leg (half length moves by ΔR/2, σ² by Δσ²/4)
    and two different Cd–S legs (ΔR, Δσ²/2); Cd–S–S has no Cd–Cd leg (its S–S leg has the
    Cd–Cd length but not its atoms); a single-scattering path follows its shell one for one."""
    from xasmpi.exafs.feff import leg_factors

    run = run_feff(crystal("CdS-wurtzite"), absorber_index=0, radius=6.0, workdir=tmp_path, rmax_path=4.7, nleg=3)
    ss = next(p for p in run.paths if p.nleg == 2 and p.scatterer == "Cd")
    assert leg_factors(ss, pair=("Cd", "Cd"), r=4.13) == (1.0, 1.0)
    tri = [p for p in run.paths if p.nleg == 3]
    ccs = [p for p in tri if sorted(g[0] for g in p.geom) == ["Cd", "Cd", "S"]]
    css = [p for p in tri if sorted(g[0] for g in p.geom) == ["Cd", "S", "S"]]
    assert ccs and css
    for p in ccs:
        assert leg_factors(p, pair=("Cd", "Cd"), r=4.13) == (0.5, 0.25)
        assert leg_factors(p, pair=("S", "Cd"), r=2.53) == (1.0, 0.5)
    for p in css:
        assert leg_factors(p, pair=("Cd", "Cd"), r=4.13) == (0.0, 0.0)
        assert leg_factors(p, pair=("Cd", "S"), r=2.53) == (1.0, 0.5)
