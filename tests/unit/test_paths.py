"""Empirical paths: round trip on a synthetic shell, self-consistency on the real references."""
import numpy as np
import pytest

from xasmpi.exafs.io import read_spectrum
from xasmpi.exafs.paths import Path, extract_path, kgrid
from xasmpi.exafs.reduce import FourierFilter, reduce_spectrum
from xasmpi.testing import xaslib_dir

#: shells (README crystallography) and σ² at 10 K: the σ² only set the zero of each
#: empirical path's σ² scale, they cancel in the self-consistency test.  R windows
#: (uncorrected |χ(R)|) are adjacent, so they add up to the window of the whole sample.
SHELLS = {
    "CdS": [("Cd-S", 4, 2.53, 0.003, 1.3, 2.9), ("Cd-Cd", 12, 4.13, 0.006, 2.9, 4.4)],
    "CdO": [("Cd-O", 6, 2.348, 0.004, 1.2, 2.45), ("Cd-Cd", 12, 3.320, 0.004, 2.45, 3.5)],
}


def _synthetic():
    k = kgrid()
    famp = 0.2 + 1.2 * np.exp(-((k - 5.0) / 6.0) ** 2)
    delta = 2.0 - 0.3 * k + 0.005 * k * k
    truth = Path("syn", k, famp, delta, r_ref=2.5, n_ref=4.0, sigma2_ref=0.004, source="empirical")
    return k, truth


def test_round_trip_synthetic_shell():
    """Known F and δ come back within 1e-3 (relative F, rad δ) over the window interior by plain
    filtering (no refinement); the joint refinement, which makes the filtered path equal the
    filtered reference, moves them by < 5e-3 (it corrects the continuation beyond [kmin, kmax])."""
    k, truth = _synthetic()
    kw = dict(name="syn", n=4.0, r=2.5, sigma2=0.004, rmin=1.0, rmax=4.0, window="kaiser", dk=4.0)
    inner = (k >= 4.0) & (k <= 14.0)
    p = extract_path((k, truth.chi(n=4.0)), iterations=0, **kw)
    assert np.max(np.abs(p.amp[inner] / truth.amp[inner] - 1)) < 1e-3
    assert np.max(np.abs(p.phase[inner] - truth.phase[inner])) < 1e-3
    q = extract_path((k, truth.chi(n=4.0)), iterations=200, **kw)
    assert q.provenance["extraction"]["iterations"] > 0
    assert np.max(np.abs(q.amp[inner] / truth.amp[inner] - 1)) < 5e-3
    assert np.max(np.abs(q.phase[inner] - truth.phase[inner])) < 5e-3
    assert p.provenance["filter"]["rmin"] == 1.0 and p.provenance["n"] == 4.0


def test_round_trip_paper_window_is_looser():
    """With the paper's Hanning window (dk = 1) the k-window leakage limits F, δ to ~1 %."""
    k, truth = _synthetic()
    p = extract_path((k, truth.chi(n=4.0)), name="syn", n=4.0, r=2.5, sigma2=0.004, rmin=1.0, rmax=4.0)
    inner = (k >= 4.0) & (k <= 14.0)
    err_f = np.max(np.abs(p.amp[inner] / truth.amp[inner] - 1))
    err_d = np.max(np.abs(p.phase[inner] - truth.phase[inner]))
    assert 1e-4 < err_f < 2e-2 and err_d < 2e-2


def test_path_chi_reproduces_its_filtered_reference():
    """Filtering the path's χ at the reference's N, R, σ² with its own filter gives the filtered reference."""
    k, truth = _synthetic()
    chi = truth.chi(n=4.0)
    p = extract_path((k, chi), name="syn", n=4.0, r=2.5, sigma2=0.004, rmin=1.5, rmax=3.2)
    filt = FourierFilter(**p.provenance["filter"])
    ref, mod = filt.apply(k, chi).real, filt.apply(k, p.chi(n=4.0)).real
    assert np.sum((ref - mod) ** 2) / np.sum(ref ** 2) < 1e-3


