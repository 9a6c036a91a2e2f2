"""``supplementary`` stage: what the paper's supplementary items need beyond the main stages.

* **Table S1** — the structural parameters (N, R, σ²) of every bulk-reference shell an empirical
  path is extracted from, with the source of each number: the job file, checked against the shell
  of the named crystal (:data:`xasmpi.data.crystals.CRYSTALS`, with its citation).  A path whose N,
  R or σ² is not given in the job file is refused (:class:`~xasmpi.errors.ConfigError` naming
  ``paths[i].key``): the extraction would otherwise use the schema's placeholder default.  When
  the path names a known structure the message gives the structure's value to set.
* **Fig. S1** — a FEFF path (:func:`xasmpi.stages.reduce.feff_path`: same structure, scatterer,
  R and σ²_ref) beside every empirical path that has ``structure`` and ``scatterer``.
* **Fig. S3** — rock-salt CdO with 1, 2, …, ``cdo_shells`` coordination shells
  (:func:`xasmpi.xanes.clusters.coordination_shells`: the radius midway to the next shell), the
  same FDMNES tasks as the fragments, each compared with ``cdo_spectrum`` by the physical rule
  with its own calibrated shift; ``convergence_r`` between consecutive shells is the series'
  radius convergence (:func:`_fig_s3`).
* **Fig. S4–S6, S8** — FDMNES runs (dynamic queue, longest first, the xanes stage's own task
  function) of periodic crystals limited to ``fragment_radius`` around the absorber (CdS
  polymorphs and rock-salt CdO) and of bulk CdS at ``bulk_radius``; then the measured spectra
  fitted as non-negative weighted sums (weights sum to 1) of one CdS polymorph and CdO, and
  bulk CdS compared with the measured bulk spectrum.  FDMNES settings (mode, edge, energy range,
  core hole) come from ``[xanes]`` (its defaults when absent); comparisons use the xanes stage's
  physical rule: normalised alike, Gaussian resolution ``resolution × E_edge``, scale 1, one energy
  shift for all fragments, calibrated on the measured bulk spectrum with the bulk lattice computed
  at the fragment radius (:func:`calibration_name`; per polymorph on each spectrum when there is
  no bulk pair), plus the LCF's joint shift within ``lcf_max_shift``.

Results go to ``/supplementary`` (README, "Results file layout").
"""
from __future__ import annotations

import dataclasses
import json
import logging
import tomllib
from pathlib import Path

import numpy as np

from xasmpi.config import Job, XanesSection
from xasmpi.errors import ConfigError, XasmpiError
from xasmpi.parallel.tasks import OK, Field, StagePlan
from xasmpi.store.h5 import write_dataset as _ds

STAGE_ID = 8
log = logging.getLogger("xasmpi")

#: distance tolerance (Å) for the atoms of one shell of a crystal
SHELL_TOL = 0.06
#: the oxide of the fragment test
OXIDE = "CdO-rocksalt"


# ----------------------------------------------------------------------------- Table S1
def given_path_keys(job: Job) -> list[set]:
    """Keys written in each ``[[paths]]`` table of the job file (after ``--set`` overrides)."""
    from xasmpi.config import parse_override, set_dotted

    raw = tomllib.loads(job.text) if job.text else {}
    for ov in job.overrides:
        key, value = parse_override(ov, job.source)
        set_dotted(raw, key, value, job.source)
    tables = raw.get("paths", [])
    return [set(t) if isinstance(t, dict) else set() for t in tables] + [set()] * (len(job.paths) - len(tables))


def structure_atoms(job: Job, structure: str):
    """ASE Atoms of a path's ``structure`` (crystal name or structure file) and its citation."""
    from xasmpi.data import crystals

    if structure in crystals.CRYSTALS:
        return crystals.crystal(structure), crystals.CRYSTALS[structure].citation
    sfile = job.resolve(structure)
    return crystals.read_model(sfile), f"structure file {sfile}"


