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
from xasmpi.stages.base import OK, StagePlan

STAGE_ID = 5
log = logging.getLogger("xasmpi")


def prepare(job: Job, cache: dict) -> StagePlan:
    if job.analysis is None:
        raise ConfigError(f"{job.source}: stage 'analysis' needs an [analysis] section")
    return StagePlan(stage="analysis", tasks=[], fields={}, groups={})


def _replicate_column(fh, sample: str, column: str) -> np.ndarray | None:
    g = fh.get(f"/exafs/{sample}/replicates")
    if g is None:
        return None
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["names"]]
    if column not in names:
        return None
    ok = g["status"][:] == OK
    return g["params"][:, names.index(column)][ok]


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


def _samples(fh) -> list[str]:
    return sorted(n for n, g in fh.get("/exafs", {}).items() if "replicates" in g)


def finalize(job: Job, plan: StagePlan, fh, results: dict) -> None:
    import h5py

    from xasmpi.analysis.angles import angle_from_replicates, angle_from_shells, bond_angle_distribution
    from xasmpi.analysis.distributions import bimodality_test, kde, modes
    from xasmpi.analysis.stoichiometry import enumerate_stoichiometries

    a = job.analysis
    if "/analysis" in fh:
        for key in ("stoichiometry", "angle", "angles"):
            if key in fh["/analysis"]:
                del fh["/analysis"][key]
    root = fh.require_group("/analysis")
    str_t = h5py.string_dtype()
    samples = _samples(fh)
    # -- stoichiometry ---------------------------------------------------------------------
    if a.mass is not None:
        sg = root.create_group("stoichiometry")
        sg.attrs.update({"mass": a.mass, "mass_tol": a.mass_tol, "elements": list(a.elements),
                         "cn_path": a.cn_path})
        if not samples:
            sg.attrs["note"] = "no replicate fits in the file: candidates listed without CN ranking"
            samples_cn = {"(none)": (None, None)}
        else:
            samples_cn = {}
            for s in samples:
                col = _replicate_column(fh, s, f"{a.cn_path}.n")
                samples_cn[s] = (float(col.mean()), float(col.std(ddof=1))) if col is not None and col.size > 1 else (None, None)
        for s, (cn, sd) in samples_cn.items():
            res = enumerate_stoichiometries(a.mass, tol=a.mass_tol, elements=tuple(a.elements), cn=cn, cn_sd=sd)
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
    if len(a.angle_paths) == 2 and samples:
        ag = root.create_group("angle")
        p1, p2 = a.angle_paths
        ag.attrs.update({"r1_path": p1, "r2_path": p2})
        for s in samples:
            r1 = _replicate_column(fh, s, f"{p1}.r")
            r2 = _replicate_column(fh, s, f"{p2}.r")
            g = ag.create_group(s)
            if r1 is not None and r2 is not None and r1.size > 1:
                res = angle_from_replicates(r1, r2)
                g.create_dataset("angles", data=res.angles).attrs["units"] = "deg"
            else:
                b1, b2 = _best(fh, s, f"{p1}.r"), _best(fh, s, f"{p2}.r")
                if b1 is None or b2 is None:
                    g.attrs["note"] = f"no R for {p1} or {p2} in the fit"
                    continue
                res = angle_from_shells(b1[0], b2[0], r1_sd=b1[1], r2_sd=b2[1])
                if b1[1] == 0.0 and b2[1] == 0.0:
                    g.attrs["note"] = "both R were fixed in the fit: the angle follows from the fixed distances"
            d = {k: v for k, v in res.to_dict().items() if k != "angles"}
            g.attrs["result"] = json.dumps(d, default=float)
            g.attrs["angle"] = float(d["angle_deg"])
            g.attrs["sd"] = float(d["sd_deg"])
            g.attrs["method"] = str(d["method"])
            log.info("bond angle %s: %.2f ± %.2f deg (%s)", s, g.attrs["angle"], g.attrs["sd"], g.attrs["method"])
    # -- bond-angle distributions of models --------------------------------------------------------
    if a.models:
        mg = root.create_group("angles")
        for m in a.models:
            atoms = _model_atoms(job, fh, m)
            dist = bond_angle_distribution(atoms)
            g = mg.create_group(Path(m).stem if Path(m).suffix else m)
            core, surf = dist.core_angles, dist.surface_angles
            g.create_dataset("core", data=core).attrs["units"] = "deg"
            g.create_dataset("surface", data=surf).attrs["units"] = "deg"
            g.attrs["source"] = m
            g.attrs["formula"] = atoms.get_chemical_formula()
            for label, x in (("core", core), ("surface", surf)):
                if x.size > 2 and np.ptp(x) > 1e-6:
                    est = kde(x)
                    g.attrs[f"{label}_modes"] = np.asarray(modes(est), float)
                    g.attrs[f"{label}_bandwidth"] = est.bandwidth
                    g.attrs[f"{label}_bw_rule"] = est.bw_rule
                g.attrs[f"{label}_mean"] = float(x.mean()) if x.size else np.nan
            if core.size > 2 and surf.size > 2:
                bt = bimodality_test(core, surf)
                g.attrs["bimodality"] = json.dumps(bt.to_dict(), default=float)
                g.attrs["bimodal"] = bool(bt.bimodal)
            log.info("angles %s: %d core (mean %.1f), %d surface (mean %.1f)", m, core.size,
                     core.mean() if core.size else np.nan, surf.size, surf.mean() if surf.size else np.nan)


def _model_atoms(job: Job, fh, model: str):
    """Atoms of a structure file, or of a XANES candidate stored in the results file."""
    from ase import Atoms

    from xasmpi.xanes.clusters import read_model

    p = Path(model)
    if not p.is_absolute():
        p = Path(job.source).resolve().parent / p
    if p.is_file():
        return read_model(p)
    g = fh.get(f"/xanes/{model}/structure")
    if g is None:
        raise ConfigError(f"{job.source}: analysis.models: '{model}' is neither a structure file nor a "
                          "XANES candidate in the results file (run the xanes stage first)")
    return Atoms(symbols=list(g["symbols"].asstr()[:]), positions=g["positions"][:], cell=g["cell"][:],
                 pbc=bool(g.attrs["pbc"]))
