"""``analysis`` stage: stoichiometry, bond angle from two shells, bond-angle distributions.

Runs on rank 0 after the fit (and XANES) stages and reads their results from the file:

* stoichiometry: Cd_xS_y near ``[analysis] mass`` ranked by the fitted CN of ``cn_path``
  (N·S0² mean ± sd over the replicates of each sample);
* bond angle θ = 2·asin(R2/2R1) from ``angle_paths``: from replicate pairs when both R are
  free (keeps their correlation), else from the best-fit values and their uncertainties;
* bond-angle distributions (core vs surface) of ``models``: structure files or XANES
  candidate names.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError
from xasmpi.parallel.tasks import StagePlan

STAGE_ID = 5
log = logging.getLogger("xasmpi")


def plan(job: Job, cache: dict) -> StagePlan:
    if job.analysis is None:
        raise ConfigError(f"{job.source}: stage 'analysis' needs an [analysis] section")
    return StagePlan(stage="analysis", tasks=[], fields={}, groups={})


def _replicate_column(fh, sample: str, column: str) -> np.ndarray | None:
    from xasmpi.store.layout import read_replicates

    reps = read_replicates(fh[f"/exafs/{sample}"]) if f"/exafs/{sample}" in fh else None
    return reps.column(column) if reps is not None and column in reps.names else None


def _best(fh, sample: str, column: str) -> tuple[float, float] | None:
    g = fh.get(f"/exafs/{sample}/fit")
    if g is None:
        return None
    names = list(g["names"].asstr()[:])
    if column in names:
        j = names.index(column)
        return float(g["params"][j]), float(g["stderr"][j])
    fixed = json.loads(g.attrs.get("fixed", "{}"))
    path, key = column.rsplit(".", 1)
    if key == "r" and path in fixed:
        return float(fixed[path]["r"]), 0.0
    return None


def _split_path(job: Job, name: str) -> tuple[str | None, str | None]:
    """(absorber, neighbour) elements of a path: FEFF ``scatterer`` or an ``A-B`` name."""
    from ase.data import atomic_numbers

    parts = name.replace("–", "-").split("-")
    a = parts[0] if len(parts) == 2 and parts[0] in atomic_numbers else None
    b = job.path(name).scatterer or (parts[1] if len(parts) == 2 and parts[1] in atomic_numbers else None)
    return a, b


def choices(job: Job, absorber: str | None) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    """``(elements, cn_path, angle_paths)`` of ``[analysis]``, the defaults derived from the job.

    ``absorber`` is the absorbing element of the spectra (``None``: taken from the path names).
    ``cn_path`` defaults to the job's only absorber–neighbour path (e.g. ``Zn-S``),
    ``elements`` to (absorber, neighbour of ``cn_path``) and ``angle_paths`` to ``cn_path``
    with the absorber–absorber path.  Explicit keys are kept (they were checked against the
    job's paths when it was loaded).

    Raises
    ------
    ConfigError
        The stoichiometry needs ``cn_path`` but the job has several candidate paths, or none.
    """
    a = job.analysis
    names = [p.name for p in job.paths]
    split = {n: _split_path(job, n) for n in names}
    if absorber is None:
        firsts = {x for x, _ in split.values() if x}
        absorber = firsts.pop() if len(firsts) == 1 else None
    cn_path = a.cn_path
    if cn_path is None and a.elements[:2] and len(a.elements) >= 2:
        want = [n for n, (x, y) in split.items() if y == a.elements[1] and x in (a.elements[0], None)]
        cn_path = want[0] if len(want) == 1 else None
    if cn_path is None:
        hetero = [n for n, (_, y) in split.items() if y and y != absorber]
        if len(hetero) == 1:
            cn_path = hetero[0]
        elif a.mass is not None:
            raise ConfigError(f"{job.source}: key 'analysis.cn_path': not set, and the job has "
                              f"{len(hetero) or 'no'} absorber-neighbour paths ({', '.join(hetero) or '-'}): "
                              "say which path's N gives the stoichiometry")
    elements = tuple(a.elements)
    if not elements and cn_path is not None:
        nb = split[cn_path][1]
        if absorber and nb:
            elements = (absorber, nb)
    if a.mass is not None and len(elements) < 2:
        raise ConfigError(f"{job.source}: key 'analysis.elements': not set and not derivable from the "
                          f"spectra ({absorber or 'absorber unknown'}) and path {cn_path}")
    angle = tuple(a.angle_paths)
    if not angle and cn_path is not None:
        homo = [n for n, (_, y) in split.items() if y and y == absorber]
        if len(homo) == 1:
            angle = (cn_path, homo[0])
    return elements, cn_path, angle


def _absorber(fh) -> str | None:
    """The absorbing element recorded for the spectra in the file (one for all, else None)."""
    els = {str(g.attrs.get("element", "")) for g in fh.get("/exafs", {}).values()} - {""}
    return els.pop() if len(els) == 1 else None


def _samples(fh) -> list[str]:
    return sorted(n for n, g in fh.get("/exafs", {}).items() if "replicates" in g)


def finalize(job: Job, plan: StagePlan, fh, results: dict) -> None:
    from xasmpi.analysis.angles import angle_from_replicates, angle_from_shells, bond_angle_distribution
    from xasmpi.analysis.distributions import bimodality_test, kde, modes
    from xasmpi.analysis.stoichiometry import enumerate_stoichiometries
    from xasmpi.store.layout import AngleModel, write_angle_model
    from xasmpi.store.results import angle_systematic

    a = job.analysis
    elements, cn_path, angle_paths = choices(job, _absorber(fh))
    if "/analysis" in fh:
        for key in ("stoichiometry", "angle", "angles"):
            if key in fh["/analysis"]:
                del fh["/analysis"][key]
    root = fh.require_group("/analysis")
    from xasmpi.store.layout import STRING as str_t

    samples = _samples(fh)
    # -- stoichiometry ---------------------------------------------------------------------
    if a.mass is not None:
        sg = root.create_group("stoichiometry")
        sg.attrs.update({"mass": a.mass, "mass_tol": a.mass_tol, "elements": list(elements),
                         "cn_path": cn_path})
        if not samples:
            sg.attrs["note"] = "no replicate fits in the file: candidates listed without CN ranking"
            samples_cn = {"(none)": (None, None)}
        else:
            from xasmpi.analysis.stoichiometry import cn_estimate
            from xasmpi.errors import InputError
            from xasmpi.store.results import parameter_uncertainties

            samples_cn = {}
            sg.attrs["s02"] = a.s02
            sg.attrs["cn_rule"] = "CN = replicate mean of N·S0² / S0², sd = total (statistical ⊕ systematic) / S0²"
            for s in samples:
                col = _replicate_column(fh, s, f"{cn_path}.n")
                u = parameter_uncertainties(fh[f"/exafs/{s}"]).get(f"{cn_path}.n")
                try:
                    cn, sd, _ = cn_estimate(col, total_sd=None if u is None else u.total,
                                            best=None if u is None else u.best, s02=a.s02)
                    samples_cn[s] = (cn, sd)
                except InputError:
                    samples_cn[s] = (None, None)
        for s, (cn, sd) in samples_cn.items():
            res = enumerate_stoichiometries(a.mass, tol=a.mass_tol, elements=tuple(elements), cn=cn, cn_sd=sd)
            g = sg.create_group(s)
            g.attrs["result"] = json.dumps(res.to_dict(), default=float)
            g.attrs["cn"] = np.nan if cn is None else cn
            g.attrs["cn_sd"] = np.nan if sd is None else sd
            c = res.candidates
            g.create_dataset("formula", data=np.array([x.formula for x in c], dtype=object), dtype=str_t)
            g.create_dataset("mass", data=np.array([x.mass for x in c])).attrs["units"] = "Da"
            g.create_dataset("cn", data=np.array([x.cn for x in c]))
            g.create_dataset("z", data=np.array([np.nan if x.z is None else x.z for x in c]))
            if c:
                log.info("stoichiometry %s (CN %s): best %s (%.1f Da, CN %.2f)", s,
                         "n/a" if cn is None else f"{cn:.2f} ± {sd:.2f}", c[0].formula, c[0].mass, c[0].cn)
    # -- bond angle from two shells -----------------------------------------------------------
    if len(angle_paths) == 2 and samples:
        ag = root.create_group("angle")
        p1, p2 = angle_paths
        ag.attrs.update({"r1_path": p1, "r2_path": p2})
        for s in samples:
            r1 = _replicate_column(fh, s, f"{p1}.r")
            r2 = _replicate_column(fh, s, f"{p2}.r")
            g = ag.create_group(s)
            fixed = False
            if r1 is not None and r2 is not None and r1.size > 1:
                res = angle_from_replicates(r1, r2)
                g.create_dataset("angles", data=res.angles).attrs["units"] = "deg"
                sys = angle_systematic(fh[f"/exafs/{s}"], f"{p1}.r", f"{p2}.r")
                g.attrs["sys"] = sys
                g.attrs["total_sd"] = float(np.hypot(res.sd, sys)) if np.isfinite(sys) else float(res.sd)
            else:
                b1, b2 = _best(fh, s, f"{p1}.r"), _best(fh, s, f"{p2}.r")
                if b1 is None or b2 is None:
                    g.attrs["note"] = f"no R for {p1} or {p2} in the fit"
                    continue
                res = angle_from_shells(b1[0], b2[0], r1_sd=b1[1], r2_sd=b2[1])
                if b1[1] == 0.0 and b2[1] == 0.0:
                    fixed = True
                    g.attrs["note"] = "both R were fixed in the fit: the angle follows from fixed input distances"
            d = {k: v for k, v in res.to_dict().items() if k != "angles"}
            g.attrs["result"] = json.dumps(d, default=float)
            g.attrs["angle"] = float(d["angle_deg"])
            g.attrs["sd"] = np.nan if fixed else float(d["sd_deg"])
            g.attrs["method"] = "from fixed input distances" if fixed else str(d["method"])
            if fixed:
                log.info("bond angle %s: %.2f deg from fixed input distances (no uncertainty: not measured)", s,
                         g.attrs["angle"])
            else:
                log.info("bond angle %s: %.2f ± %.2f deg (%s)%s", s, g.attrs["angle"], g.attrs["sd"],
                         g.attrs["method"], f"; systematic {g.attrs['sys']:.2f}, total {g.attrs['total_sd']:.2f} deg"
                         if "sys" in g.attrs and np.isfinite(g.attrs["sys"]) else "")
    # -- bond-angle distributions of models --------------------------------------------------------
    if a.models:
        mg = root.create_group("angles")
        for m in a.models:
            atoms = _model_atoms(job, fh, m)
            dist = bond_angle_distribution(atoms)
            core, surf = dist.core_angles, dist.surface_angles
            attrs = {}
            for label, x in (("core", core), ("surface", surf)):
                if x.size > 2 and np.ptp(x) > 1e-6:
                    est = kde(x)
                    attrs[f"{label}_modes"] = np.asarray(modes(est), float)
                    attrs[f"{label}_bandwidth"] = est.bandwidth
                    attrs[f"{label}_bw_rule"] = est.bw_rule
                attrs[f"{label}_mean"] = float(x.mean()) if x.size else np.nan
            if core.size > 2 and surf.size > 2:
                bt = bimodality_test(core, surf)
                attrs["bimodality"] = json.dumps(bt.to_dict(), default=float)
                attrs["bimodal"] = bool(bt.bimodal)
            write_angle_model(mg, AngleModel(Path(m).stem if Path(m).suffix else m, m, atoms.get_chemical_formula(),
                                             core, surf, attrs))
            log.info("angles %s: %d core (mean %.1f), %d surface (mean %.1f)", m, core.size,
                     core.mean() if core.size else np.nan, surf.size, surf.mean() if surf.size else np.nan)


def _model_atoms(job: Job, fh, model: str):
    """Atoms of a structure file, or of a XANES candidate stored in the results file."""
    from xasmpi.store.layout import read_structure
    from xasmpi.xanes.clusters import read_model

    p = Path(model)
    if not p.is_absolute():
        p = Path(job.source).resolve().parent / p
    if p.is_file():
        return read_model(p)
    atoms = read_structure(fh.get(f"/xanes/{model}"))
    if atoms is None:
        raise ConfigError(f"{job.source}: analysis.models: '{model}' is neither a structure file nor a "
                          "XANES candidate in the results file (run the xanes stage first)")
    return atoms
