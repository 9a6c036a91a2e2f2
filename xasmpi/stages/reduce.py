"""``reduce`` stage: spectra in, larch reduction, χ(R), wavelet maps, scattering paths.

No tasks: it is cheap and runs on rank 0.  Later stages call :func:`reduced` and
:func:`paths`, which compute on first use and cache within the run.
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np

from xasmpi.store.h5 import write_dataset as _ds
from xasmpi.store.layout import write_path
from xasmpi.config import Job, spectrum_reduction
from xasmpi.errors import ConfigError
from xasmpi.parallel.tasks import StagePlan

STAGE_ID = 1
log = logging.getLogger("xasmpi")


def settings_for(job: Job, spec):
    """:class:`~xasmpi.exafs.reduce.ReductionSettings` of one spectrum (job defaults + overrides)."""
    from xasmpi.exafs.reduce import ReductionSettings

    r = spectrum_reduction(job, spec)
    kw = dict(rbkg=r.rbkg, kmin=r.kmin, kmax=r.kmax, kweight=float(r.kweight), dk=r.dk, window=r.window,
              e0=r.e0, rmax_out=r.rmax_out, pre1=r.pre1, pre2=r.pre2, norm1=r.norm1, norm2=r.norm2)
    return ReductionSettings(**kw)


def read_spec(spec):
    """Read the file of a ``[[spectra]]`` entry with its format, absorbance and column settings."""
    from xasmpi.exafs.io import read_spectrum

    return read_spectrum(spec.file, name=spec.name, fmt=spec.format, absorbance=spec.absorbance,
                         columns=spec.columns or None, element=spec.element, edge=spec.edge,
                         athena_group=spec.athena_group)


def reduced(job: Job, cache: dict) -> dict:
    """Reduced spectra by name (computed once per run)."""
    if "reduced" in cache:
        return cache["reduced"]
    import dataclasses

    from xasmpi.exafs.reduce import reduce_spectrum, shared_e0

    read = spectra(job, cache)
    e0 = None
    if job.reduction.shared_e0:
        mu_spectra = [sp for sp in read.values() if sp.kind == "mu"]
        e0 = shared_e0(mu_spectra) if mu_spectra else None
    out = {}
    for spec in job.spectra:
        st = settings_for(job, spec)
        if e0 is not None and "e0" not in spec.reduction:
            st = dataclasses.replace(st, e0=e0)
        out[spec.name] = reduce_spectrum(read[spec.name], st)
    cache["reduced"] = out
    return out


def paths(job: Job, cache: dict) -> dict:
    """Scattering paths by name: empirical from reference spectra, or FEFF (computed once per run),
    by the extraction method of :func:`extraction` (``fit.extraction``, "auto" resolved).

    With extraction "anchored" the paths of a reference whose paths all have
    ``structure`` and ``scatterer`` are instead separated from their neighbours by a FEFF model
    of the whole reference (multiple scattering included), corrected smoothly to the measured
    spectrum (:func:`xasmpi.exafs.anchored.anchored_paths`, :func:`_anchored`).

    Empirical paths of one reference spectrum are extracted **jointly**
    (:func:`xasmpi.exafs.paths.extract_paths`) with the fit's own k window, k weight and boxcar
    R windows, so the fit operator applied to their sum returns the filtered reference.  Parts
    of the fit R window that no path of that reference covers are extracted as unnamed
    "remainder" components in the same refinement (so, e.g., CdO's Cd–Cd shell at 3.32 Å is
    not attributed to the Cd–O path when only Cd–O is used), and dropped.  A path with
    ``structure`` and ``scatterer`` gets λ(k) and p′(k) from a FEFF run of that pair (mean-free-
    path and complex-momentum transfer); without them the plane-wave transfer is used and the
    path's provenance says so.

    Raises
    ------
    ConfigError
        Windows of one reference that overlap, or that leave the fit R window (unless
        ``fit.check_windows = false``).
    """
    if "paths" not in cache:
        method = extraction(job, cache)
        got = paths_by(job, cache, method)
        if cache["extraction"][1]:   # "auto": say in every empirical path how it was chosen
            for p in got.values():
                if p.source == "empirical":
                    p.provenance["extraction_choice"] = {"setting": "auto", "method": method,
                                                         "ssr": cache["extraction"][1]}
        cache["paths"] = got
    return cache["paths"]


def extraction(job: Job, cache: dict) -> str:
    """The run's extraction method: ``fit.extraction``, with ``"auto"`` resolved.

    "auto" extracts the paths both ways wherever a reference is :func:`anchorable`, fits every
    sample (the fit stage's best fit: same model, same free parameters, same settings) with
    each set, and takes the one with the lower SSR summed over the samples (Fourier filtering on
    a tie, or when nothing is anchorable, or in k space).  Both path sets describe the
    reference equally well; what differs is where each puts the reference's other shells
    (Fourier: into the nearest window; anchored: nowhere), and the sample's own spectrum says
    which it has.  ``cache["extraction"]`` holds (method, {method: SSR}), empty for a fixed
    setting.
    """
    if "extraction" not in cache:
        f = job.fit
        method, ssr = (f.extraction if f is not None else "fourier"), {}
        if method == "auto":
            method = "fourier"
            from xasmpi.stages import fit as fit_stage

            names = fit_stage.samples(job)
            if f.space != "k" and names and any_anchorable(job.paths):
                from xasmpi.exafs.fit import fit

                red = reduced(job, cache)
                for m in ("fourier", "anchored"):
                    model = fit_stage.model_for(job, paths_by(job, cache, m))
                    ssr[m] = float(sum(fit(model, fit_stage.fit_data(model, red[n]),
                                           settings=fit_stage.de_settings(job)).ssr for n in names))
                method = "anchored" if ssr["anchored"] < ssr["fourier"] else "fourier"
                log.info("extraction auto: best-fit SSR of %s with Fourier-filtered paths %.4g, with "
                         "FEFF-anchored paths %.4g (same free parameters): %s", ", ".join(names),
                         ssr["fourier"], ssr["anchored"], method)
        cache["extraction"] = (method, ssr)
    return cache["extraction"][0]


def paths_by(job: Job, cache: dict, method: str) -> dict:
    """The paths with one extraction method, ``"fourier"`` or ``"anchored"`` (cached per method;
    anchored only where the reference is :func:`anchorable`)."""
    done = cache.setdefault("paths_by", {})
    if method in done:
        return done[method]
    from xasmpi.exafs.paths import Shell, extract_paths

    red = reduced(job, cache) if any(p.source == "empirical" for p in job.paths) else {}
    out = {}
    by_ref: dict[str, list] = {}
    for i, p in enumerate(job.paths):
        if p.source == "empirical":
            by_ref.setdefault(p.reference, []).append((i, p))
        else:
            out[p.name] = feff_path(job, p, cache)
    f = job.fit
    for refname, items in by_ref.items():
        ref = red[refname]
        st = ref.settings
        kmin = f.kmin if f is not None and f.kmin is not None else st.kmin
        kmax = f.kmax if f is not None and f.kmax is not None else st.kmax
        kweight = float(f.kweight) if f is not None else float(st.kweight)
        shells = []
        for i, p in items:
            lam = preal = None
            prov = {}
            if p.structure and p.scatterer:
                fp = feff_path(job, p, cache)
                lam, preal = fp.lam, fp.preal
                prov = {"lambda_from": fp.provenance.get("files", [])[:1], "lambda_structure": str(p.structure)}
            shells.append(Shell(p.name, p.n, p.r, p.sigma2, p.rmin, p.rmax, lam, preal, prov))
        anchored = (f is not None and f.space != "k" and method == "anchored"
                    and anchorable([p for _, p in items]))
        if f is not None and f.space != "k":
            rest = remainder_shells(job, refname, items, f.rmin, f.rmax)   # also checks the windows
        if anchored:
            got = _anchored(job, cache, ref, items, shells, kmin=kmin, kmax=kmax, kweight=kweight)
        else:
            if f is not None and f.space != "k":
                shells += rest
            got = extract_paths(ref, shells, dr=0.0, kmin=kmin, kmax=kmax, kweight=kweight)
        for (i, p), path in zip(items, got):
            out[p.name] = path
    done[method] = out
    return out


#: share of a reference's fit-window signal (‖·‖ in the fit space) left out of its anchored paths
#: above which the reduce stage warns (shells the job does not fit)
DROPPED_WARN = 0.10


def anchorable(paths) -> bool:
    """Whether the paths of one reference can be extracted FEFF-anchored: all name a
    ``scatterer`` and the same ``structure``."""
    return len({p.structure for p in paths}) == 1 and all(p.structure and p.scatterer for p in paths)


def any_anchorable(paths) -> bool:
    """Whether the empirical ones among ``paths`` (``[[paths]]`` entries) have a reference whose
    paths are :func:`anchorable`."""
    by_ref: dict[str, list] = {}
    for p in paths:
        if p.source == "empirical":
            by_ref.setdefault(p.reference, []).append(p)
    return any(anchorable(ps) for ps in by_ref.values())


def _anchored(job: Job, cache: dict, ref, items, shells, *, kmin: float, kmax: float, kweight: float) -> list:
    """Paths of one reference by the FEFF-anchored extraction: FEFF (multiple scattering, paths
    up to 0.7 Å beyond the fit window) on the reference's structure, fitted to it in the fit space."""
    from xasmpi.exafs import feff
    from xasmpi.exafs.anchored import anchored_paths
    from xasmpi.exafs.model import FitSpace
    from xasmpi.exafs.paths import Shell

    f = job.fit
    p0 = items[0][1]
    run = feff_run(job, p0, cache, nleg=4, rmax_path=f.rmax + 0.7)
    anchors = [feff.feff_paths(run, [(p.scatterer, p.r)], sigma2=0.0) for _, p in items]
    used = [fl for a in anchors for fl in a[0].provenance["files"]]
    # the structure's other single-scattering shells get corrections of their own (then dropped)
    extra = sorted({(pf.scatterer, round(pf.reff, 2)) for pf in run.paths
                    if pf.nleg == 2 and pf.file not in used and pf.reff <= f.rmax + 0.7}, key=lambda t: t[1])
    for sc, r in extra:
        a = feff.feff_paths(run, [(sc, r)], sigma2=0.0)
        files = a[0].provenance["files"]
        if set(files) & set(used):   # a split shell (wurtzite's 4.121/4.137 Å Cd) is one shell, once
            rest = [pf for pf in run.paths if pf.nleg == 2 and pf.file not in used and pf.scatterer == sc
                    and abs(pf.reff - r) <= 0.005]
            if not rest:
                continue
            a = feff.feff_paths(run, [(sc, rest[0].reff)], sigma2=0.0, tol=0.005)
            files = a[0].provenance["files"]
        used += files
        anchors.append(a)
        shells = shells + [Shell(f"{sc} {a[0].r_ref:.3g} (not fitted)", a[0].n_ref, a[0].r_ref, 0.006, 0.0, 0.0)]
    # multiple scattering whose apparent distance (reff + ½ dδ/dk over 4-12 Å⁻¹) lies in a path's
    # window is folded into that path, as Fourier filtering would; the rest is modelled apart
    k = anchors[0][0].k
    w = (k >= 4.0) & (k <= 12.0)
    # (as dependents that follow the path's ΔR and Δσ² by the share of their legs that are its shell's)
    attach: list[list] = [[] for _ in shells]
    others = []
    files = {pf.file: pf for pf in run.paths}
    element = absorber_element(job, cache)
    for path, grp in feff.other_paths(run, exclude=used, rmax=f.rmax + 0.7):
        r_app = path.r_ref + 0.5 * float(np.polyfit(k[w], path.phase[w], 1)[0])
        hit = [j for j, (_, p) in enumerate(items) if p.rmin <= r_app < p.rmax] if grp == "ms" else []
        if hit:
            fr, fs = feff.leg_factors(files[path.provenance["files"][0]], pair=(element, items[hit[0]][1].scatterer),
                                      r=anchors[hit[0]][0].r_ref)
            attach[hit[0]].append((path, fr, fs))
        else:
            others.append((path, grp))
    space = FitSpace(kind="q", kmin=kmin, kmax=kmax, kweight=int(round(kweight)), dk=ref.settings.dk,
                     window=ref.settings.window, rmin=f.rmin, rmax=f.rmax)
    got, info = anchored_paths(ref, shells, anchors=anchors, others=others, space=space, attach=attach,
                               reference=str(ref.source), keep=[j < len(items) for j in range(len(shells))])
    log.info("anchored extraction from %s (%s): R = %.2e in the fit space, ΔE0 %.2f eV, %d other FEFF paths; "
             "the paths leave out %.1f %% of its signal in the fit window (%s)", p0.reference, p0.structure,
             info["rfactor"], info["de0"], info["rest_paths"], 100 * info["dropped_fraction"],
             ", ".join(info["dropped"]) or "nothing")
    # warn when anchored is the job's own choice (not under "auto", which weighed it, nor in a variation)
    if info["dropped_fraction"] > DROPPED_WARN and "variation" not in cache and job.fit.extraction == "anchored":
        log.warning("anchored extraction from %s: %.0f %% of its signal in the fit window [%g, %g] Å is in shells "
                    "the job does not fit (%s); a sample that has them is fitted without them and its N are biased: "
                    "add them as [[paths]], move fit.rmax, or use fit.extraction = \"fourier\"",
                    p0.reference, 100 * info["dropped_fraction"], f.rmin, f.rmax, ", ".join(info["dropped"]))
    return got


def remainder_shells(job: Job, refname: str, items, rmin: float, rmax: float) -> list:
    """Unnamed shells for the parts of the fit R window [rmin, rmax] not covered by the
    windows of ``items`` (the paths of one reference); checks the windows on the way."""
    from xasmpi.exafs.paths import Shell

    wins = sorted((p.rmin, p.rmax, i, p) for i, p in items)
    check = getattr(job.fit, "check_windows", True)
    for a, b in zip(wins, wins[1:]):
        if b[0] < a[1] - 1e-9:
            raise ConfigError(f"{job.source}: paths.{b[2]}.rmin = {b[0]} overlaps the window of path "
                              f"'{a[3].name}' ({a[0]}–{a[1]} Å), both from reference '{refname}'")
    if check:
        for lo, hi, i, p in wins:
            if lo < rmin - 1e-9 or hi > rmax + 1e-9:
                raise ConfigError(f"{job.source}: paths.{i}: extraction window {lo}–{hi} Å of '{p.name}' leaves "
                                  f"the fit window {rmin}–{rmax} Å (fit.rmin/fit.rmax); set fit.check_windows = "
                                  f"false to allow it")
    out, edge = [], rmin
    for lo, hi, _, _ in wins + [(rmax, rmax, None, None)]:
        if lo - edge > 0.05:
            out.append(Shell(f"remainder {edge:g}-{lo:g}", 1.0, 0.5 * (edge + lo), 0.0, edge, lo))
        edge = max(edge, hi)
    return out


def spectra(job: Job, cache: dict) -> dict:
    """The job's spectra as read from their files, by name (read once per run)."""
    if "spectra" not in cache:
        cache["spectra"] = {s.name: read_spec(s) for s in job.spectra}
    return cache["spectra"]


def absorber_element(job: Job, cache: dict) -> str:
    """The absorbing element: ``[[spectra]] element`` or the spectrum files' headers (XDI
    ``Element.symbol``), else the first element of ``A-B`` path names; all must agree.

    Raises
    ------
    ConfigError
        Spectra of different elements, or no way to tell the element.
    """
    from ase.data import atomic_numbers

    els = {sp.element for sp in spectra(job, cache).values() if sp.element}
    if not els:
        els = {p.name.split("-")[0] for p in job.paths if p.name.split("-")[0] in atomic_numbers}
    if len(els) != 1:
        raise ConfigError(f"{job.source}: key 'spectra.element': "
                          + (f"the spectra are of different elements ({', '.join(sorted(els))})" if els else
                             "the absorbing element is not in the spectrum files; set it (element = \"Zn\")"))
    return els.pop()


def feff_path(job: Job, p, cache: dict, *, name: str | None = None):
    """A FEFF path for a ``[[paths]]`` entry (its ``structure``, ``scatterer`` and ``r``).

    Also used by the FEFF route.  ``structure`` is a crystal name of
    :data:`xasmpi.data.crystals.CRYSTALS` or an ASE-readable structure file; the absorber is its
    first Cd atom (the job's absorbing element).  Runs are cached per (structure, radius,
    version) and kept in ``<output>.work/feff/``.
    """
    from xasmpi.exafs import feff

    run = feff_run(job, p, cache)
    path = feff.feff_paths(run, [(p.scatterer, p.r)], sigma2=p.sigma2)[0]
    import dataclasses

    return dataclasses.replace(path, name=name or p.name)


def feff_run(job: Job, p, cache: dict, *, nleg: int = 2, rmax_path: float | None = None):
    """The FEFF run of a ``[[paths]]`` entry's structure (cached per structure, radius, version
    and, for ``nleg > 2``, legs and path length): single scattering up to max(5, R + 0.5) Å by
    default."""
    from xasmpi.exafs import feff

    runs = cache.setdefault("feff_runs", {})
    key = (p.structure, p.feff_radius, p.feff_version)
    if nleg != 2 or rmax_path is not None:
        key = key + (int(nleg), round(float(rmax_path if rmax_path is not None else max(5.0, p.r + 0.5)), 3))
    if key not in runs:
        from xasmpi.data.crystals import CRYSTALS, structure

        atoms = structure(p.structure if p.structure in CRYSTALS else job.resolve(p.structure))
        element = absorber_element(job, cache)
        idx = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == element]
        if not idx:
            raise ConfigError(f"{job.source}: paths '{p.name}': structure {p.structure} has no {element} absorber "
                              f"(the absorbing element of the spectra)")
        # multiple-scattering runs happen inside tasks (systematics): one folder per process
        work = feff_workdir(job, key if len(key) == 3 else key + (os.getpid(),))
        runs[key] = feff.run_feff(atoms, absorber_index=idx[0], radius=p.feff_radius,
                                  workdir=work, version=p.feff_version,
                                  rmax_path=key[4] if len(key) > 3 else max(5.0, p.r + 0.5), nleg=nleg)
    return runs[key]