def crystal_shell(atoms, absorber: str, scatterer: str, r: float | None) -> tuple[float, float] | None:
    """(N, mean R in Å) of the ``scatterer`` shell at ``r`` (± :data:`SHELL_TOL`) around the first
    ``absorber`` atom; the nearest such shell when ``r`` is None; None when there is none."""
    from xasmpi.exafs.feff import cluster

    idx = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == absorber]
    if not idx:
        return None
    c = cluster(atoms, absorber_index=idx[0], radius=(r or 4.0) + 1.0)
    d = np.linalg.norm(c.positions[1:], axis=1)
    d = d[np.array(c.get_chemical_symbols()[1:]) == scatterer]
    if d.size == 0:
        return None
    r0 = float(d.min()) if r is None else float(r)
    sel = d[np.abs(d - r0) <= SHELL_TOL]
    if sel.size == 0:
        return None
    return float(sel.size), float(sel.mean())


def table_s1(job: Job, cache: dict) -> list[dict]:
    """Rows of Table S1, one per empirical path (see the module docstring).

    Raises
    ------
    ConfigError
        A path's ``n``, ``r`` or ``sigma2`` is not in the job file.
    """
    from xasmpi.stages.reduce import absorber_element

    given = given_path_keys(job)
    absorber = absorber_element(job, cache)
    rows = []
    for i, p in enumerate(job.paths):
        if p.source != "empirical":
            continue
        shell, citation = None, ""
        if p.structure and p.scatterer:
            atoms, citation = structure_atoms(job, p.structure)
            shell = crystal_shell(atoms, absorber, p.scatterer, p.r if "r" in given[i] else None)
        for key, what in (("n", "N"), ("r", "R"), ("sigma2", "σ²")):
            if key in given[i]:
                continue
            if key != "sigma2" and shell is not None:
                val = shell[0] if key == "n" else round(shell[1], 4)
                raise ConfigError(f"{job.source}: paths[{i}].{key}: {what} of '{p.name}' in reference "
                                  f"'{p.reference}' is not given; {p.structure} gives {key} = {val:g} "
                                  f"({p.scatterer} shell): set it")
            raise ConfigError(f"{job.source}: paths[{i}].{key}: {what} of '{p.name}' in reference "
                              f"'{p.reference}' is not given and no known structure gives it "
                              + ("(σ²: from a fit of the reference or the literature, Å²)" if key == "sigma2"
                                 else "(name a structure and scatterer, or give the value)"))
        src = f"job file (paths[{i}])"
        agree_n = agree_r = None
        if shell is not None:
            agree_n = abs(shell[0] - p.n) < 1e-6
            agree_r = abs(shell[1] - p.r) <= 0.02
            if not (agree_n and agree_r):
                log.warning("supplementary: path %s: N = %g, R = %g Å differ from the %s shell of %s "
                            "(N = %g, R = %.4f Å)", p.name, p.n, p.r, p.scatterer, p.structure, *shell)
        rows.append({
            "path": p.name, "reference": p.reference, "N": p.n, "R": p.r, "sigma2": p.sigma2,
            "N_source": src + (f"; {p.structure}: {shell[0]:g}" + ("" if agree_n else " (differs)")
                               if shell else ""),
            "R_source": src + (f"; {p.structure}: {shell[1]:.4f} Å" + ("" if agree_r else " (differs)")
                               if shell else ""),
            "sigma2_source": src,
            "structure": p.structure or "", "structure_N": shell[0] if shell else None,
            "structure_R": shell[1] if shell else None, "citation": citation,
            "window": [p.rmin, p.rmax],
        })
    return rows


