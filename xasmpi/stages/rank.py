"""``rank`` stage: which candidate structure is it?  EXAFS + XANES evidence, posterior probabilities.

Tasks: one FEFF run per (candidate × unique Cd absorber) on the dynamic queue, longest first
(:func:`xasmpi.exafs.structure_chi.absorber_paths`, working directory
``<output>.work/rank/<candidate>/abs<index>``); each task returns its single-scattering paths in
fixed-shape rows (at most ``[rank] max_paths``).  Finalize (rank 0): for every data set (the fit's
samples and the XANES spectra measured), every candidate's structure χ(k) is fitted with S0²,
σ² per shell group and ΔE0 free in the fit space of the model-free fit; its EXAFS evidence, its
XANES evidence from the candidate comparison (``/xanes/comparison/<spectrum>/aligned/<c>``, nothing
fitted under ``compare = "physical"``), its mass against ``[analysis] mass`` and the consistency of
its N, R and angle with the model-free replicates are combined (:mod:`xasmpi.analysis.ranking`,
formulas in ``docs/ranking.md``) and written under ``/ranking`` (layout in the README).
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np

from xasmpi.config import Job
from xasmpi.errors import ConfigError, XasmpiError
from xasmpi.parallel.tasks import OK, Field, StagePlan, Task, TaskResult, failed
from xasmpi.store.h5 import write_dataset as _ds

STAGE_ID = 9
log = logging.getLogger("xasmpi")


def candidates(job: Job) -> dict:
    """Candidate name -> (Atoms, absorber element, report dict): built, relaxed (when ``[relax]``
    relaxed it) or read from a file, as the xanes stage sees them."""
    from xasmpi.stages.relax import relaxed_structures
    from xasmpi.stages.xanes import candidate_atoms

    if job.xanes is None or not job.xanes.candidates:
        raise ConfigError(f"{job.source}: stage 'rank' needs [xanes] with [[xanes.candidates]] (the candidates)")
    want = set(job.rank.candidates) if job.rank.candidates else None
    relaxed = relaxed_structures(job)
    out = {}
    for cand in job.xanes.candidates:
        if want is not None and cand.name not in want:
            continue
        atoms, rep = candidate_atoms(cand)
        if cand.name in relaxed:
            if relaxed[cand.name] is None:
                log.warning("rank: candidate %s: its relaxation failed or has not run; left out", cand.name)
                continue
            atoms, rep = relaxed[cand.name], {**rep, "relaxed": True}
        out[cand.name] = (atoms, cand.absorber, rep)
    if len(out) < 2:
        raise ConfigError(f"{job.source}: [rank] needs at least two candidates (have {', '.join(out) or 'none'})")
    return out


def plan(job: Job, cache: dict) -> StagePlan:
    from xasmpi.exafs.paths import kgrid
    from xasmpi.xanes.clusters import estimate_cost, unique_absorbers

    r = job.rank
    cands = candidates(job)
    nk = kgrid().size
    tasks, groups, extra, structures = [], {}, {"candidates": {}}, {}
    for name, (atoms, element, rep) in cands.items():
        sites = unique_absorbers(atoms, element=element, radius=r.rmax_path + 0.5)
        group = f"/ranking/feff/{name}"
        groups[group] = len(sites)
        structures[name] = atoms
        for row, (idx, _w) in enumerate(sites):
            tasks.append(Task(index=len(tasks), group=group, row=row, cost=estimate_cost(atoms, idx, r.feff_radius),
                              payload={"candidate": name, "absorber": int(idx)}))
        extra["candidates"][name] = {"sites": sites, "report": rep, "element": element,
                                     "formula": rep.get("formula", atoms.get_chemical_formula())}
        log.info("rank candidate %s: %s, %d unique %s absorber(s)", name, extra["candidates"][name]["formula"],
                 len(sites), element)
    extra["datasets"] = _datasets(job, cache)
    mp = r.max_paths
    fields = {"amp": Field((mp, nk), "f8", {"units": "Å"}), "phase": Field((mp, nk), "f8", {"units": "rad"}),
              "lam": Field((mp, nk), "f8", {"units": "Å"}), "preal": Field((mp, nk), "f8", {"units": "Å^-1"}),
              "reff": Field((mp,), "f8", {"units": "Å"}), "degen": Field((mp,), "f8", {"units": "1"}),
              "z": Field((mp,), "i8", {"units": "1", "what": "atomic number of the scatterer (0: unused row)"})}
    ctx = {"structures": structures, "radius": r.feff_radius, "rmax_path": r.rmax_path, "version": r.feff_version,
           "max_paths": mp, "work": str(Path(str(job.job.output) + ".work") / "rank")}
    return StagePlan(stage="rank", tasks=tasks, fields=fields, groups=groups, context=ctx,
                     schedule="dynamic", batch=1, owned=("/ranking",), extra=extra)


def _datasets(job: Job, cache: dict) -> dict:
    """Data set name -> {"chi": χ(k) or None, "space": FitSpace or None} (EXAFS of the fit's samples)."""
    from xasmpi.stages import fit as fit_stage
    from xasmpi.stages import reduce as reduce_stage

    out = {}
    samples = list(job.rank.samples) if job.rank.samples else (fit_stage.samples(job) if job.fit else [])
    if samples:
        if job.fit is None:
            raise ConfigError(f"{job.source}: [rank] samples need a [fit] section (its fit space is used)")
        red = reduce_stage.reduced(job, cache)
        model = fit_stage.model_for(job, reduce_stage.paths(job, cache))
        for s in samples:
            out[s] = {"chi": fit_stage.fit_data(model, red[s]), "space": model.space, "nk": model.nk,
                      "model": model}
    for m in (job.xanes.measured if job.xanes else ()):
        out.setdefault(m, {"chi": None, "space": None, "nk": None})
    return out


def run_batch(tasks: list[Task], ctx: dict) -> list[TaskResult]:
    from ase.data import atomic_numbers

    from xasmpi.exafs.structure_chi import absorber_paths

    out = []
    mp = ctx["max_paths"]
    for t in tasks:
        t0 = time.monotonic()
        name, idx = t.payload["candidate"], t.payload["absorber"]
        wd = Path(ctx["work"]) / name / f"abs{idx}"
        try:
            if wd.exists():
                shutil.rmtree(wd)
            paths = absorber_paths(ctx["structures"][name], index=idx, radius=ctx["radius"],
                                   rmax_path=ctx["rmax_path"], workdir=wd, version=ctx["version"])
            if len(paths) > mp:
                raise XasmpiError(f"{len(paths)} FEFF paths > rank.max_paths = {mp}: raise it or lower rank.rmax_path")
            nk = paths[0].k.size
            v = {"amp": np.zeros((mp, nk)), "phase": np.zeros((mp, nk)), "lam": np.zeros((mp, nk)),
                 "preal": np.zeros((mp, nk)), "reff": np.full(mp, np.nan), "degen": np.zeros(mp),
                 "z": np.zeros(mp, dtype=np.int64)}
            for i, p in enumerate(paths):
                v["amp"][i], v["phase"][i], v["lam"][i], v["preal"][i] = p.amp, p.phase, p.lam, p.preal
                v["reff"][i], v["degen"][i] = p.r_ref, p.n_ref
                v["z"][i] = atomic_numbers[p.name.split("-", 1)[1]]
            out.append(TaskResult(t.index, OK, v, "", time.monotonic() - t0))
        except Exception as exc:  # recorded as failed; the candidate is then left out of the ranking
            out.append(failed(t.index, f"{name} absorber {idx}: {exc}", time.monotonic() - t0))
    return out


def _paths_of(g, element: str) -> list:
    """FEFF Paths of every successful absorber row of ``/ranking/feff/<c>``: [(row, [Path, ...])]."""
    from ase.data import chemical_symbols

    from xasmpi.exafs.paths import Path as XPath
    from xasmpi.exafs.paths import kgrid

    k = kgrid()
    out = []
    status = g["status"][()]
    amp, ph, lam, pre = (g[n][()] for n in ("amp", "phase", "lam", "preal"))
    reff, degen, z = g["reff"][()], g["degen"][()], g["z"][()]
    for row in range(status.size):
        if status[row] != OK:
            continue
        ps = [XPath(name=f"{element}-{chemical_symbols[int(z[row, i])]}", k=k, amp=amp[row, i], phase=ph[row, i],
                    r_ref=float(reff[row, i]), n_ref=float(degen[row, i]), sigma2_ref=0.0, source="feff",
                    lam=lam[row, i], preal=pre[row, i])
              for i in range(z.shape[1]) if z[row, i] > 0]
        out.append((row, ps))
    return out


def _xanes_input(f, spectrum: str, cand: str, fwhm: float):
    """EvidenceInput of a candidate's aligned XANES (nothing fitted), or None when absent."""
    from xasmpi.analysis.ranking import EvidenceInput, spectrum_noise

    a = f.get(f"/xanes/comparison/{spectrum}/aligned/{cand}")
    if a is None:
        return None
    e, y, m = a["energy"][()], a["data"][()], a["model"][()]
    sig = spectrum_noise(y)
    n_eff = min(float(e.size), max(1.0, (e[-1] - e[0]) / fwhm))
    return EvidenceInput(residual=y - m, jacobian=np.zeros((y.size, 0)), var=np.full(y.size, sig ** 2),
                         n_eff=n_eff, bounds=np.zeros((0, 2)))


def _empirical_model(job: Job, mf, smodel):
    """The empirical route: the model-free fit's paths (bulk references) with N and R fixed at the
    candidate's shells (its paths to the path's scatterer within ``rank.shell_halfwidth`` of the path's
    distance), σ² and ΔE0 free as in the model-free fit; no S0² (the references carry theirs)."""
    from xasmpi.exafs.model import Param, PathModel

    hw = job.rank.shell_halfwidth
    scat_of = np.array([smodel.groups[i].split("-", 1)[1] for i in smodel.group_of])
    n, r = [], []
    for j, p in enumerate(mf.paths):
        spec = next((q for q in job.paths if q.name == p.name), None)
        scat = (spec.scatterer if spec is not None and spec.scatterer else p.name.split("-", 1)[-1])
        r_path = mf.r[j].value
        m = (scat_of == scat) & (np.abs(smodel.r0 - r_path) <= hw)
        nn = float(smodel.weight[m].sum())
        n.append(Param(nn, False))
        r.append(Param(float(np.sum(smodel.weight[m] * smodel.r0[m]) / nn) if nn > 0 else r_path, False))
    # a path the candidate has no shell for contributes nothing: its σ² (and a ΔE0 of only such paths)
    # is fixed, or it would make the Hessian singular
    s2 = [sp if nn.value > 0 else Param(sp.value, False) for sp, nn in zip(mf.sigma2, n)]
    de0 = list(mf.de0)
    for i in range(len(de0)):
        used = [n[j].value > 0 for j in range(len(mf.paths)) if int(mf.de0_of_path[j]) == i]
        if de0[i].vary and not any(used):
            de0[i] = Param(0.0, False)
    return PathModel.build(mf.paths, space=mf.space, nk=mf.nk, n=n, sigma2=s2, r=r,
                           de0=de0 if mf.de0_mode != "none" else None, de0_mode=mf.de0_mode,
                           de0_groups=mf.de0_groups if mf.de0_mode == "group" else None)


def _consistency(f, job: Job, sample: str, model, fit) -> list:
    """Rows (quantity, candidate value, mean, total sd, z, p) of the candidate's N, R and angle against
    the model-free fit of ``sample``."""
    from xasmpi.analysis.angles import angle_from_shells
    from xasmpi.analysis.ranking import consistency
    from xasmpi.store.layout import read_replicates
    from xasmpi.store.results import angle_systematic, parameter_uncertainties

    g = f.get(f"/exafs/{sample}")
    if g is None or "fit" not in g:
        return []
    unc = parameter_uncertainties(g)
    rep = read_replicates(g)
    reps = {n: rep.column(n) for n in rep.names} if rep is not None else {}
    best = dict(zip([n.decode() if isinstance(n, bytes) else str(n) for n in g["fit/names"][()]], g["fit/params"][()]))
    hw = job.rank.shell_halfwidth
    rows, shell_r = [], {}
    for path in (job.fit.paths if job.fit and job.fit.paths else [p.name for p in job.paths]):
        spec = job.path(path)
        scat = spec.scatterer or path.split("-", 1)[-1]
        r_mf = best.get(f"{path}.r", spec.r)
        if r_mf is None:
            continue
        m = (np.array([gname.split("-", 1)[1] == scat for gname in np.array(model.groups)[model.group_of]])
             & (np.abs(model.r0 - r_mf) <= hw))
        n_c = float(model.weight[m].sum())
        r_c = float(np.sum(model.weight[m] * model.r0[m]) / n_c) if n_c > 0 else float("nan")
        shell_r[path] = r_c
        for col, val in ((f"{path}.n", n_c), (f"{path}.r", r_c)):
            u = unc.get(col)
            if u is None or col not in reps or not np.isfinite(val):
                continue
            z, p = consistency(val, reps[col], systematic=u.sys if np.isfinite(u.sys) else 0.0,
                               total_sd=u.total if np.isfinite(u.total) and u.total > 0 else None)
            rows.append((col, val, float(np.nanmean(reps[col])), float(u.total), z, p))
    ap = list(job.analysis.angle_paths) if job.analysis is not None and job.analysis.angle_paths else []
    if len(ap) == 2 and all(f"{p}.r" in reps for p in ap) and all(np.isfinite(shell_r.get(p, np.nan)) for p in ap):
        def ang(r1, r2):
            try:
                return angle_from_shells(float(r1), float(r2)).angle
            except Exception:  # noqa: BLE001 - no triangle (2 R1 < R2): no angle
                return float("nan")
        a_rep = np.array([ang(a, b) for a, b in zip(reps[f"{ap[0]}.r"], reps[f"{ap[1]}.r"])])
        a_c = ang(shell_r[ap[0]], shell_r[ap[1]])
        sysa = angle_systematic(g, f"{ap[0]}.r", f"{ap[1]}.r")
        if np.isfinite(a_c):
            z, p = consistency(a_c, a_rep, systematic=sysa if np.isfinite(sysa) else 0.0)
            rows.append((f"{ap[0]}-{ap[1]}.angle", a_c, float(np.nanmean(a_rep)),
                         float(np.hypot(np.nanstd(a_rep, ddof=1), sysa if np.isfinite(sysa) else 0.0)), z, p))
    return rows


def finalize(job: Job, plan: StagePlan, f, results: dict) -> None:
    from xasmpi.analysis.ranking import mass_log_likelihood, rank_dataset
    from xasmpi.analysis.stoichiometry import atomic_masses
    from xasmpi.exafs.fit import estimate_eps_k
    from xasmpi.exafs.structure_chi import StructureModel, evidence_input, fit_structure
    from xasmpi.xanes.compare import core_hole_fwhm

    r = job.rank
    from xasmpi.store.layout import STRING as str_t

    root = f.require_group("/ranking")
    for key in list(root.keys()):
        if key != "feff":
            del root[key]
    absorbers = {}
    for name, info in plan.extra["candidates"].items():
        g = root[f"feff/{name}"]
        for key in ("index", "weight"):
            if key in g:
                del g[key]
        g.create_dataset("index", data=np.array([s[0] for s in info["sites"]], dtype="i8"))
        g.create_dataset("weight", data=np.array([s[1] for s in info["sites"]], dtype="f8"))
        g.attrs["formula"] = str(info["formula"])
        rows = _paths_of(g, info["element"])
        if len(rows) < len(info["sites"]):
            log.warning("rank: candidate %s has failed FEFF absorbers (see /tasks/rank); left out until "
                        "`xasmpi run --retry-failed` completes it", name)
            continue
        absorbers[name] = [(info["sites"][row][1], ps) for row, ps in rows]
    if len(absorbers) < 2:
        log.warning("rank: fewer than two candidates with all FEFF absorbers: no ranking")
        return
    masses = {}
    for name in absorbers:
        counts = plan.extra["candidates"][name]["report"].get("counts")
        if counts:
            am = atomic_masses(list(counts))
            masses[name] = float(sum(am[el] * n for el, n in counts.items()))
    mass = job.analysis.mass if job.analysis is not None else None
    if mass is not None and masses and min(abs(m - mass) for m in masses.values()) > 5 * job.analysis.mass_tol:
        log.warning("rank: no candidate formula within 5 x mass_tol (%g Da) of the measured mass %g Da (closest %s); "
                    "the mass term is left out (it would rank by the least wrong formula)", job.analysis.mass_tol,
                    mass, ", ".join(f"{c} {m:.0f} Da" for c, m in sorted(masses.items(), key=lambda t: abs(t[1] - mass))[:2]))
        mass = None
    winners = {}
    for ds, d in plan.extra["datasets"].items():
        inputs = {c: {} for c in absorbers}
        fits, models = {}, {}
        if d["chi"] is not None:
            eps = None
            for c, ab in absorbers.items():
                model = StructureModel.build(ab, space=d["space"], nk=d["nk"], s02=tuple(r.s02), sigma2=tuple(r.sigma2),
                                             de0=tuple(r.de0), rmax=r.rmax_path)
                fit = fit_structure(model, d["chi"])
                eps = estimate_eps_k(model, d["chi"]) if eps is None else eps
                inputs[c]["exafs"] = evidence_input(model, fit, eps_k=eps)
                fits[c], models[c] = fit, model
        if job.xanes is not None and ds in job.xanes.measured and r.xanes:
            gauss = job.xanes.resolution * float(f[f"/xanes/measured/{ds}"].attrs["edge"]) \
                if f"/xanes/measured/{ds}" in f else 0.0
            el = next(iter(plan.extra["candidates"].values()))["element"]
            fwhm = math.hypot(core_hole_fwhm(el, job.xanes.edge), gauss)
            xin = {c: _xanes_input(f, ds, c, fwhm) for c in absorbers}
            if all(v is not None for v in xin.values()):
                for c, v in xin.items():
                    inputs[c]["xanes"] = v
            else:
                log.warning("rank %s: XANES comparison missing for %s: XANES left out of this data set", ds,
                            ", ".join(c for c, v in xin.items() if v is None))
        if not inputs[next(iter(inputs))]:
            continue
        extra = {c: {"mass": mass_log_likelihood(masses[c], mass, job.analysis.mass_tol)}
                 for c in absorbers} if mass is not None and len(masses) == len(absorbers) else None
        res = rank_dataset(ds, inputs, extra=extra)
        emp = {}
        if d["chi"] is not None and d.get("model") is not None:
            from xasmpi.analysis.ranking import laplace_evidence, noise_scale2

            try:
                ein = {}
                for c in absorbers:
                    pm = _empirical_model(job, d["model"], models[c])
                    x0 = np.array([s_.value for s_ in pm.sigma2 if s_.vary]
                                  + [0.0] * (len(pm.names) - sum(s_.vary for s_ in pm.sigma2)))
                    ein[c] = evidence_input(pm, fit_structure(pm, d["chi"], x0=x0), eps_k=eps)
                sc = noise_scale2(list(ein.values()))
                emp = {c: laplace_evidence(v, noise_scale2=sc) for c, v in ein.items()}
            except XasmpiError as exc:
                log.warning("rank %s: empirical route not evaluated (%s)", ds, exc)
                emp = {}
        _write(root, ds, res, inputs, fits, models, d, masses, plan.extra["candidates"], str_t,
               {c: _consistency(f, job, ds, models[c], fits[c]) for c in models})
        if emp:
            eg = root[ds].create_group("exafs_empirical")
            eg.attrs["what"] = ("empirical route (bulk-reference paths, N and R of the candidate, sigma^2 and dE0 "
                                "free): shown beside the FEFF route, not multiplied into the posterior (same data)")
            for key in ("log_evidence", "log_likelihood", "log_prior", "log_occam", "chi2", "noise_scale2",
                        "n_eff", "n_par"):
                _ds(eg, key, np.array([getattr(emp[c], key) for c in res.candidates], dtype=float), "1")
            log.info("rank %s: empirical route ln Z: %s", ds,
                     ", ".join(f"{c} {emp[c].log_evidence:.1f}" for c in sorted(emp, key=lambda c: -emp[c].log_evidence)))
        winners[ds] = {"winner": res.winner, "posterior": res.posterior[res.winner], "margin": res.margin,
                       "runner_up": res.candidates[1] if len(res.candidates) > 1 else None}
        terms = ", ".join(f"{c}: ln Z {res.log_evidence[c]:.1f} ("
                          + " + ".join(f"{t} {e.log_evidence:.1f}" for t, e in res.terms[c].items())
                          + "".join(f" + {t} {v:.1f}" for t, v in res.extra[c].items())
                          + f") P = {res.posterior[c]:.3g}" for c in res.candidates)
        log.info("rank %s: winner %s, posterior %.3g, margin ln B = %.1f over %s; %s", ds, res.winner,
                 res.posterior[res.winner], res.margin, winners[ds]["runner_up"], terms)
    root.attrs["winners"] = json.dumps(winners)
    root.attrs["method"] = ("Laplace evidence per candidate and data set (uniform priors on the fit bounds, "
                            "shared noise scale s2 = max(1, best reduced chi2)); EXAFS: FEFF paths per unique "
                            "absorber, S0^2, sigma^2 per shell group and dE0 fitted in the model-free fit space; "
                            "XANES: the physical comparison (nothing fitted); posterior over candidates with a "
                            "uniform prior (docs/ranking.md)")
    root.attrs["settings"] = json.dumps(json.loads(json.dumps(job.resolved()["rank"], default=str)))


def _write(root, ds: str, res, inputs: dict, fits: dict, models: dict, d: dict, masses: dict, info: dict, str_t, cons: dict) -> None:
    g = root.create_group(ds)
    order = list(res.candidates)
    g.create_dataset("candidate", data=np.array(order, dtype=object), dtype=str_t)
    g.create_dataset("formula", data=np.array([str(info[c]["formula"]) for c in order], dtype=object), dtype=str_t)
    _ds(g, "log_evidence", np.array([res.log_evidence[c] for c in order]), "1")
    _ds(g, "posterior", np.array([res.posterior[c] for c in order]), "1")
    if masses:
        _ds(g, "mass", np.array([masses.get(c, np.nan) for c in order]), "Da")
    for t in res.terms[order[0]]:
        tg = g.create_group(t)
        for key in ("log_evidence", "log_likelihood", "log_prior", "log_occam", "chi2", "noise_scale2", "n_eff",
                    "n_par"):
            _ds(tg, key, np.array([getattr(res.terms[c][t], key) for c in order], dtype=float), "1")
    for t in res.extra[order[0]]:
        _ds(g, f"{t}_log_likelihood", np.array([res.extra[c][t] for c in order]), "1")
    g.attrs.update({"winner": res.winner, "margin": res.margin,
                    "runner_up": order[1] if len(order) > 1 else ""})
    if fits:
        _ds(g["exafs"], "rfactor", np.array([fits[c].rfactor for c in order]), "1")
        space = d["space"]
        iq = np.arange(int(max(0, 0.01 + space.kmin / 0.05)), int(0.01 + space.kmax / 0.05))
        fg = g.create_group("fits")
        for c in order:
            fit, model = fits[c], models[c]
            cg = fg.create_group(c)
            cg.create_dataset("names", data=np.array(fit.names, dtype=object), dtype=str_t)
            _ds(cg, "params", fit.params)
            _ds(cg, "bounds", model.bounds)
            inp, s2 = inputs[c]["exafs"], res.terms[c]["exafs"].noise_scale2
            h = inp.n_eff / inp.residual.size * (inp.jacobian.T / (s2 * inp.var)) @ inp.jacobian
            with np.errstate(invalid="ignore"):
                _ds(cg, "stderr", np.sqrt(np.diag(np.linalg.pinv(h))),
                    what="sqrt(diag(H^-1)) of the Laplace Hessian (units of each parameter)")
            x = iq * 0.05 if space.kind != "r" else np.arange(fit.residual.size)
            _ds(cg, "x", x[: fit.residual.size], "Å^-1" if space.kind != "r" else "1",
                what=f"abscissa of the fit space ({space.kind})")
            data_fs = model.transform(model.check_data(d["chi"]))
            _ds(cg, "data", data_fs, f"Å^-{space.kweight}", what="data in the fit space")
            _ds(cg, "model", data_fs - fit.residual, f"Å^-{space.kweight}", what="candidate model in the fit space")
            _ds(cg, "chi_model", fit.chi_model, "1")
            cg.attrs["at_bound"] = json.dumps(list(fit.at_bound))
            cg.attrs["shells"] = json.dumps([s.__dict__ for s in model.shells()])
            rows = cons.get(c, [])
            if rows:
                cg.create_dataset("consistency_quantity", data=np.array([x_[0] for x_ in rows], dtype=object),
                                  dtype=str_t)
                _ds(cg, "consistency", np.array([x_[1:] for x_ in rows], dtype=float), "mixed",
                    what="columns: candidate value, model-free mean, total sd, z, p (two-sided, replicates ⊕ sys)")

