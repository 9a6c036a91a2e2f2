"""``xasmpi compare RESULTS.h5 A B [C ...] [--joint N,...] [--out DIR]``: samples compared.

For each consecutive pair (isomers, a temperature series), per fitted parameter: the shift of the
replicate distributions with its significance (replicates ⊕ systematic term), the overlap
coefficient, and the difference of the two wavelet maps (:mod:`xasmpi.analysis.series`).  With
``--joint`` the samples are also fitted together, the listed parameters shared (e.g. N across
temperatures) and the others per sample, with per-sample R-factors in one table
(:func:`xasmpi.analysis.series.joint_fit`; each sample's model is rebuilt from the results file:
its paths, fit space, bounds and ΔE0 groups).  Prints Markdown tables; with ``--out`` writes
``compare_<A>_<B>.md``, ``.csv`` and a figure per pair, and ``joint.md``/``joint.csv``.  The job
keys ``[rank] compare`` (pairs) and ``[rank] joint`` (shared columns; samples ``[rank]
joint_samples``, default the fit's) put the same comparisons and joint fit into ``xasmpi report``.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

COLUMNS = ("parameter", "mean_a", "sd_a", "sys_a", "mean_b", "sd_b", "sys_b", "sys_shift", "shift", "sigma", "z",
           "p", "significant", "ovl")


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare two fitted samples: shifts, significance, overlap, wavelet difference",
                       description="Two samples of one results file (e.g. MSC-311 vs MSC-322): per parameter the "
                                   "shift B - A with z and p from the replicates and the systematic term, the "
                                   "overlap coefficient, and |W_B| - |W_A| of their wavelet maps.")
    p.add_argument("results", help="results HDF5 file")
    p.add_argument("samples", nargs="+", metavar="SAMPLE", help="two or more samples (consecutive pairs compared)")
    p.add_argument("--joint", metavar="COLUMNS", help="also fit all samples jointly, these columns shared "
                   "(comma-separated, e.g. Cd-S.n,Cd-Cd.n; the others per sample)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level, two-sided (default 0.05)")
    p.add_argument("--shared-systematics", action="store_true",
                   help="the systematic terms of A and B are fully correlated: only |sys_A - sys_B| counts")
    p.add_argument("--independent-systematics", action="store_true",
                   help="sys_A and sys_B added in quadrature even when both samples have refits of the same "
                        "variations (default then: the systematic term of the shift itself, paired)")
    p.add_argument("--out", metavar="DIR", help="write the table (Markdown + CSV) and the figure here")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default png,pdf)")
    p.set_defaults(func=run)


def read_pair(path, a: str, b: str) -> dict:
    """Replicates, systematic terms and wavelet maps of samples ``a`` and ``b``; ``"sys_shift"``: the
    paired systematic term of every shift (:func:`xasmpi.analysis.series.paired_systematic`) when
    both samples were refitted under the same variations, else ``{}``."""
    import numpy as np

    from xasmpi.analysis.series import paired_systematic
    from xasmpi.store.layout import read_fit, read_systematics

    from xasmpi.errors import ResultsError
    from xasmpi.store.results import open_results, parameter_uncertainties, read_replicate_columns

    out = {}
    with open_results(path) as f:
        for s in (a, b):
            g = f.get(f"exafs/{s}")
            if g is None:
                raise ResultsError(f"{path}: no sample '{s}' under /exafs")
            unc = parameter_uncertainties(g)
            w = g.get("wavelet")
            out[s] = {"sys": {n: u.sys for n, u in unc.items()}, "cols": list(unc),
                      "wavelet": None if w is None else (w["k"][()], w["r"][()], w["modulus"][()])}
        out["sys_shift"] = {}
        sg = [read_systematics(f[f"exafs/{s}"]) for s in (a, b)]
        fits = [read_fit(f[f"exafs/{s}"]) for s in (a, b)]
        if all(x is not None and x.settings for x in sg) and all(x is not None for x in fits) \
                and sg[0].names == sg[1].names == tuple(fits[0].names) == tuple(fits[1].names) \
                and sg[0].settings == sg[1].settings:
            refit = [np.where((x.status == 1)[:, None], x.params, np.nan) for x in sg]
            sysd = paired_systematic(fits[0].params, refit[0], fits[1].params, refit[1], sg[0].settings)
            out["sys_shift"] = {n: float(v) for n, v in zip(sg[0].names, sysd) if np.isfinite(v)}
        simulated = bool(f.attrs.get("simulated", False))
    for s in (a, b):
        vals, _, _ = read_replicate_columns(str(path), s, out[s]["cols"])
        out[s]["reps"] = {n: np.asarray(v) for n, v in vals.items()}
    out["simulated"] = simulated
    return out


def table(shifts) -> list[dict]:
    return [{"parameter": s.name, **{k: getattr(s, k) for k in COLUMNS[1:]}} for s in shifts]


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def figure(data: dict, a: str, b: str, shifts, wdiff, out: Path, formats) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(shifts)
    ncol = min(4, n) + (1 if wdiff is not None else 0)
    nrow = math.ceil(n / 4)
    fig = plt.figure(figsize=(3.6 * ncol, 3.0 * nrow))
    for i, s in enumerate(shifts):
        ax = fig.add_subplot(nrow, ncol, (i // 4) * ncol + i % 4 + 1)
        vals = {nm: data[nm]["reps"][s.name][np.isfinite(data[nm]["reps"][s.name])] for nm in (a, b)}
        edges = np.histogram_bin_edges(np.concatenate(list(vals.values())), bins=60)
        for name, c in ((a, "C0"), (b, "C1")):
            ax.hist(vals[name], bins=edges, alpha=0.5, color=c, label=name)
        ax.set_title(f"{s.name}: Δ = {s.shift:.3g} ± {s.sigma:.2g}\nz = {s.z:.1f}, p = {s.p:.2g}, OVL = {s.ovl:.2f}"
                     + (" *" if s.significant else ""), fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    if wdiff is not None:
        ax = fig.add_subplot(1, ncol, ncol)
        lim = float(np.abs(wdiff.diff).max()) or 1.0
        im = ax.pcolormesh(wdiff.k, wdiff.r, wdiff.diff, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="auto")
        ax.plot([wdiff.peak_k], [wdiff.peak_r], "k+", ms=10)
        ax.set_xlabel("k (Å⁻¹)")
        ax.set_ylabel("R (Å, not phase-corrected)")
        ax.set_title(f"|W({b})| − |W({a})|", fontsize=9)
        fig.colorbar(im, ax=ax)
    if data.get("simulated"):
        fig.suptitle("SIMULATED DATA", color="r")
    from xasmpi.report.figures import FigureContext, save_figure

    return save_figure(fig, f"compare_{a}_{b}", FigureContext(Path(out), tuple(formats), dpi=120))


def model_from_file(f, sample: str):
    """The sample's fit model rebuilt from a results file, and its χ(k) on the model grid."""
    import json

    import numpy as np

    from xasmpi.errors import ResultsError
    from xasmpi.exafs.model import FitSpace, Param, PathModel
    from xasmpi.stages.fit import column_names
    from xasmpi.store.layout import read_path

    g = f.get(f"exafs/{sample}")
    if g is None or "fit" not in g:
        raise ResultsError(f"{f.filename}: no best fit of sample '{sample}'")
    fg = g["fit"]
    cols = [c.decode() if isinstance(c, bytes) else str(c) for c in fg["names"][()]]
    bounds = dict(zip(cols, fg["bounds"][()]))
    params = dict(zip(cols, fg["params"][()]))
    red = json.loads(g.attrs.get("reduction", "{}"))
    a = fg.attrs
    space = FitSpace(kind=str(a["space"]), kmin=float(a["kmin"]), kmax=float(a["kmax"]), kweight=int(a["kweight"]),
                     dk=float(red.get("dk", 1.0)), window=str(red.get("window", "hanning")), rmin=float(a["rmin"]),
                     rmax=float(a["rmax"]))
    fixed = json.loads(a.get("fixed", "{}"))
    paths, n, s2, r = [], [], [], []
    for name in [str(x) for x in a["paths"]]:
        pg = f[f"paths/{name}"]
        pa = pg.attrs
        paths.append(read_path(pg, name))
        for key, lst in (("n", n), ("sigma2", s2), ("r", r)):
            col = f"{name}.{key}"
            if col in bounds:
                lst.append(Param(float(params[col]), True, *map(float, bounds[col])))
            else:
                lst.append(Param(float(fixed.get(name, {}).get("r", pa["r_ref"])) if key == "r" else 0.0, False))
    mode = str(a.get("e0_mode", "none"))
    groups = json.loads(a.get("de0_groups", "{}"))
    labels = list(dict.fromkeys(groups[p.name] for p in paths)) if mode == "group" else []
    de0 = None
    if mode == "group":
        de0 = [Param(float(params[f"{lb}.de0"]), True, *map(float, bounds[f"{lb}.de0"])) for lb in labels]
    elif mode == "global":
        de0 = Param(float(params["global.de0"]), True, *map(float, bounds["global.de0"]))
    elif mode == "per_path":
        de0 = [Param(float(params[f"{p.name}.de0"]), True, *map(float, bounds[f"{p.name}.de0"])) for p in paths]
    model = PathModel.build(paths, space=space, n=n, sigma2=s2, r=r, de0=de0, de0_mode=mode,
                            de0_groups=[groups[p.name] for p in paths] if mode == "group" else None)
    if column_names(model) != cols:
        raise ResultsError(f"{f.filename}: sample '{sample}': the rebuilt model has columns {column_names(model)}, "
                           f"the fit {cols}")
    chi = g["chi"][()]
    chi = np.concatenate([chi, np.zeros(max(0, model.nk - chi.size))])[: model.nk]
    return model, chi