@pytest.fixture(scope="module")
def reduced():
    return {f: reduce_spectrum(read_spectrum(xaslib_dir() / f"{f}.xdi"))
            for f in ("CdS_10K_01", "CdS_10K_02", "CdO_10K_01", "CdO_10K_02")}


@pytest.mark.parametrize("sample", ["CdS", "CdO"])
def test_self_consistency_on_second_scan(reduced, sample):
    """Paths from scan 01 at the known N, R, σ² (no fit) reproduce the q-filtered scan 02: R-factor < 5 %."""
    ref, data = reduced[f"{sample}_10K_01"], reduced[f"{sample}_10K_02"]
    shells = SHELLS[sample]
    paths = [extract_path(ref, name=nm, n=n, r=r, sigma2=s2, rmin=a, rmax=b) for nm, n, r, s2, a, b in shells]
    k = kgrid()
    filt = ref.settings.fourier_filter(rmin=shells[0][4], rmax=shells[-1][5])
    target = filt.apply(k, np.interp(k, data.k, data.chi, right=0.0)).real
    model = filt.apply(k, sum(p.chi(n=p.n_ref) for p in paths)).real
    inside = (k >= filt.kmin) & (k <= filt.kmax)
    rfactor = np.sum((target - model)[inside] ** 2) / np.sum(target[inside] ** 2)
    assert rfactor < 0.05
    # and the paths are not trivially zero: the first shell alone misses the second shell's share
    first_only = filt.apply(k, paths[0].chi(n=paths[0].n_ref)).real
    assert np.sum((target - first_only)[inside] ** 2) / np.sum(target[inside] ** 2) > 5 * rfactor


def test_empirical_paths_physical(reduced):
    """Cd–S: δ decreasing with k, F positive and of FEFF's order of magnitude; provenance complete."""
    p = extract_path(reduced["CdS_10K_01"], name="Cd-S", n=4, r=2.53, sigma2=0.003, rmin=1.3, rmax=2.9)
    k = p.k
    inner = (k >= 3) & (k <= 15)
    assert np.all(p.amp[inner] > 0) and 0.05 < np.median(p.amp[inner]) < 2.0
    assert p.phase[np.searchsorted(k, 14.0)] < p.phase[np.searchsorted(k, 4.0)]
    assert p.source == "empirical" and p.provenance["reference"].endswith("CdS_10K_01.xdi")
    assert set(p.provenance) >= {"reference", "n", "r", "sigma2", "filter", "k_valid"}


def test_joint_extraction_is_self_consistent_in_the_fit_space(reduced):
    """Real CdO, Cd–O and Cd–Cd extracted jointly over windows tiling the fit window: the fit's
    operator applied to the sum of the paths at the reference's N, R, σ² gives the filtered
    reference back (R-factor < 1e-6); independent filtering misses by ~2e-3 (the k window
    truncates each rebuilt path), which is what biased N."""
    from xasmpi.exafs.model import FitSpace, PathModel
    from xasmpi.exafs.paths import Shell, extract_paths

    ref = reduced["CdO_10K_01"]
    shells = [Shell("Cd-O", 6, 2.348, 0.004, 1.2, 2.45), Shell("Cd-Cd", 12, 3.32, 0.004, 2.45, 3.5)]
    space = FitSpace(kind="q", kmin=2, kmax=ref.settings.kmax, rmin=1.2, rmax=3.5)
    out = {}
    for its in (0, 200):
        paths = extract_paths(ref, shells, iterations=its)
        model = PathModel.build(paths, space=space)
        data = np.interp(model.k, ref.k, ref.chi)
        y = model.transform(data)
        theta = np.array([[6, 12, 0.004, 0.004]])
        assert model.names == ("n_Cd-O", "n_Cd-Cd", "sigma2_Cd-O", "sigma2_Cd-Cd")
        res = y - model.transform(model.evaluate(theta))[0]
        out[its] = np.sum(res ** 2) / np.sum(y ** 2)
    assert out[200] < 1e-6 < 1e-4 < out[0]
    assert paths[0].provenance["extraction"]["shells"] == ["Cd-O", "Cd-Cd"]


