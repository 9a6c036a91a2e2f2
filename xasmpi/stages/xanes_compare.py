"""Comparison of simulated candidates with measured XANES (rank 0, after the FDMNES tasks).

Measured and simulated spectra are normalised the same way (:func:`xasmpi.xanes.compare.normalize`);
with ``[xanes] compare = "physical"`` (default) every candidate is broadened by the fixed beamline
resolution (on top of FDMNES's tabulated core-hole width), kept at scale 1 and shifted by the one
shift calibrated on ``[xanes] calibrate`` (bulk candidate, bulk spectrum); with ``"free"`` each
candidate is aligned on its own (shift, extra Gaussian/Lorentzian broadening, scale; bounded).
Candidates are ranked by R-factor over ``[xanes] window``; ``[xanes] lcf`` combinations are fitted
as non-negative weighted sums (weights sum to 1) of components on one energy scale, with one
joint extra shift (``lcf_max_shift``).
"""
from __future__ import annotations

import json
import logging

import numpy as np

from xasmpi.store.h5 import write_dataset as _ds
from xasmpi.config import Job

log = logging.getLogger("xasmpi")



def compare(job: Job, f) -> None:
    from xasmpi.stages.reduce import read_spec
    from xasmpi.store.layout import STRING as str_t, write_lcf
    from xasmpi.xanes.compare import (AlignSettings, RankRow, align_fixed, aligned_on, calibrate_shift, lcf,
                                      normalize, rank_candidates)

    x = job.xanes
    if "/xanes/measured" in f:
        del f["/xanes/measured"]
    if "/xanes/comparison" in f:
        del f["/xanes/comparison"]
    sims = {}
    for c in x.candidates:
        g = f.get(f"/xanes/{c.name}")
        if g is None or not g.attrs.get("complete", False):
            log.warning("xanes: candidate %s has failed absorbers (see /tasks/xanes); left out of the "
                        "comparison until `xasmpi run --retry-failed` completes it", c.name)
            continue
        sims[c.name] = normalize(g["energy"][:], g["mu"][:], name=c.name)
    if not x.measured:
        return
    settings = AlignSettings(window=tuple(x.window))
    mg = f.require_group("/xanes/measured")
    cg = f.require_group("/xanes/comparison")
    cg.attrs["window"] = list(x.window)
    cg.attrs["mode"] = x.compare
    measured = {}
    for name in x.measured:
        s = read_spec(job.spectrum(name))
        measured[name] = normalize(s.energy, s.mu, name=name)
    physical = x.compare == "physical"
    shifts: dict = {}
    if physical:
        gauss = {n: x.resolution * m.e0 for n, m in measured.items()}
        cg.attrs["resolution"] = x.resolution
        pairs = [(c, sp) for c, sp in x.calibrate if c in sims]
        for c, sp in x.calibrate:
            if c not in sims:
                log.warning("xanes: calibration candidate %s is not available", c)
        for cand, spec in pairs:
            shifts[spec] = calibrate_shift(sims[cand], measured[spec], gauss_fwhm=gauss[spec], window=tuple(x.window))
            log.info("xanes %s: one energy shift %+.2f eV for all candidates, calibrated on %s", spec,
                     shifts[spec], cand)
        for spec in measured:
            if spec not in shifts and pairs:
                shifts[spec] = shifts[pairs[0][1]]
                log.info("xanes %s: takes the shift of %s (%+.2f eV)", spec, pairs[0][1], shifts[spec])
        cg.attrs["shifts"] = json.dumps(shifts)
        cg.attrs["calibrated_on"] = json.dumps(pairs)
        cg.attrs["method"] = ("normalised alike (larch pre_edge); edge = max of the first derivative; FDMNES "
                              "convolution with the tabulated core-hole width + Gaussian resolution "
                              f"{x.resolution:g} x E_edge; scale 1; "
                              + ("one shift per measured spectrum for all candidates, calibrated on a bulk pair"
                                 if pairs else "shift fitted per candidate (no calibration pair)"))
    else:
        cg.attrs["method"] = ("normalised alike (larch pre_edge); edge = max of the first derivative; candidates "
                              "aligned by shift + extra Gaussian/Lorentzian broadening + scale, ranked by R-factor")

    def rank(meas, name):
        if not physical:
            return rank_candidates(meas, sims, settings=settings)
        rows = []
        for c, sim in sims.items():
            sh = shifts[name] if name in shifts else calibrate_shift(sim, meas, gauss_fwhm=gauss[name],
                                                                     window=tuple(x.window))
            rows.append(RankRow(c, align_fixed(sim, meas, shift=sh, gauss_fwhm=gauss[name], window=tuple(x.window))))
        return sorted(rows, key=lambda r: r.alignment.r_factor)

    ranking = {}
    for name in x.measured:
        meas = measured[name]
        g = mg.create_group(name)
        _ds(g, "energy", meas.energy, "eV")
        _ds(g, "norm", meas.norm, "1")
        _ds(g, "deriv", meas.dnorm, "1/eV")
        g.attrs["edge"] = meas.e0
        g.attrs["edge_step"] = meas.edge_step
        if not sims:
            continue
        rows = rank(meas, name)
        t = cg.create_group(name)
        t.create_dataset("candidate", data=np.array([r.name for r in rows], dtype=object), dtype=str_t)
        for key in ("shift", "gauss_fwhm", "lorentz_fwhm", "scale", "r_factor"):
            _ds(t, key, np.array([getattr(r.alignment, key) for r in rows]), "1" if key in ("scale", "r_factor") else "eV")
        al = {r.name: r.alignment for r in rows}
        fits = t.create_group("aligned")
        for r in rows:
            a = fits.create_group(r.name)
            _ds(a, "energy", r.alignment.energy, "eV")
            _ds(a, "data", r.alignment.data, "1")
            _ds(a, "model", r.alignment.model, "1")
        ranking[name] = [{"candidate": r.name, "r_factor": r.alignment.r_factor, "shift": r.alignment.shift}
                         for r in rows]
        log.info("xanes %s: ranking %s", name, ", ".join(f"{r.name} (R={r.alignment.r_factor:.4f})" for r in rows))
        for combo in x.lcf:
            combo = [c for c in combo if c in al]
            if len(combo) < 2:
                continue
            e = al[combo[0]].energy
            comps = {c: (e, aligned_on(sims[c], al[c], e)) for c in combo}
            res = lcf(e, al[combo[0]].data, comps, sum_to_one=True, max_shift=x.lcf_max_shift, joint=True)
            lg = cg.require_group(f"lcf/{name}").create_group("+".join(combo))
            write_lcf(lg, e, al[combo[0]].data, res)
            log.info("xanes %s LCF %s: %s, R=%.4f", name, "+".join(combo),
                     ", ".join(f"{n} {w:.3f}±{s:.3f}" for n, w, s in zip(res.names, res.weights, res.errors)),
                     res.r_factor)
    cg.attrs["ranking"] = json.dumps(ranking)
