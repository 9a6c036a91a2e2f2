"""Comparison of simulated candidates with measured XANES (rank 0, after the FDMNES tasks).

Not a stage (it is not in :data:`xasmpi.stages.STAGES`): the comparison step that the ``xanes``
and ``xanes_fdm`` stages' ``finalize`` run; it has no tasks, seeds or fingerprint of its own.

Measured and simulated spectra are normalised the same way (:func:`xasmpi.xanes.compare.normalize`);
with ``[xanes] compare = "physical"`` (default) every candidate is broadened by the fixed beamline
resolution (on top of FDMNES's tabulated core-hole width), kept at scale 1 and shifted by the one
shift calibrated on ``[xanes] calibrate`` (bulk candidate, bulk spectrum); with ``"free"`` each
candidate is aligned on its own (shift, extra Gaussian/Lorentzian broadening, scale; bounded).
Candidates are ranked by R-factor over ``[xanes] window``; ``[xanes] lcf`` combinations are fitted
as non-negative weighted sums (weights sum to 1) of components on one energy scale, with one
joint extra shift (``lcf_max_shift``).

Each candidate is compared through ``/xanes/<c>/{energy, mu}``: its FDM rerun when the
``xanes_fdm`` stage promoted it (``[xanes] fdm_best``), else its screening average; attr
``method`` and the ranking's ``method`` column say which.  With the physical rule the one shift is
calibrated per method on the calibration candidate computed with that method (the ``xanes_fdm``
stage reruns the calibration candidates too), since Green and FDM place the edge differently.
"""
from __future__ import annotations

import json
import logging

import numpy as np

from xasmpi.store.h5 import write_dataset as _ds
from xasmpi.config import Job

log = logging.getLogger("xasmpi")



def measured_spectra(job: Job) -> dict:
    """``[xanes] measured`` spectra, normalised like the simulations (name -> Normalized)."""
    from xasmpi.stages.reduce import read_spec
    from xasmpi.xanes.compare import normalize

    out = {}
    for name in job.xanes.measured:
        s = read_spec(job.spectrum(name))
        out[name] = normalize(s.energy, s.mu, name=name)
    return out


def rankings(job: Job, sims: dict, measured: dict, *, methods: dict | None = None,
             by_method: dict | None = None) -> tuple[dict, dict, list]:
    """Rank the candidates against every measured spectrum by the ``[xanes] compare`` rule.

    Parameters
    ----------
    sims : dict
        Candidate name -> normalised spectrum that is compared.
    measured : dict
        Spectrum name -> normalised measured spectrum.
    methods : dict, optional
        Candidate name -> FDMNES method of ``sims[name]`` (default: all ``"screening"``).  With
        the physical rule the one energy shift is calibrated per method (FDM and Green place
        the edge differently), each on the calibration candidate computed with that method.
    by_method : dict, optional
        Candidate name -> {method: normalised spectrum}: the calibration candidates' spectra of
        every method (default: ``sims``).

    Returns
    -------
    (rows, shifts, pairs)
        ``rows[spectrum]``: RankRow list, best first; ``shifts[(spectrum, method)]`` (eV);
        ``pairs``: the calibration pairs used.
    """
    from xasmpi.xanes.compare import AlignSettings, RankRow, align_fixed, calibrate_shift, rank_candidates

    x = job.xanes
    methods = methods or {c: "screening" for c in sims}
    by_method = by_method or {c: {methods[c]: s} for c, s in sims.items()}
    window = tuple(x.window)
    if x.compare != "physical":
        rows = {n: rank_candidates(m, sims, settings=AlignSettings(window=window)) for n, m in measured.items()}
        return rows, {}, []
    gauss = {n: x.resolution * m.e0 for n, m in measured.items()}
    pairs = [(c, sp) for c, sp in x.calibrate if c in by_method and sp in measured]
    for c, sp in x.calibrate:
        if c not in by_method:
            log.warning("xanes: calibration candidate %s is not available", c)
    shifts: dict = {}
    for meth in dict.fromkeys(methods.values()):
        for cand, spec in pairs:
            if meth in by_method[cand]:
                shifts[(spec, meth)] = calibrate_shift(by_method[cand][meth], measured[spec],
                                                       gauss_fwhm=gauss[spec], window=window)
                log.info("xanes %s: one energy shift %+.2f eV for all %s candidates, calibrated on %s", spec,
                         shifts[(spec, meth)], meth, cand)
        first = next(((spec, meth) for _c, spec in pairs if (spec, meth) in shifts), None)
        for spec in measured:
            if (spec, meth) not in shifts and first is not None:
                shifts[(spec, meth)] = shifts[first]
                log.info("xanes %s: takes the %s shift of %s (%+.2f eV)", spec, meth, first[0], shifts[first])
    rows = {}
    for name, meas in measured.items():
        out = []
        for c, sim in sims.items():
            sh = shifts.get((name, methods[c]))
            if sh is None:
                sh = calibrate_shift(sim, meas, gauss_fwhm=gauss[name], window=window)
            out.append(RankRow(c, align_fixed(sim, meas, shift=sh, gauss_fwhm=gauss[name], window=window)))
        rows[name] = sorted(out, key=lambda r: r.alignment.r_factor)
    return rows, shifts, pairs