def test_overlapping_windows_refused(reduced):
    from xasmpi.errors import ConfigError
    from xasmpi.exafs.paths import Shell, extract_paths

    with pytest.raises(ConfigError, match="overlap"):
        extract_paths(reduced["CdO_10K_01"], [Shell("Cd-O", 6, 2.348, 0.004, 1.2, 2.6),
                                              Shell("Cd-Cd", 12, 3.32, 0.004, 2.45, 3.5)])


def _dependent_path():
    from xasmpi.exafs.paths import Dependent

    k, main = _synthetic()
    lam = 8.0 + 0.2 * k
    dep = Dependent("ms", 0.5 + 0.3 * np.exp(-((k - 7.0) / 4.0) ** 2), 1.0 - 0.4 * k, r_ref=3.4, sigma2_ref=0.006,
                    ratio=0.75, fr=0.5, fs=0.25, lam=lam, preal=np.sqrt(k * k + 0.5))
    return k, main, dep, Path("syn", k, main.amp, main.phase, 2.5, 4.0, 0.004, "empirical", dependents=(dep,))


def test_dependent_moves_with_its_path_by_its_factors():
    """A path with a dependent is its own χ plus the dependent's at (ratio·N, R0_d + fr·ΔR,
    σ0²_d + fs·Δσ², the same ΔE0), in Path.chi and in the batched PathModel alike."""
    from xasmpi.exafs.model import FitSpace, Param, PathModel

    k, main, dep, p = _dependent_path()
    alone = Path("ms", k, dep.amp, dep.phase, dep.r_ref, 3.0, dep.sigma2_ref, "feff", lam=dep.lam, preal=dep.preal)
    n, r, s2, de0 = 3.2, 2.42, 0.009, 1.5
    want = main.chi(n=n, r=r, sigma2=s2, de0=de0) + alone.chi(n=0.75 * n, r=3.4 + 0.5 * (r - 2.5),
                                                               sigma2=0.006 + 0.25 * (s2 - 0.004), de0=de0)
    got = p.chi(n=n, r=r, sigma2=s2, de0=de0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    assert np.abs(got - main.chi(n=n, r=r, sigma2=s2, de0=de0)).max() > 0.05 * np.abs(want).max()
    other = Path("other", k, main.amp, main.phase, 2.0, 2.0, 0.004, "empirical")
    model = PathModel.build([other, p], space=FitSpace(kind="k", kmin=2, kmax=16),
                            r=[Param(2.0, False), Param(2.5, True, 2.3, 2.7)], de0_mode="global")
    theta = np.array([[1.0, n, 0.004, s2, r, de0]])
    assert model.names == ("n_other", "n_syn", "sigma2_other", "sigma2_syn", "r_syn", "de0")
    per = model.evaluate_paths(theta)[0]
    np.testing.assert_allclose(per[1], got[: model.nk], atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(per[0], other.chi(n=1.0, sigma2=0.004, de0=de0)[: model.nk], atol=1e-15)


def test_path_with_dependents_round_trips_through_the_results_layout(tmp_path):
    import h5py

    from xasmpi.store.layout import read_path, write_path

    k, _, dep, p = _dependent_path()
    with h5py.File(tmp_path / "p.h5", "w") as f:
        write_path(f.create_group("paths/syn"), p)
        back = read_path(f["paths/syn"], "syn")
    assert len(back.dependents) == 1 and back.lam is None
    d = back.dependents[0]
    assert (d.name, d.r_ref, d.sigma2_ref, d.ratio, d.fr, d.fs) == ("ms", 3.4, 0.006, 0.75, 0.5, 0.25)
    np.testing.assert_array_equal(d.lam, dep.lam)
    np.testing.assert_array_equal(back.chi(n=3.0, r=2.45, sigma2=0.007, de0=-1.0),
                                  p.chi(n=3.0, r=2.45, sigma2=0.007, de0=-1.0))