def feff_workdir(job: Job, key) -> str:
    """Where FEFF runs of this job live (beside the output: kept for inspection and reuse)."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha1(repr(key).encode()).hexdigest()[:10]
    d = Path(str(job.job.output) + ".work") / "feff" / f"{Path(str(key[0])).stem}-{h}"
    d.mkdir(parents=True, exist_ok=True)
    return str(d)


def plan(job: Job, cache: dict) -> StagePlan:
    if not job.spectra:
        raise ConfigError(f"{job.source}: stage 'reduce' needs [[spectra]]")
    red = reduced(job, cache)
    pth = paths(job, cache)
    wav = {name: wavelet(job, r) for name, r in red.items()}
    return StagePlan(stage="reduce", tasks=[], fields={}, groups={}, owned=(),
                     extra={"reduced": red, "paths": pth, "wavelet": wav, "spectra": spectra(job, cache)})


def wavelet(job: Job, red):
    """(r, k, modulus) of the job's wavelet transform of k^w χ(k)."""
    from xasmpi.exafs.wavelet import cauchy_wavelet, morlet_wavelet

    w = job.wavelet
    kw = float(red.settings.kweight)
    win = red.kwin if w.kwindow else None
    if w.kind == "cauchy":
        r, wt = cauchy_wavelet(red.k, red.chi, kweight=kw, rmax_out=w.rmax, kwindow=win, order=w.order)
    else:
        r, wt = morlet_wavelet(red.k, red.chi, kweight=kw, eta=w.eta, sigma=w.sigma, rmax_out=w.rmax,
                               kwindow=win)
    kmax = red.settings.kmax + red.settings.dk
    sel = red.k <= kmax
    return r, red.k[sel], np.abs(wt)[:, sel] if wt.shape[-1] == red.k.size else np.abs(wt)



