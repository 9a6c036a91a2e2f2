"""``xanes`` stage: FDMNES over (candidate × unique absorber), then comparison with measured XANES.

Tasks are uneven (cost ∝ atoms within the radius, cubed), so they go through the dynamic
queue, longest first.  Each task runs in its own working directory
``<output>.work/xanes/<candidate>/abs<index>`` and its spectrum is interpolated onto the
job's fixed energy grid, so per-absorber results fit fixed-shape datasets.

* With ``[relax]`` the candidates are the relaxed structures of the ``relax`` stage (read from its
  journals); a candidate whose relaxation failed is left out, with a warning.
* ``[xanes] epsii = true`` (default): each absorber's spectrum is put on the photon-energy scale
  ``E - E_F + Epsii`` (FDMNES's initial-state energy of that absorber) before the weighted average,
  so O-bonded and S-bonded Cd keep their chemical shift; ``/xanes/<c>/absorbers/epsii`` keeps it.
* ``[xanes] compare = "physical"``: FDMNES convolves with the tabulated core-hole width
  (:data:`xasmpi.xanes.compare.CORE_HOLE_FWHM`) unless ``gamma_hole`` is set.
* ``[xanes] radius_check = R2``: the heaviest absorber of each candidate is also run at radius R2;
  the R-factor between the two normalised spectra is stored as ``radius_convergence``.
* ``[[xanes.candidates]] mode = "fdm"`` runs that candidate with the finite-difference method;
  ``[xanes] fdm_best = N`` reruns the N best screened candidates with FDM automatically (stage
  :mod:`xasmpi.stages.xanes_fdm`).  ``/xanes/<c>/screening`` holds this stage's average,
  ``/xanes/<c>/{energy, mu}`` the compared spectrum (:func:`publish`: the FDM rerun when valid).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError, XasmpiError
from xasmpi.parallel.tasks import OK, Field, StagePlan, Task, TaskResult, failed

STAGE_ID = 4
log = logging.getLogger("xasmpi")


def settings(job: Job, cand=None, *, radius: float | None = None):
    """:class:`~xasmpi.xanes.fdmnes.FdmnesSettings` from ``[xanes]`` (and a candidate's ``mode``)."""
    from xasmpi.xanes.compare import core_hole_fwhm
    from xasmpi.xanes.fdmnes import FdmnesSettings

    x = job.xanes
    gamma = x.gamma_hole
    if gamma is None and x.compare == "physical":
        gamma = core_hole_fwhm(cand.absorber if cand is not None else "Cd", x.edge)
    mode = cand.mode if cand is not None and cand.mode else x.mode
    return FdmnesSettings(edge=x.edge, mode=mode, radius=radius or x.radius, e_min=x.emin, e_max=x.emax,
                          e_step=x.estep, scf=x.scf, convolution=x.convolution, gamma_hole=gamma,
                          gaussian=x.gaussian, timeout=x.timeout)


def candidate_atoms(cand):
    """ASE Atoms and a report dict of one ``[[xanes.candidates]]`` entry."""
    from xasmpi.xanes.clusters import build_cluster, build_inp_like, cluster_report, read_model

    if cand.file:
        atoms = read_model(cand.file)
        if cand.crystal:
            atoms.pbc = True
        try:
            rep = cluster_report(atoms).to_dict()
        except XasmpiError:
            rep = {}
        return atoms, rep
    b = cand.build
    if b.model == "inp-like":
        atoms, rep = build_inp_like(a=b.a, terminate_with=b.terminate)
        return atoms, {**rep.to_dict(), "model": "inp-like"}
    strain = None if not b.strain else (b.strain[0] if len(b.strain) == 1 else tuple(b.strain))
    if cand.crystal:  # the periodic crystal itself (FDMNES Crystal block)
        from xasmpi.xanes.clusters import bulk_crystal

        atoms = bulk_crystal(b.lattice, a=b.a, c=b.c, strain=strain, anion=b.anion)
        return atoms, {"formula": atoms.get_chemical_formula(), "crystal": b.lattice}
    atoms, rep = build_cluster(b.lattice, a=b.a, c=b.c, strain=strain, n_atoms=b.atoms, formula=b.formula,
                               center=b.center, terminate_with=b.terminate)
    return atoms, rep.to_dict()


def plan(job: Job, cache: dict) -> StagePlan:
    from xasmpi.xanes.fdmnes import find_fdmnes, smoke_test

    if job.xanes is None or not job.xanes.candidates:
        raise ConfigError(f"{job.source}: stage 'xanes' needs [xanes] with [[xanes.candidates]]")
    st = settings(job)
    binary, how = find_fdmnes(job.xanes.fdmnes)
    t = smoke_test(binary)
    log.info("FDMNES %s (from %s): smoke test ran in %.1f s", binary, how, t)
    grid = st.energy_grid()
    tasks, groups, extra = screening_tasks(job)
    work = Path(str(job.job.output) + ".work") / "xanes"
    ctx = {"binary": str(binary), "timeout": st.timeout, "grid": grid, "work": str(work)}
    return StagePlan(stage="xanes", tasks=tasks, fields=fields(grid),
                     groups=groups, context=ctx, schedule="dynamic", batch=1,
                     owned=tuple(f"/xanes/{c}" for c in extra["candidates"]), extra=extra)


def fields(grid: np.ndarray) -> dict:
    """Per-task datasets of an FDMNES run: ``mu`` on ``grid`` and Epsii."""
    return {"mu": Field((grid.size,), "f8", {"units": "1"}),
            "epsii": Field((), "f8", {"units": "eV", "what": "FDMNES Epsii (initial-state energy) of the run"})}


def screening_tasks(job: Job, *, quiet: bool = False) -> tuple[list[Task], dict, dict]:
    """The xanes stage's tasks (every unique absorber of every candidate, plus radius checks).

    Returns ``(tasks, groups, extra)``; ``extra["candidates"][name]`` holds the candidate's
    ``atoms`` (relaxed when ``[relax]`` relaxed it), ``report``, ``sites`` (index, weight),
    ``inputs`` and ``settings``.  The ``xanes_fdm`` stage rebuilds the same list to read the
    screening results from the journals.
    """
    from xasmpi.stages.relax import relaxed_structures
    from xasmpi.xanes.clusters import unique_absorbers

    relaxed = relaxed_structures(job)
    tasks, groups, extra = [], {}, {"candidates": {}}
    for cand in job.xanes.candidates:
        atoms, rep = candidate_atoms(cand)
        if cand.name in relaxed:
            if relaxed[cand.name] is None:
                if not quiet:
                    log.warning("xanes candidate %s: its relaxation failed or has not run (see /tasks/relax); "
                                "left out of the xanes stage", cand.name)
                continue
            atoms = relaxed[cand.name]
            rep = {**rep, "relaxed": True}
        cst = settings(job, cand)
        sites = unique_absorbers(atoms, element=cand.absorber, radius=cst.radius)
        group = f"/xanes/{cand.name}/absorbers"
        groups[group] = len(sites)
        inputs = []
        for row, (idx, weight) in enumerate(sites):
            task = absorber_task(len(tasks), group, row, atoms, idx, cst, candidate=cand.name,
                                 title=f"xasmpi {job.job.name}: {cand.name}, absorber {idx}")
            inputs.append(task.payload["input"])
            tasks.append(task)
        if job.xanes.radius_check:
            heavy = max(range(len(sites)), key=lambda k: sites[k][1])
            rst = settings(job, cand, radius=job.xanes.radius_check)
            idx = sites[heavy][0]
            groups[f"/xanes/{cand.name}/radius_check"] = 1
            tasks.append(absorber_task(len(tasks), f"/xanes/{cand.name}/radius_check", 0, atoms, idx, rst,
                                       candidate=cand.name, what="radius_check",
                                       title=f"xasmpi {job.job.name}: {cand.name}, absorber {idx}, "
                                             f"radius check {rst.radius} Å"))
        extra["candidates"][cand.name] = {"atoms": atoms, "report": rep, "sites": sites, "inputs": inputs,
                                          "settings": cst}
        if not quiet:
            log.info("xanes candidate %s: %s, %d atoms, %d unique %s absorber(s), %s", cand.name,
                     rep.get("formula", atoms.get_chemical_formula()), len(atoms), len(sites), cand.absorber,
                     cst.mode)
    return tasks, groups, extra


def absorber_task(index: int, group: str, row: int, atoms, absorber: int, st, *, candidate: str, title: str,
                  **payload) -> Task:
    """One FDMNES run (one absorber of one structure) as a dynamic-queue task.

    Its cost estimate (for the longest-first order) is :func:`~xasmpi.xanes.clusters.estimate_cost`
    at the run's radius, ×30 in FDM mode; the payload holds the FDMNES input text.
    """
    from xasmpi.xanes.clusters import estimate_cost
    from xasmpi.xanes.fdmnes import write_input

    text = write_input(atoms, absorber, st, title=title)
    return Task(index=index, group=group, row=row,
                cost=estimate_cost(atoms, absorber, st.radius) * (30.0 if st.mode == "fdm" else 1.0),
                payload={"candidate": candidate, "absorber": int(absorber), "input": text, **payload})


#: working-folder suffix of the runs that are not screening runs (payload ``what``)
_SUFFIX = {"radius_check": "_radius", "fdm": "_fdm"}


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    from xasmpi.xanes.fdmnes import run_fdmnes

    out = []
    for t in tasks:
        t0 = time.monotonic()
        wd = Path(ctx["work"]) / t.payload["candidate"] / (
            f"abs{t.payload['absorber']}" + _SUFFIX.get(t.payload.get("what"), ""))
        try:
            if wd.exists():
                from xasmpi.external import stop_previous

                stop_previous(wd)  # an orphaned FDMNES of a killed run must not share the folder
                shutil.rmtree(wd)  # a previous attempt was interrupted or failed
            res = run_fdmnes(t.payload["input"], wd, binary=ctx["binary"], timeout=ctx["timeout"])
            mu = res.on_grid(ctx["grid"])
            # a spectrum the comparison cannot normalise is a failed task, not a failed campaign
            from xasmpi.xanes.compare import normalize
            normalize(ctx["grid"], mu, name=f"FDMNES spectrum in {wd} (check xanes.emin/emax)")
            out.append(TaskResult(t.index, OK, {"mu": mu, "epsii": np.float64(res.epsii)},
                                  "", time.monotonic() - t0))
        except Exception as exc:  # recorded as failed (with FDMNES's stderr tail); the campaign goes on
            out.append(failed(t.index, f"{t.payload['candidate']} absorber {t.payload['absorber']}: {exc}",
                              time.monotonic() - t0))
    return out


def epsii_average(grid: np.ndarray, mu: np.ndarray, weights: np.ndarray, epsii: np.ndarray | None):
    """Weighted average of absorber spectra, on the photon-energy scale when ``epsii`` is given.

    Parameters
    ----------
    grid : (n_E,) ndarray
        Energies of every row of ``mu`` (eV, relative to the Fermi level of its calculation).
    mu : (n_abs, n_E) ndarray
        Absorber spectra.
    weights : (n_abs,) ndarray
        Symmetry weights (0 for absorbers that failed).
    epsii : (n_abs,) ndarray or None
        FDMNES Epsii of each absorber (eV).  Absorber i's photon energies are ``grid + epsii[i]``.

    Returns
    -------
    (energy, average)
        ``energy = grid + Epsii_ref`` (``Epsii_ref`` = weighted mean Epsii) with each spectrum
        interpolated there (constant beyond its computed range), or ``(grid, plain average)``.
    """
    w = np.asarray(weights, float)
    if w.sum() <= 0:
        return grid, np.full(grid.size, np.nan)
    mu = np.nan_to_num(np.asarray(mu, float))
    if epsii is None:
        return grid, (w[:, None] * mu).sum(0) / w.sum()
    eps = np.asarray(epsii, float)
    ok = w > 0
    ref = float(np.sum(w[ok] * eps[ok]) / w[ok].sum())
    energy = grid + ref
    rows = np.array([np.interp(energy - eps[i], grid, mu[i]) if ok[i] else np.zeros(grid.size)
                     for i in range(len(w))])
    return energy, (w[:, None] * rows).sum(0) / w.sum()


def write_average(g, a, grid: np.ndarray, sites, inputs, settings, *, use_epsii: bool) -> bool:
    """Average the absorber runs of group ``a`` into ``g/{energy, mu}`` (rank 0, serial).

    Writes ``a/{index, weight, input_text, shift}`` and the attrs ``method`` (FDMNES mode),
    ``settings``, ``absorbers_ok`` and ``complete`` of ``g``; returns ``complete`` (every run ok).
    """
    from xasmpi.store.h5 import write_dataset
    from xasmpi.store.layout import write_strings

    write_dataset(a, "index", np.array([s[0] for s in sites], dtype="i8"))
    write_dataset(a, "weight", np.array([s[1] for s in sites], dtype="f8"))
    if "input_text" in a:
        del a["input_text"]
    write_strings(a, "input_text", list(inputs))
    status = a["status"][:]
    eps = a["epsii"][:]
    w = np.array([s[1] for s in sites]) * (status == OK)
    energy, avg = epsii_average(grid, a["mu"][:], w, eps if use_epsii else None)
    if "shift" in a:
        del a["shift"]
    if use_epsii and w.sum() > 0:
        write_dataset(a, "shift", np.where(status == OK, eps - (energy[0] - grid[0]), np.nan), "eV",
                      what="Epsii of the absorber minus the candidate's reference Epsii (chemical shift)")
    write_dataset(g, "energy", energy, "eV",
                  reference="photon energy: E - E_F + Epsii of each absorber (FDMNES), absorbers aligned"
                  if use_epsii else "relative to the Fermi level of the calculation (FDMNES)")
    write_dataset(g, "mu", avg, "1", weights="symmetry weights of the unique absorbers that succeeded")
    complete = bool((status == OK).all())
    g.attrs.update({"method": settings.mode, "settings": json.dumps(settings.to_dict()),
                    "absorbers_ok": int((status == OK).sum()), "complete": complete})
    return complete


def fdm_valid(job: Job, g) -> bool:
    """True when ``g`` (``/xanes/<c>``) holds a complete FDM rerun made with the job's present
    ``xanes_fdm`` settings (attr ``fingerprint``; an earlier job's rerun is not used)."""
    fg = g.get("fdm")
    return (fg is not None and bool(fg.attrs.get("complete", False)) and "mu" in fg
            and str(fg.attrs.get("fingerprint", "")) == job.fingerprint("xanes_fdm"))


def spectra_by_method(job: Job, g) -> dict:
    """``{method: (energy, mu)}`` of one candidate group: the screening average, and the FDM
    rerun of the ``xanes_fdm`` stage when :func:`fdm_valid` (last: the one compared)."""
    out = {}
    sg = g.get("screening")
    if sg is not None and "mu" in sg and sg.attrs.get("complete", False):
        out[str(sg.attrs["method"])] = (sg["energy"][:], sg["mu"][:])
    if fdm_valid(job, g):
        out.pop("fdm", None)
        out["fdm"] = (g["fdm/energy"][:], g["fdm/mu"][:])
    return out


def publish(job: Job, g) -> None:
    """Write the candidate's compared spectrum ``/xanes/<c>/{energy, mu}``: the FDM rerun when
    valid, else the screening average; attr ``method`` says which (``green`` or ``fdm``),
    ``source`` which group it was copied from."""
    from xasmpi.store.h5 import write_dataset

    by = spectra_by_method(job, g)
    src = "fdm" if fdm_valid(job, g) else "screening"
    s = g[src]
    for key in ("energy", "mu"):
        write_dataset(g, key, s[key][:], s[key].attrs.get("units"),
                      **{k: v for k, v in s[key].attrs.items() if k != "units"})
    g.attrs["method"] = str(s.attrs["method"])
    g.attrs["source"] = src
    g.attrs["complete"] = bool(s.attrs.get("complete", False)) and bool(by)
    if "fdm" in g and src != "fdm":
        log.warning("xanes %s: /xanes/%s/fdm is incomplete or from an earlier job (rerun stage xanes_fdm); "
                    "the screening spectrum is compared", g.name.rsplit("/", 1)[-1], g.name.rsplit("/", 1)[-1])


def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    from xasmpi.store.layout import write_structure
    from xasmpi.xanes.compare import normalize

    grid = plan.context["grid"]
    use_epsii = job.xanes.epsii
    for name, info in plan.extra["candidates"].items():
        g = f[f"/xanes/{name}"]
        for key in ("energy", "mu", "structure"):
            if key in g:
                del g[key]
        sites = info["sites"]
        write_average(g.require_group("screening"), g["absorbers"], grid, sites, info["inputs"], info["settings"],
                      use_epsii=use_epsii)
        status = g["absorbers/status"][:]
        mu = g["absorbers/mu"][:]
        atoms = info["atoms"]
        write_structure(g, atoms)
        g.attrs["formula"] = str(info["report"].get("formula", atoms.get_chemical_formula()))
        g.attrs["n_atoms"] = len(atoms)
        g.attrs["report"] = json.dumps(info["report"], default=str)
        g.attrs["settings"] = json.dumps(info["settings"].to_dict())
        g.attrs["absorbers_ok"] = int((status == OK).sum())
        publish(job, g)
        rc = g.get("radius_check")
        if rc is not None and rc["status"][0] == OK and (status == OK).any():
            heavy = int(np.argmax([s_[1] for s_ in sites]))
            try:
                n1 = normalize(grid, mu[heavy], name=f"{name} radius {info['settings'].radius}")
                n2 = normalize(grid, rc["mu"][0], name=f"{name} radius check")
                r = float(np.sum((n1.norm - n2.norm) ** 2) / np.sum(n1.norm ** 2))
            except XasmpiError as exc:
                r = float("nan")
                log.warning("xanes %s: radius check not evaluated (%s)", name, exc)
            rc.attrs["radius"] = job.xanes.radius_check
            rc.attrs["absorber"] = int(sites[heavy][0])
            g.attrs["radius_convergence"] = r
            log.info("xanes %s: radius convergence, absorber %d, %.1f vs %.1f Å: R = %.5f%s", name,
                     sites[heavy][0], info["settings"].radius, job.xanes.radius_check, r,
                     " (not converged: > 0.002)" if r > 0.002 else "")
    from xasmpi.stages import xanes_compare

    xanes_compare.compare(job, f)
