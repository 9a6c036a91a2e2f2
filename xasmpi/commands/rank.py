"""``xasmpi rank``: which candidate structure is it?  Ranking table (Markdown + CSV) and figure.

``xasmpi rank JOB.toml`` runs the ``rank`` stage of a job (after its reduce/fit/xanes stages have
run) and prints the table; ``xasmpi rank RESULTS.h5 [--out DIR]`` prints the table of a results
file and, with ``--out``, writes ``ranking.md``, ``ranking.csv`` and ``ranking.png``/``.pdf``.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

COLUMNS = ("dataset", "rank", "candidate", "formula", "posterior", "ln_Z", "exafs_ln_Z", "exafs_ln_L",
           "exafs_ln_prior", "exafs_ln_occam", "exafs_chi2", "exafs_s2", "exafs_rfactor", "xanes_ln_Z",
           "xanes_chi2", "xanes_s2", "mass_Da", "mass_ln_L", "exafs_empirical_ln_Z", "exafs_empirical_chi2",
           "worst_consistency")


def register(sub) -> None:
    p = sub.add_parser("rank", help="rank candidate structures against EXAFS + XANES (posterior probabilities)",
                       description="JOB.toml: run the rank stage (FEFF per unique absorber, fits, evidence) and "
                                   "print the table; RESULTS.h5: print the table (and write it with --out). "
                                   "Formulas: docs/ranking.md.")
    p.add_argument("target", help="job file (.toml) or results file (.h5)")
    p.add_argument("--out", metavar="DIR", help="write ranking.md, ranking.csv and the figure here")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job-file key (job files only)")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default png,pdf)")
    p.set_defaults(func=run)


def rows(ranking: dict) -> list[dict]:
    """One row per (data set, candidate), best first, with every term of the evidence."""
    out = []
    for ds, d in ranking.items():
        t = d["terms"]
        for i, c in enumerate(d["candidate"]):
            cons = d["fits"].get(c, {}).get("consistency", [])
            worst = max(cons, key=lambda r: abs(r[4]) if math.isfinite(r[4]) else -1) if cons else None
            row = {"dataset": ds, "rank": i + 1, "candidate": c, "formula": d["formula"][i],
                   "posterior": d["posterior"][i], "ln_Z": d["log_evidence"][i],
                   "mass_Da": d.get("mass", [math.nan] * (i + 1))[i],
                   "mass_ln_L": d.get("mass_log_likelihood", [math.nan] * (i + 1))[i],
                   "worst_consistency": f"{worst[0]} z={worst[4]:+.1f} p={worst[5]:.2g}" if worst else ""}
            for term in ("exafs", "xanes", "exafs_empirical"):
                tt = t.get(term, {})
                for key, col in (("log_evidence", "ln_Z"), ("log_likelihood", "ln_L"), ("log_prior", "ln_prior"),
                                 ("log_occam", "ln_occam"), ("chi2", "chi2"), ("noise_scale2", "s2"),
                                 ("rfactor", "rfactor")):
                    if f"{term}_{col}" in COLUMNS:
                        row[f"{term}_{col}"] = tt[key][i] if key in tt else math.nan
            out.append(row)
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.4g}"
    return str(v)


def markdown(ranking: dict) -> str:
    """The ranking table (Markdown), then one line per data set naming the winner and the margin."""
    rs = rows(ranking)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in COLUMNS) + " |" for r in rs]
    lines.append("")
    for ds, d in ranking.items():
        post = dict(zip(d["candidate"], d["posterior"]))
        lines.append(f"* {ds}: **{d['winner']}** (posterior {post[d['winner']]:.3g}), margin ln B = "
                     f"{d['margin']:.1f} over {d['runner_up'] or '-'}")
    return "\n".join(lines) + "\n"


def csv_text(ranking: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in rows(ranking):
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return buf.getvalue()


def figure(ranking: dict, out: Path, *, formats=("png", "pdf"), simulated: bool = False) -> list[Path]:
    """Candidates × criteria: per data set the posterior and the evidence terms, the fit-space EXAFS data
    with every candidate's model, and the XANES data with every candidate's aligned simulation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    nds = len(ranking)
    fig, axes = plt.subplots(nds, 3, figsize=(15, 3.8 * nds), squeeze=False)
    for row, (ds, d) in enumerate(ranking.items()):
        cands = d["candidate"]
        colors = {c: f"C{i}" for i, c in enumerate(sorted(cands))}
        ax = axes[row, 0]
        y = np.arange(len(cands))
        terms = d["terms"]
        width = 0.8 / max(1, len(terms) + 1)
        best = max(d["log_evidence"])
        ax.barh(y - 0.4 + width / 2, np.array(d["log_evidence"]) - best, height=width, color="k",
                label="ln Z − ln Z_best (total)")
        for j, (t, tt) in enumerate(terms.items()):
            v = np.array(tt["log_evidence"])
            ax.barh(y - 0.4 + width * (j + 1.5), v - v.max(), height=width, alpha=0.7,
                    label=f"{t} (shown, not in P)" if t == "exafs_empirical" else t)
        ax.set_yticks(y, [f"{c} ({fo})\nP = {p:.3g}" for c, fo, p in zip(cands, d["formula"], d["posterior"])],
                      fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("log evidence relative to the best (nat)")
        ax.set_title(f"{ds}: winner {d['winner']}, ln B = {d['margin']:.1f}", fontsize=10)
        ax.legend(fontsize=7, loc="lower left")
        ax = axes[row, 1]
        if d["fits"]:
            first = d["fits"][cands[0]]
            ax.plot(first["x"], first["data"], "k.", ms=2, label="data (fit space)")
            for c in cands:
                ax.plot(d["fits"][c]["x"], d["fits"][c]["model"], color=colors[c], lw=1, label=c)
            ax.set_xlabel("q (Å⁻¹)")
            ax.set_ylabel("filtered k^w χ")
            ax.set_title("EXAFS: data and candidates, fit window only", fontsize=10)
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no EXAFS term", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
        ax = axes[row, 2]
        if d.get("xanes"):
            first = next(iter(d["xanes"].values()))
            ax.plot(first["energy"], first["data"], "k-", lw=1.5, label="measured")
            for c, x in d["xanes"].items():
                ax.plot(x["energy"], x["model"], color=colors[c], lw=1, label=c)
            ax.set_xlabel("energy (eV)")
            ax.set_ylabel("normalised μ(E)")
            ax.set_title("XANES: physical comparison", fontsize=10)
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no XANES term (no candidate comparison in the file)", ha="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
    if simulated:
        fig.suptitle("SIMULATED DATA", color="r")
    from xasmpi.report.figures import FigureContext, save_figure

    return save_figure(fig, "ranking", FigureContext(Path(out), tuple(formats), dpi=120))


def run(args) -> int:
    from xasmpi.errors import ResultsError
    from xasmpi.store.layout import read_ranking
    from xasmpi.store.results import open_results

    target = Path(args.target)
    if target.suffix == ".toml":
        from xasmpi.campaign import run_campaign
        from xasmpi.config import load_job
        from xasmpi.parallel.comm import session

        with session() as comm:
            job = load_job(target, args.overrides)
            summary = run_campaign(job, stages=("rank",), comm=comm)
        if comm.rank != 0 or summary is None:
            return 0 if summary is not None or comm.rank != 0 else 1
        target = Path(job.job.output)
    elif args.overrides:
        raise ResultsError(f"{target}: --set applies to job files only")
    with open_results(target) as f:
        ranking = read_ranking(f)
        simulated = bool(f.attrs.get("simulated", False))
    if not ranking:
        raise ResultsError(f"{target}: no /ranking group (run the 'rank' stage: xasmpi rank JOB.toml)")
    text = markdown(ranking)
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "ranking.md").write_text(("**SIMULATED DATA**\n\n" if simulated else "") + text)
        (out / "ranking.csv").write_text(csv_text(ranking))
        files = figure(ranking, out, formats=tuple(args.formats.split(",")), simulated=simulated)
        print(f"written: {out / 'ranking.md'}, {out / 'ranking.csv'}, " + ", ".join(str(p) for p in files))
    return 0