def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    from xasmpi.demo.generate import read_truth

    red, pth, wav = plan.extra["reduced"], plan.extra["paths"], plan.extra["wavelet"]
    for spec in job.spectra:
        r = red[spec.name]
        g = f.require_group(f"/exafs/{spec.name}")
        for key in ("wavelet", "energy", "mu", "norm", "k", "chi", "kwchi", "r", "chir_mag", "chir_re", "chir_im"):
            if key in g:
                del g[key]
        st = r.settings
        sp = plan.extra["spectra"][spec.name]
        g.attrs.update({"role": spec.role, "file": spec.file, "element": str(sp.element or ""),
                        "edge": str(sp.edge or ""), "e0": r.e0, "edge_step": r.edge_step,
                        "simulated": bool(job.job.simulated),
                        "reduction": json.dumps({k: getattr(st, k) for k in st.__dataclass_fields__})})
        if r.energy is not None:
            _ds(g, "energy", r.energy, "eV")
            _ds(g, "mu", r.mu, "1")
            _ds(g, "norm", r.norm, "1")
        _ds(g, "k", r.k, "Å^-1")
        _ds(g, "chi", r.chi, "1")
        _ds(g, "kwchi", r.chi_kw, f"Å^-{st.kweight:g}", kweight=st.kweight)
        _ds(g, "r", r.r, "Å")
        unit = f"Å^-{st.kweight + 1:g}"
        _ds(g, "chir_mag", np.abs(r.chir), unit)
        _ds(g, "chir_re", r.chir.real, unit)
        _ds(g, "chir_im", r.chir.imag, unit)
        if "truth" in g:
            del g["truth"]
        truth = read_truth(spec.file)
        if truth is not None:  # a simulated spectrum: keep its true values beside the results
            tg = g.create_group("truth")
            tg.attrs["values"] = json.dumps(truth)
            tg.attrs["note"] = "SIMULATED data: true parameters used to generate the spectrum"
            g.attrs["simulated"] = True
        wr, wk, wm = wav[spec.name]
        wg = g.create_group("wavelet")
        wg.attrs.update({"kind": job.wavelet.kind, "kweight": st.kweight, "kwindow": job.wavelet.kwindow})
        if job.wavelet.kind == "cauchy":
            wg.attrs["order"] = job.wavelet.order
        _ds(wg, "r", wr, "Å")
        _ds(wg, "k", wk, "Å^-1")
        _ds(wg, "modulus", wm, unit)
    if "paths" in f:
        del f["paths"]
    for name, p in pth.items():
        write_path(f.create_group(f"/paths/{name}"), p)