def compare(job: Job, f) -> None:
    from xasmpi.stages.xanes import spectra_by_method
    from xasmpi.store.layout import STRING as str_t, write_lcf, write_measured_xanes
    from xasmpi.xanes.compare import aligned_on, lcf, normalize

    x = job.xanes
    if "/xanes/measured" in f:
        del f["/xanes/measured"]
    if "/xanes/comparison" in f:
        del f["/xanes/comparison"]
    sims, methods, by_method = {}, {}, {}
    for c in x.candidates:
        g = f.get(f"/xanes/{c.name}")
        if g is None or not g.attrs.get("complete", False):
            log.warning("xanes: candidate %s has failed absorbers (see /tasks/xanes); left out of the "
                        "comparison until `xasmpi run --retry-failed` completes it", c.name)
            continue
        sims[c.name] = normalize(g["energy"][:], g["mu"][:], name=c.name)
        methods[c.name] = str(g.attrs.get("method", "green"))
        by_method[c.name] = {m: normalize(e, mu, name=f"{c.name} ({m})")
                             for m, (e, mu) in spectra_by_method(job, g).items()}
        by_method[c.name][methods[c.name]] = sims[c.name]
    if not x.measured:
        return
    mg = f.require_group("/xanes/measured")
    cg = f.require_group("/xanes/comparison")
    cg.attrs["window"] = list(x.window)
    cg.attrs["mode"] = x.compare
    measured = measured_spectra(job)
    physical = x.compare == "physical"
    all_rows, shifts, pairs = rankings(job, sims, measured, methods=methods, by_method=by_method) \
        if sims else ({}, {}, [])
    if physical:
        cg.attrs["resolution"] = x.resolution
        cal_method = next((methods[c] for c, _ in pairs if c in methods), None)
        cg.attrs["shifts"] = json.dumps({sp: v for (sp, m), v in shifts.items() if m == cal_method})
        by_m: dict = {}
        for (sp, m), v in shifts.items():
            by_m.setdefault(sp, {})[m] = v
        cg.attrs["shifts_by_method"] = json.dumps(by_m)
        cg.attrs["calibrated_on"] = json.dumps(pairs)
        cg.attrs["method"] = ("normalised alike (larch pre_edge); edge = max of the first derivative; FDMNES "
                              "convolution with the tabulated core-hole width + Gaussian resolution "
                              f"{x.resolution:g} x E_edge; scale 1; "
                              + ("one shift per measured spectrum and FDMNES method for all candidates, "
                                 "calibrated on a bulk pair" if pairs
                                 else "shift fitted per candidate (no calibration pair)"))
    else:
        cg.attrs["method"] = ("normalised alike (larch pre_edge); edge = max of the first derivative; candidates "
                              "aligned by shift + extra Gaussian/Lorentzian broadening + scale, ranked by R-factor")

    ranking = {}
    for name in x.measured:
        meas = measured[name]
        write_measured_xanes(mg, name, meas)
        if not sims:
            continue
        rows = all_rows[name]
        t = cg.create_group(name)
        t.create_dataset("candidate", data=np.array([r.name for r in rows], dtype=object), dtype=str_t)
        t.create_dataset("method", data=np.array([methods[r.name] for r in rows], dtype=object), dtype=str_t)
        for key in ("shift", "gauss_fwhm", "lorentz_fwhm", "scale", "r_factor"):
            _ds(t, key, np.array([getattr(r.alignment, key) for r in rows]), "1" if key in ("scale", "r_factor") else "eV")
        al = {r.name: r.alignment for r in rows}
        fits = t.create_group("aligned")
        for r in rows:
            a = fits.create_group(r.name)
            _ds(a, "energy", r.alignment.energy, "eV")
            _ds(a, "data", r.alignment.data, "1")
            _ds(a, "model", r.alignment.model, "1")
        ranking[name] = [{"candidate": r.name, "r_factor": r.alignment.r_factor, "shift": r.alignment.shift,
                          "method": methods[r.name]} for r in rows]
        log.info("xanes %s: ranking %s", name, ", ".join(f"{r.name} ({methods[r.name]}, R={r.alignment.r_factor:.4f})"
                                                        for r in rows))
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