# ----------------------------------------------------------------------------- Fig. S1
def feff_beside(job: Job, cache: dict) -> tuple[dict, dict, dict]:
    """FEFF paths beside the empirical ones (Fig. S1), raw and through the same extraction.

    For every empirical path with ``structure`` and ``scatterer``: the FEFF path of that shell
    (:func:`xasmpi.stages.reduce.feff_path`, folded with the same σ²_ref) and the same FEFF path
    after the extraction the measured path went through: the FEFF χ(k) of all such shells of
    the reference (each with its N), Fourier filtered and jointly extracted with the same
    windows, k range, k weight and fit-window remainders
    (:func:`xasmpi.exafs.paths.extract_paths`).  The filtered curve is what the extracted one
    should equal if FEFF described the reference exactly, so their ratio shows the physics, not
    the filter's ripples.

    Returns
    -------
    (dict, dict, dict)
        FEFF paths, filtered FEFF paths and extracted paths, by path name.
    """
    from xasmpi.exafs.paths import Shell, extract_paths
    from xasmpi.stages import reduce as R

    emp = [(i, p) for i, p in enumerate(job.paths) if p.source == "empirical" and p.structure and p.scatterer]
    if not emp:
        return {}, {}, {}
    extracted = R.paths(job, cache)
    red = R.reduced(job, cache)
    raw = {p.name: R.feff_path(job, p, cache) for _, p in emp}
    filtered = {}
    f = job.fit
    for refname in dict.fromkeys(p.reference for _, p in emp):
        items = [(i, p) for i, p in emp if p.reference == refname]
        st = red[refname].settings
        kmin = f.kmin if f is not None and f.kmin is not None else st.kmin
        kmax = f.kmax if f is not None and f.kmax is not None else st.kmax
        kweight = float(f.kweight) if f is not None else float(st.kweight)
        k = raw[items[0][1].name].k
        chi = sum(raw[p.name].chi(n=p.n) for _, p in items)
        shells = [Shell(p.name, p.n, p.r, p.sigma2, p.rmin, p.rmax, raw[p.name].lam, raw[p.name].preal)
                  for _, p in items]
        if f is not None and f.space != "k":
            shells += R.remainder_shells(job, refname, items, f.rmin, f.rmax)
        got = extract_paths((k, chi), shells, dr=0.0, kmin=kmin, kmax=kmax, dk=st.dk, window=st.window,
                            kweight=kweight)
        for (_, p), path in zip(items, got):
            filtered[p.name] = path
    return raw, filtered, {p.name: extracted[p.name] for _, p in emp}


# ----------------------------------------------------------------------------- FDMNES calculations
def _xanes_job(job: Job) -> Job:
    """The job with ``[xanes]`` defaults when it has no ``[xanes]`` (FDMNES settings, comparison rule)."""
    return job if job.xanes is not None else dataclasses.replace(job, xanes=XanesSection())


def calculations(job: Job) -> dict:
    """The FDMNES calculations asked for: name -> (Atoms, radius Å, what)."""
    from xasmpi.data.crystals import CRYSTALS
    from xasmpi.xanes.clusters import bulk_crystal

    s = job.supplementary
    out = {}
    if s.fragments:
        for lat in s.fragments:
            out[f"CdS-{lat}-{s.fragment_radius:g}A"] = (bulk_crystal(lat, anion="S"), s.fragment_radius,
                                                        f"CdS {lat} fragment")
        out[f"{OXIDE}-{s.fragment_radius:g}A"] = (bulk_crystal("rocksalt", a=CRYSTALS[OXIDE].a, anion="O"),
                                                  s.fragment_radius, "CdO rock-salt fragment")
    if s.bulk:
        out[f"CdS-{s.bulk}-bulk"] = (bulk_crystal(s.bulk, anion="S"), s.bulk_radius, f"bulk CdS {s.bulk}")
    cal = calibration_name(s)
    if cal is not None and cal not in out:  # last: earlier task indices do not move
        out[cal] = (bulk_crystal(s.bulk, anion="S"), s.fragment_radius,
                    f"CdS {s.bulk} fragment (energy calibration of the fragments on the measured bulk)")
    if s.cdo_shells:  # after the others: their task indices do not move
        from xasmpi.xanes.clusters import coordination_shells

        cdo = bulk_crystal("rocksalt", a=CRYSTALS[OXIDE].a, anion="O")
        cd = cdo.get_chemical_symbols().index("Cd")
        for sh in coordination_shells(cdo, cd, s.cdo_shells):
            out[shell_name(sh.number)] = (cdo, round(sh.radius, 3),
                                          f"CdO rock salt, {sh.number} shell(s): {sh.atoms_within} atoms within "
                                          f"{sh.radius:.2f} Å (Fig. S3)")
    return out


def shell_name(n: int) -> str:
    """Name of the Fig. S3 calculation of rock-salt CdO with ``n`` coordination shells."""
    return f"{OXIDE}-{n}shell" + ("s" if n > 1 else "")


