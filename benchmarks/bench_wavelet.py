"""Cauchy wavelet: xasmpi (batched FFT) against larch.xafs.cauchy_wavelet (loop over R).

Both run side by side in one process on the real CdS_10K_01 χ(k) (k² weighted); the best
of several repeats of each is reported, with the largest absolute difference of the outputs.
"""
from __future__ import annotations

import timeit


def run(quick: bool = False) -> list[dict]:
    """Rows ``{"figure", "xasmpi_s", "baseline_s", "ratio", "target", "max_abs_diff"}``."""
    import numpy as np
    from larch import Group
    from larch.xafs import cauchy_wavelet as larch_cauchy

    from xasmpi.exafs.io import read_spectrum
    from xasmpi.exafs.reduce import reduce_spectrum
    from xasmpi.exafs.wavelet import cauchy_wavelet
    from xasmpi.testing import xaslib_dir

    red = reduce_spectrum(read_spectrum(xaslib_dir() / "CdS_10K_01.xdi"))
    k, chi = red.k, red.chi
    group = Group()

    def ours():
        return cauchy_wavelet(k, chi, kweight=2)

    def theirs():
        larch_cauchy(k, chi, group=group, kweight=2)

    number, repeat = (2, 3) if quick else (10, 7)
    t_ours, t_theirs = [], []
    for _ in range(repeat):  # interleaved, so load changes hit both alike
        t_ours.append(timeit.timeit(ours, number=number) / number)
        t_theirs.append(timeit.timeit(theirs, number=number) / number)
    _, w = ours()
    theirs()
    return [{
        "figure": "Cauchy wavelet vs larch.xafs.cauchy_wavelet",
        "xasmpi_s": min(t_ours),
        "baseline_s": min(t_theirs),
        "ratio": min(t_theirs) / min(t_ours),
        "target": ">= 1x",
        "max_abs_diff": float(np.max(np.abs(w - group.wcauchy))),
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