def joint(path, samples: list[str], shared_cols: list[str]):
    """:func:`~xasmpi.analysis.series.joint_fit` of the samples of a results file; shared columns
    (``Cd-S.n``) are turned into model names (``n_Cd-S``)."""
    from xasmpi.analysis.series import joint_fit
    from xasmpi.errors import InputError
    from xasmpi.stages.fit import column_names
    from xasmpi.store.results import open_results

    with open_results(path) as f:
        built = {s: model_from_file(f, s) for s in samples}
    m0 = built[samples[0]][0]
    cols = column_names(m0)
    bad = [c for c in shared_cols if c not in cols]
    if bad:
        raise InputError(f"--joint: {', '.join(bad)} not fitted columns ({', '.join(cols)})")
    shared = [m0.names[cols.index(c)] for c in shared_cols]
    starts = {s: None for s in samples}
    with open_results(path) as f:
        for s in samples:
            starts[s] = f[f"exafs/{s}/fit/params"][()]
    return joint_fit({s: m for s, (m, _) in built.items()}, {s: c for s, (_, c) in built.items()}, shared=shared,
                     starts=starts), dict(zip(m0.names, cols))


def run(args) -> int:
    from xasmpi.errors import InputError

    if len(args.samples) < 2:
        raise InputError("xasmpi compare: give at least two samples")
    for a, b in zip(args.samples, args.samples[1:]):
        _pair(args, a, b)
    if args.joint:
        _joint(args)
    return 0