def calibration_name(s) -> str | None:
    """The calculation whose shift against ``bulk_spectrum`` aligns the fragments: the bulk lattice
    computed at the fragment radius (FDMNES's energy origin moves with the radius, so a shift
    calibrated at ``bulk_radius`` does not carry over to 3 Å fragments); None without a bulk pair."""
    if not s.fragments or s.bulk is None:
        return None
    if s.bulk_radius == s.fragment_radius:
        return f"CdS-{s.bulk}-bulk"
    return f"CdS-{s.bulk}-{s.fragment_radius:g}A"


def _check(job: Job) -> None:
    s = job.supplementary
    names = [x.name for x in job.spectra]
    for m in s.measured:
        if m not in names:
            raise ConfigError(f"{job.source}: supplementary.measured: '{m}' is not a spectrum name")
    if (s.bulk is None) != (s.bulk_spectrum is None):
        raise ConfigError(f"{job.source}: supplementary.bulk_spectrum: give both 'bulk' and 'bulk_spectrum' "
                          "for Fig. S8, or neither")
    if s.bulk_spectrum is not None and s.bulk_spectrum not in names:
        raise ConfigError(f"{job.source}: supplementary.bulk_spectrum: '{s.bulk_spectrum}' is not a spectrum name")
    if (s.cdo_shells > 0) != (s.cdo_spectrum is not None):
        raise ConfigError(f"{job.source}: supplementary.cdo_spectrum: give both 'cdo_shells' (> 0) and "
                          "'cdo_spectrum' for Fig. S3, or neither")
    if s.cdo_spectrum is not None and s.cdo_spectrum not in names:
        raise ConfigError(f"{job.source}: supplementary.cdo_spectrum: '{s.cdo_spectrum}' is not a spectrum name")


def measured_names(job: Job) -> list[str]:
    """Spectra fitted by the fragment sums: ``supplementary.measured``, else the samples, else all."""
    s = job.supplementary
    if s.measured:
        return list(s.measured)
    samples = [x.name for x in job.spectra if x.role == "sample"]
    return samples or [x.name for x in job.spectra]


def plan(job: Job, cache: dict) -> StagePlan:
    if job.supplementary is None:
        raise ConfigError(f"{job.source}: stage 'supplementary' needs a [supplementary] section")
    if not job.spectra:
        raise ConfigError(f"{job.source}: stage 'supplementary' needs [[spectra]]")
    _check(job)
    sup = job.supplementary
    rows = table_s1(job, cache)
    extra: dict = {"table_s1": rows, "feff": {}, "feff_filtered": {}, "extracted": {}, "calcs": {}}
    if sup.feff_paths:
        extra["feff"], extra["feff_filtered"], extra["extracted"] = feff_beside(job, cache)
    calcs = calculations(job)
    tasks, groups = [], {}
    ctx = None
    if calcs:
        from xasmpi.stages.xanes import absorber_task, settings as xanes_settings
        from xasmpi.xanes.clusters import unique_absorbers
        from xasmpi.xanes.fdmnes import find_fdmnes

        xj = _xanes_job(job)
        binary, how = find_fdmnes(xj.xanes.fdmnes)
        grid = xanes_settings(xj).energy_grid()
        for name, (atoms, radius, what) in calcs.items():
            st = xanes_settings(xj, radius=radius)
            sites = unique_absorbers(atoms, element="Cd", radius=radius)
            group = f"/supplementary/xanes/{name}/absorbers"
            groups[group] = len(sites)
            inputs = []
            for row, (idx, _w) in enumerate(sites):
                task = absorber_task(len(tasks), group, row, atoms, idx, st, candidate=name,
                                     title=f"xasmpi {job.job.name}: supplementary {name}, absorber {idx}")
                inputs.append(task.payload["input"])
                tasks.append(task)
            extra["calcs"][name] = {"atoms": atoms, "sites": sites, "inputs": inputs, "settings": st, "what": what}
            log.info("supplementary: FDMNES %s (%s), radius %g Å, %d unique absorber(s), %s", name, what, radius,
                     len(sites), st.mode)
        ctx = {"binary": str(binary), "timeout": xj.xanes.timeout, "grid": grid,
               "work": str(Path(str(job.job.output) + ".work") / "supplementary")}
    fields = {"mu": Field((ctx["grid"].size,) if ctx else (1,), "f8", {"units": "1"}),
              "epsii": Field((), "f8", {"units": "eV", "what": "FDMNES Epsii (initial-state energy) of the run"})}
    return StagePlan(stage="supplementary", tasks=tasks, fields=fields if tasks else {}, groups=groups,
                     context=ctx, schedule="dynamic", batch=1,
                     owned=("/supplementary",), extra=extra)


