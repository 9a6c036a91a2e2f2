"""Cost of the FEFF-anchored path extraction on a real reference, against Fourier filtering of
the same shell (the default extraction: the baseline).

    python benchmarks/bench_extraction.py [--quick]

Problem: CdS_10K_01 (real, ``../shared/data/xaslib``), wurtzite FEFF paths (multiple scattering,
four legs, up to 4.2 Å), the Cd–S shell kept and the structure's other shells modelled, q space
k 2–16.5 Å⁻¹, R 1.2–3.5 Å (``jobs/examples/mixture.toml``); the FEFF run is made once, outside
the timing (the reduce stage caches it per structure).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _problem(workdir: Path):
    from xasmpi.exafs import feff as xf
    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.model import FitSpace
    from xasmpi.exafs.paths import Shell
    from xasmpi.exafs.reduce import reduce_spectrum
    from xasmpi.testing import xaslib_dir

    red = reduce_spectrum(read_spectrum(xaslib_dir() / "CdS_10K_01.xdi"))
    run = xf.run_feff(xf.crystal("CdS-wurtzite"), absorber_index=0, radius=6.0, workdir=workdir,
                      rmax_path=4.2, nleg=4)
    shells = [(Shell("Cd-S", 4, 2.53, 0.003, 1.2, 3.5), "S", 2.53), (Shell("Cd 4.13", 12, 4.13, 0.006, 0.0, 0.0), "Cd", 4.13),
              (Shell("S 4.18", 1, 4.18, 0.006, 0.0, 0.0), "S", 4.18)]
    anchors, used = [], []
    for _, sc, r in shells:
        a = xf.feff_paths(run, [(sc, r)], sigma2=0.0, tol=0.03)
        anchors.append(a)
        used += a[0].provenance["files"]
    others = xf.other_paths(run, exclude=used, rmax=4.2)
    space = FitSpace(kind="q", kmin=2.0, kmax=16.5, kweight=2, rmin=1.2, rmax=3.5)
    return red, [s for s, _, _ in shells], anchors, others, space


def run(quick: bool = False) -> list[dict]:
    from xasmpi.exafs.anchored import anchored_paths
    from xasmpi.exafs.paths import extract_paths

    reps = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="xasmpi-bench-extraction-") as tmp:
        red, shells, anchors, others, space = _problem(Path(tmp))
        t_anch, t_four = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            _, info = anchored_paths(red, shells, anchors=anchors, others=others, space=space,
                                     keep=[True, False, False])
            t_anch.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            extract_paths(red, [shells[0]], dr=0.0, kmin=2.0, kmax=16.5, kweight=2.0)
            t_four.append(time.perf_counter() - t0)
    ta, tf = min(t_anch), min(t_four)
    return [{"figure": f"extraction of Cd-S from real CdS_10K_01 (s, best of {reps}): anchored vs Fourier",
             "xasmpi": round(ta, 3), "baseline": round(tf, 3), "ratio": round(ta / tf, 1), "target": "report",
             "rfactor_reference_model": float(f"{info['rfactor']:.3g}")}]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['figure']}: {r['xasmpi']}  (baseline {r['baseline']}, ratio {r['ratio']})")
