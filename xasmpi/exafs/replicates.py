"""Replicate data sets for the replicate fits (the tasks the campaign driver scatters).

Modes
-----
``"restart"``
    The measured χ(k) itself; only the evolution's seed changes (what the paper did).  The
    spread measures the optimiser's **stability**, not an uncertainty of the parameters: a
    well-converged optimiser gives sd → 0 whatever the noise in the data.
``"noise"``
    Parametric bootstrap: best-fit model χ(k) plus white Gaussian noise of standard deviation
    ε_k in χ(k) (larch ``estimate_noise``: the noise of χ(k), its k-weight divided out), so the
    k-weighted fit sees noise ε_k·k^w as larch's noise model assumes.
``"residual"``
    Moving-block bootstrap of the best fit's residual of k^w χ (the quantity whose squares the
    fit sums) over the support of the fit operator, added back to the model.  The weighted
    residual is not stationary (white noise in χ(k) becomes noise ∝ k^w), so it is first
    divided by its local envelope (the running RMS over :func:`envelope_width` points),
    the normalised residual is block-resampled, and every resampled value is multiplied by
    the envelope at its *new* position: a large high-k residual is never pasted at low k.
    The residual is also scaled by :func:`dof_factor`, since the best fit has absorbed part
    of the noise.  On pure white noise this gives the same parameter spread as ``"noise"``.
    Block length
    ``π/ΔR`` (ΔR = rmax − rmin of the fit's R window): a signal confined to a band of width ΔR in
    R is correlated over δk ≈ π/ΔR, which is twice the spacing π/(2ΔR) of the independent points
    (N_idp = 2ΔkΔR/π), so blocks keep that correlation.  For a k-space fit ΔR defaults to the
    space's ``rmax − rmin`` as well.

Each replicate's randomness comes only from its own ``numpy.random.SeedSequence``; child
sequences are derived statelessly (``spawn_key + (i,)``), so the same seed always gives the same
data, whatever else is in the batch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from xasmpi.errors import ConfigError
from xasmpi.exafs.model import PathModel
from xasmpi.exafs.paths import KSTEP

MODES = ("restart", "noise", "residual")

#: child-stream indices of a replicate's SeedSequence
STREAM_DATA, STREAM_DE = 0, 1


def child_rng(seed: np.random.SeedSequence, stream: int) -> np.random.Generator:
    """Generator for sub-stream ``stream`` of a replicate seed (stateless: does not call ``spawn``)."""
    if not isinstance(seed, np.random.SeedSequence):
        raise ConfigError(f"replicate seed {seed!r}: must be a numpy.random.SeedSequence")
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + (stream,)))


def block_length(model: PathModel) -> int:
    """Moving-block length in k grid points: ``ceil(π / ΔR / 0.05)`` (ΔR of the fit's R window, Å)."""
    dr = model.space.rmax - model.space.rmin
    return max(1, int(np.ceil(np.pi / dr / KSTEP)))


def dof_factor(model: PathModel) -> float:
    """``sqrt(N_idp / (N_idp − n_free))``: the best fit absorbs n_free of the N_idp independent
    points of the noise, so its residual is that much smaller than the noise it estimates (the
    usual degrees-of-freedom correction of a residual bootstrap); 1 when N_idp <= n_free."""
    n_idp, p = model.space.n_idp, len(model.names)
    return float(np.sqrt(n_idp / (n_idp - p))) if n_idp > p else 1.0


def envelope_width(model: PathModel) -> int:
    """Width (k grid points) of the running RMS that estimates the residual's envelope:
    two block lengths, at least 2 Å⁻¹ (40 points)."""
    return max(2 * block_length(model), int(round(2.0 / KSTEP)))


def local_envelope(x: np.ndarray, width: int) -> np.ndarray:
    """Running RMS of ``x`` over ``width`` points (centred, edges by reflection), floored at
    1e-6 of the overall RMS so that it can be divided by."""
    x = np.asarray(x, dtype=float)
    width = max(1, min(int(width), x.size))
    half = width // 2
    padded = np.pad(x * x, (half, width - 1 - half), mode="reflect" if x.size > 1 else "edge")
    c = np.concatenate([[0.0], np.cumsum(padded)])
    env = np.sqrt(np.maximum((c[width:] - c[:-width]) / width, 0.0))
    floor = 1e-6 * np.sqrt(np.mean(x * x)) + 1e-300
    return np.maximum(env, floor)


def replicate_data(model: PathModel, data: np.ndarray, seeds: Sequence[np.random.SeedSequence], *,
                   mode: str, chi_model: np.ndarray | None = None, eps_k: float | None = None
                   ) -> np.ndarray:
    """χ(k) of the replicate data sets.

    Parameters
    ----------
    model : PathModel
        Defines the k grid, k-weight and fit operator.
    data : ndarray
        Measured χ(k) on the model grid.
    seeds : sequence of SeedSequence
        One per replicate.
    mode : {"restart", "noise", "residual"}
    chi_model : ndarray, optional
        Best-fit model χ(k) (required for ``noise`` and ``residual``).
    eps_k : float, optional
        Noise in χ(k) for ``noise`` (required there).

    Returns
    -------
    ndarray
        ``(len(seeds), nk)`` χ(k) arrays.
    """
    if mode not in MODES:
        raise ConfigError(f"replicates mode={mode!r}: must be one of {MODES}")
    data = model.check_data(data)
    n = len(seeds)
    if mode == "restart":
        for s in seeds:
            child_rng(s, STREAM_DATA)           # validates the seeds
        return np.broadcast_to(data, (n, data.size)).copy()
    if chi_model is None:
        raise ConfigError(f"replicates mode={mode!r}: needs the best-fit model χ(k)")
    chi_model = model.check_data(chi_model)
    out = np.empty((n, data.size))
    if mode == "noise":
        if eps_k is None or not eps_k > 0:
            raise ConfigError(f"replicates mode='noise': eps_k must be > 0, got {eps_k}")
        for i, s in enumerate(seeds):
            out[i] = chi_model + eps_k * child_rng(s, STREAM_DATA).standard_normal(data.size)
        return out
    k = model.k
    kmin, kmax = model.space.kspan()
    sup = np.flatnonzero((k >= kmin - 1e-9) & (k <= kmax + 1e-9) & (k > 0))
    w = k[sup] ** model.space.kweight
    res_w = (data[sup] - chi_model[sup]) * w
    res_w = res_w * dof_factor(model)
    env = local_envelope(res_w, envelope_width(model))
    res_n = res_w / env                      # stationary: unit local RMS
    npt, blen = sup.size, min(block_length(model), sup.size)
    nblk = int(np.ceil(npt / blen))
    for i, s in enumerate(seeds):
        starts = child_rng(s, STREAM_DATA).integers(0, npt - blen + 1, size=nblk)
        boot = np.concatenate([res_n[a:a + blen] for a in starts])[:npt] * env
        out[i] = chi_model
        out[i, sup] += boot / w
    return out