# ----------------------------------------------------------------------------- finalize
def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    from xasmpi.store.layout import STRING as str_t

    sup = job.supplementary
    root = f.require_group("/supplementary")
    for key in ("table_s1", "feff_paths", "fragments", "s8", "s3"):
        if key in root:
            del root[key]
    root.attrs["settings"] = json.dumps(dataclasses.asdict(sup))
    t = root.create_group("table_s1")
    t.attrs["rows"] = json.dumps(plan.extra["table_s1"])
    t.attrs["note"] = ("structural parameters of the bulk-reference shells the empirical paths are extracted "
                       "from; each value as given in the job file, checked against the named crystal's shell")
    fg = root.create_group("feff_paths")
    for name, fp in plan.extra["feff"].items():
        ex = plan.extra["extracted"][name]
        g = fg.create_group(name)
        g.attrs.update({"n_ref": fp.n_ref, "r_ref": fp.r_ref, "sigma2_ref": fp.sigma2_ref,
                        "provenance": json.dumps(fp.provenance, default=str),
                        "extracted_lambda": "FEFF λ(k) of this path" if ex.lam is not None else
                        "none (plane-wave transfer)"})
        _ds(g, "k", fp.k, "Å^-1")
        _ds(g, "amp", fp.amp, "Å")
        _ds(g, "phase", fp.phase, "rad")
        if fp.lam is not None:
            _ds(g, "lam", fp.lam, "Å")
        flt = plan.extra["feff_filtered"][name]
        _ds(g, "amp_filtered", flt.amp, "Å")
        _ds(g, "phase_filtered", flt.phase, "rad")
        g["amp_filtered"].attrs["what"] = ("FEFF path through the same extraction as the empirical one "
                                           "(same windows, k range, k weight)")
    if not plan.extra["calcs"]:
        return
    _finalize_xanes(job, plan, f, root, str_t)