def joint_table(jf, colname: dict) -> tuple[str, list[str], list[dict]]:
    """Markdown text, columns and rows (one per sample) of a :class:`~xasmpi.analysis.series.JointFit`;
    ``colname`` maps model names (``n_Cd-S``) to fitted columns (``Cd-S.n``)."""
    names = [n.partition("@")[0] for n in jf.names]
    order = list(dict.fromkeys(names))
    cols = ["dataset", "rfactor", "ssr"] + [c for n in order for c in (colname[n], f"{colname[n]}_err")]
    rows = []
    for r in jf.table():
        rows.append({"dataset": r["dataset"], "rfactor": r["rfactor"], "ssr": r["ssr"],
                     **{colname[n]: r[n] for n in order}, **{f"{colname[n]}_err": r[f"{n}_err"] for n in order}})
    shared = ", ".join(colname[n] for n in jf.shared)
    lines = [f"Joint fit of {', '.join(jf.datasets)} (shared: {shared}; the others per sample)", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n", cols, rows


def write_joint(text: str, cols: list[str], rows: list[dict], out: Path) -> list[Path]:
    """``joint.md`` and ``joint.csv`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "joint.md").write_text(text)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    (out / "joint.csv").write_text(buf.getvalue())
    return [out / "joint.md", out / "joint.csv"]


def job_joint(path, resolved: dict) -> tuple[list[str], list[str]] | None:
    """(samples, shared columns) of the job's ``[rank] joint`` (samples: ``[rank] joint_samples``, else
    the fit's samples, else every sample of the job with a best fit in the file, in job order), or None
    without the key."""
    from xasmpi.store.results import open_results

    rk = resolved.get("rank") or {}
    shared = list(rk.get("joint") or [])
    if not shared:
        return None
    samples = list(rk.get("joint_samples") or (resolved.get("fit") or {}).get("samples") or [])
    if not samples:
        with open_results(path) as f:
            samples = [s["name"] for s in resolved.get("spectra", ())
                       if s.get("role") == "sample" and f"exafs/{s['name']}/fit" in f]
    return samples, shared


def report_joint(path, resolved: dict, out: Path) -> tuple[list[str], list[Path]]:
    """The report's joint fit of the job's ``[rank] joint`` (Markdown lines, files written); nothing
    without the key."""
    from xasmpi.errors import InputError, ResultsError

    jj = job_joint(path, resolved)
    if jj is None:
        return [], []
    samples, shared = jj
    if len(samples) < 2:
        raise ResultsError(f"[rank] joint: needs at least two fitted samples (have {', '.join(samples) or 'none'})")
    try:
        jf, colname = joint(path, samples, shared)
    except InputError as exc:
        raise ResultsError(f"[rank] joint: {exc}") from None
    text, cols, rows = joint_table(jf, colname)
    files = write_joint(text, cols, rows, Path(out))
    return ["## Joint fit across samples", "",
            "All samples fitted together (`[rank] joint`; `xasmpi compare --joint`): the shared columns take one "
            "value for every sample, the others are fitted per sample; standard errors from the joint Jacobian "
            "scaled by √(χ²/ν). [joint.csv](joint.csv)", "", text], files


def _joint(args) -> None:
    jf, colname = joint(args.results, list(args.samples), [c.strip() for c in args.joint.split(",") if c.strip()])
    text, cols, rows = joint_table(jf, colname)
    print(text, end="")
    if args.out:
        files = write_joint(text, cols, rows, Path(args.out))
        print("written: " + ", ".join(str(p) for p in files))


def _pair(args, a: str, b: str) -> None:
    from xasmpi.analysis.series import compare_samples, wavelet_difference
    from xasmpi.errors import InputError

    args.a, args.b = a, b
    data = read_pair(args.results, args.a, args.b)
    shifts = compare_samples(data[args.a]["reps"], data[args.b]["reps"], sys_a=data[args.a]["sys"],
                             sys_b=data[args.b]["sys"], alpha=args.alpha,
                             shared_systematics=args.shared_systematics,
                             sys_shift=None if args.shared_systematics or args.independent_systematics
                             else data["sys_shift"])
    wa, wb = data[args.a]["wavelet"], data[args.b]["wavelet"]
    wdiff = None
    if wa is not None and wb is not None:
        try:
            wdiff = wavelet_difference(wa[0], wa[1], wa[2], wb[2])
        except InputError as exc:
            print(f"xasmpi compare: no wavelet difference ({exc})")
    rows = table(shifts)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    if wdiff is not None:
        lines += ["", f"Wavelet: largest |W({args.b})| − |W({args.a})| = {wdiff.diff.flat[abs(wdiff.diff).argmax()]:+.3g} "
                      f"at k = {wdiff.peak_k:.2f} Å⁻¹, R = {wdiff.peak_r:.2f} Å"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"compare_{args.a}_{args.b}"
        (out / f"{stem}.md").write_text(("**SIMULATED DATA**\n\n" if data["simulated"] else "") + text)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)
        (out / f"{stem}.csv").write_text(buf.getvalue())
        files = figure(data, args.a, args.b, shifts, wdiff, out, tuple(args.formats.split(",")))
        print("written: " + ", ".join(str(p) for p in [out / f"{stem}.md", out / f"{stem}.csv", *files]))