def _finalize_xanes(job: Job, plan: StagePlan, f, root, str_t) -> None:
    from xasmpi.stages.reduce import read_spec
    from xasmpi.stages.xanes import epsii_average
    from xasmpi.xanes.compare import align_fixed, aligned_on, calibrate_shift, lcf, normalize
    from xasmpi.store.layout import write_lcf

    sup = job.supplementary
    xj = _xanes_job(job)
    x = xj.xanes
    grid = plan.context["grid"]
    sims = {}
    for name, info in plan.extra["calcs"].items():
        g = root[f"xanes/{name}"]
        a = g["absorbers"]
        for key in ("index", "weight", "input_text"):
            if key in a:
                del a[key]
        for key in ("energy", "mu"):
            if key in g:
                del g[key]
        sites = info["sites"]
        a.create_dataset("index", data=np.array([s[0] for s in sites], dtype="i8"))
        a.create_dataset("weight", data=np.array([s[1] for s in sites], dtype="f8"))
        a.create_dataset("input_text", data=np.array(info["inputs"], dtype=object), dtype=str_t)
        status = a["status"][:]
        w = np.array([s[1] for s in sites]) * (status == OK)
        energy, avg = epsii_average(grid, a["mu"][:], w, a["epsii"][:] if x.epsii else None)
        _ds(g, "energy", energy, "eV")
        _ds(g, "mu", avg, "1")
        atoms = info["atoms"]
        from xasmpi.exafs.feff import cluster

        frag = cluster(atoms, absorber_index=sites[0][0], radius=info["settings"].radius)
        g.attrs.update({"what": info["what"], "settings": json.dumps(info["settings"].to_dict()),
                        "formula_in_radius": frag.get_chemical_formula(), "atoms_in_radius": len(frag),
                        "cellpar": json.dumps([float(v) for v in atoms.cell.cellpar()]),
                        "complete": bool((status == OK).all())})
        if (status == OK).all():
            sims[name] = normalize(energy, avg, name=name)
        else:
            log.warning("supplementary: %s has failed FDMNES runs (see /tasks/supplementary); left out", name)
    measured = {}
    wanted = list(dict.fromkeys(measured_names(job) + [n for n in (sup.bulk_spectrum, sup.cdo_spectrum) if n]))
    for name in wanted:
        s = read_spec(job.spectrum(name))
        measured[name] = normalize(s.energy, s.mu, name=name)
    window = tuple(x.window)
    gauss = {n: x.resolution * m.e0 for n, m in measured.items()}
    shift = None
    bname = f"CdS-{sup.bulk}-bulk" if sup.bulk else None
    if bname in sims:
        meas = measured[sup.bulk_spectrum]
        shift = calibrate_shift(sims[bname], meas, gauss_fwhm=gauss[sup.bulk_spectrum], window=window)
        al = align_fixed(sims[bname], meas, shift=shift, gauss_fwhm=gauss[sup.bulk_spectrum], window=window)
        g = root.create_group("s8")
        _ds(g, "energy", al.energy, "eV")
        _ds(g, "data", al.data, "1")
        _ds(g, "model", al.model, "1")
        g.attrs.update({"calculation": bname, "spectrum": sup.bulk_spectrum, "shift": shift,
                        "gauss_fwhm": al.gauss_fwhm, "r_factor": al.r_factor, "window": list(window),
                        "settings": root[f"xanes/{bname}"].attrs["settings"],
                        "atoms_in_radius": int(root[f"xanes/{bname}"].attrs["atoms_in_radius"]),
                        "edge_measured": measured[sup.bulk_spectrum].e0})
        log.info("supplementary S8: %s vs %s, shift %+.2f eV, R = %.5f", bname, sup.bulk_spectrum, shift, al.r_factor)
    if sup.cdo_shells:
        _fig_s3(root, plan.extra["calcs"], sims, measured[sup.cdo_spectrum], sup, gauss[sup.cdo_spectrum], window)
    oxide = f"{OXIDE}-{sup.fragment_radius:g}A"
    if not sup.fragments or oxide not in sims:
        return
    cal = calibration_name(sup)
    shift = None
    if cal in sims:
        shift = calibrate_shift(sims[cal], measured[sup.bulk_spectrum], gauss_fwhm=gauss[sup.bulk_spectrum],
                                window=window)
        log.info("supplementary S4-S6: one energy shift %+.2f eV for the fragments, calibrated %s on %s", shift,
                 cal, sup.bulk_spectrum)
    fr = root.create_group("fragments")
    fr.attrs["rule"] = ("weights >= 0 summing to 1; components normalised alike, broadened by resolution x E_edge, "
                        "scale 1; energy shift " + (f"calibrated on the bulk pair {cal} / {sup.bulk_spectrum}"
                                                    if shift is not None else
                                                    "calibrated per polymorph on each spectrum")
                        + f", plus one joint LCF shift within ±{x.lcf_max_shift:g} eV")
    fr.attrs["measured"] = json.dumps(measured_names(job))
    for mname in measured_names(job):
        meas = measured[mname]
        mg = fr.create_group(mname)
        for lat in sup.fragments:
            cname = f"CdS-{lat}-{sup.fragment_radius:g}A"
            if cname not in sims:
                continue
            try:
                sh = shift if shift is not None else calibrate_shift(sims[cname], meas, gauss_fwhm=gauss[mname],
                                                                     window=window)
                al_s = align_fixed(sims[cname], meas, shift=sh, gauss_fwhm=gauss[mname], window=window)
                al_o = align_fixed(sims[oxide], meas, shift=sh, gauss_fwhm=gauss[mname], window=window)
                e = al_s.energy
                comps = {cname: (e, aligned_on(sims[cname], al_s, e)), oxide: (e, aligned_on(sims[oxide], al_o, e))}
                res = lcf(e, al_s.data, comps, sum_to_one=True, max_shift=x.lcf_max_shift, joint=True)
            except XasmpiError as exc:
                log.warning("supplementary: fragment fit %s + %s of %s failed: %s", cname, oxide, mname, exc)
                continue
            g = mg.create_group(lat)
            write_lcf(g, e, al_s.data, res)
            _ds(g, "components", np.array([np.interp(e - s_, *comps[n]) for n, s_ in zip(res.names, res.shifts)]),
                "1")
            g.attrs.update({"r_factor": res.r_factor, "shift": sh, "lcf_shift": float(res.shifts[0]),
                            "gauss_fwhm": gauss[mname], "edge_measured": meas.e0})
            log.info("supplementary S4-S6 %s: %s %.3f±%.3f + %s %.3f±%.3f, R = %.5f", mname, cname, res.weights[0],
                     res.errors[0], oxide, res.weights[1], res.errors[1], res.r_factor)


def _fig_s3(root, calcs: dict, sims: dict, meas, sup, gauss: float, window: tuple) -> None:
    """Fig. S3: rock-salt CdO with 1..n coordination shells against the measured CdO spectrum.

    Each calculation is compared by the physical rule (fixed resolution, scale 1) with its own
    calibrated shift (FDMNES's energy origin moves with the radius); ``convergence_r`` is the
    R-factor between the aligned model and the previous shell's, ``Σ (m_n − m_{n−1})² / Σ m_n²``
    on the measured energies of the window: the radius convergence of the series.
    """
    from xasmpi.xanes.clusters import coordination_shells
    from xasmpi.xanes.compare import align_fixed, aligned_on, calibrate_shift

    g = root.create_group("s3")
    g.attrs.update({"spectrum": sup.cdo_spectrum, "window": list(window), "gauss_fwhm": gauss,
                    "rule": "normalised alike; FDMNES core-hole convolution + Gaussian resolution x E_edge; "
                            "scale 1; one energy shift per calculation, calibrated on the measured CdO"})
    prev, rows = None, []
    any_calc = next(iter(v for k, v in calcs.items() if k.startswith(f"{OXIDE}-") and "shell" in k), None)
    shells = coordination_shells(any_calc["atoms"], any_calc["sites"][0][0], sup.cdo_shells) if any_calc else []
    for sh in shells:
        name = shell_name(sh.number)
        if name not in sims:
            log.warning("supplementary S3: %s is not available (failed FDMNES runs)", name)
            prev = None
            continue
        try:
            shift = calibrate_shift(sims[name], meas, gauss_fwhm=gauss, window=window)
            al = align_fixed(sims[name], meas, shift=shift, gauss_fwhm=gauss, window=window)
        except XasmpiError as exc:
            log.warning("supplementary S3: %s not compared: %s", name, exc)
            prev = None
            continue
        model = aligned_on(sims[name], al, al.energy)
        conv = float("nan") if prev is None else \
            float(np.sum((model - np.interp(al.energy, *prev)) ** 2) / np.sum(model ** 2))
        prev = (al.energy, model)
        h = g.create_group(name)
        _ds(h, "energy", al.energy, "eV")
        _ds(h, "data", al.data, "1")
        _ds(h, "model", al.model, "1")
        h.attrs.update({"shells": sh.number, "radius": float(calcs[name]["settings"].radius),
                        "distance": sh.distance, "atoms_within": sh.atoms_within,
                        "elements": json.dumps(sh.elements), "shift": shift, "r_factor": al.r_factor,
                        "convergence_r": conv, "edge_measured": meas.e0,
                        "settings": json.dumps(calcs[name]["settings"].to_dict())})
        rows.append((sh.number, al.r_factor, conv))
        log.info("supplementary S3: CdO %d shell(s) (%d atoms, %.2f Å; shell at %.3f Å: %s) vs %s: shift %+.2f eV, "
                 "R = %.5f, change from the previous shell R = %.5f", sh.number, sh.atoms_within, sh.radius,
                 sh.distance, sh.elements, sup.cdo_spectrum, shift, al.r_factor, conv)
    g.attrs["series"] = json.dumps([{"shells": n, "r_factor": r, "convergence_r": c} for n, r, c in rows])

