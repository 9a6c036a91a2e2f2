"""``xasmpi demo``: a complete campaign on simulated (FEFF-generated) data, then the report.

Run it under ``mpirun -n 2`` (the README's ``make demo`` does).  It writes into ``--out``
(default ``./xasmpi-demo``): ``data/`` (simulated spectra, labelled SIMULATED, with their
true values), ``demo.toml`` (the job), ``results.h5`` and ``report/``.  Rerunning resumes.

``xasmpi demo --mixture X --out DIR`` instead writes ``DIR/mixture.xdi``, the μ(E)-level
real-data CdS/CdO mixture of weight X (:func:`xasmpi.testing.write_mixture`, from the
``_02`` scans of ``../shared/data/xaslib``) that ``jobs/examples/mixture.toml`` fits.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("xasmpi")


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the demo campaign on simulated data (use mpirun -n 2)")
    p.add_argument("--out", default="xasmpi-demo", help="output folder (default ./xasmpi-demo)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the demo job, e.g. fit.replicates=500")
    p.add_argument("--stages", help="comma-separated subset of stages")
    p.add_argument("--restart", action="store_true", help="recompute stages whose settings changed")
    p.add_argument("--mixture", type=float, metavar="X",
                   help="only write OUT/mixture.xdi: X·CdS + (1−X)·CdO real-data mixture (normalised μ(E) "
                        "of the shared _02 scans) for jobs/examples/mixture.toml")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.mixture is not None:
        return _mixture(args)
    from xasmpi.campaign import run_campaign
    from xasmpi.commands.run import stage_list
    from xasmpi.config import load_job
    from xasmpi.demo.generate import generate, render_job
    from xasmpi.errors import XasmpiError
    from xasmpi.parallel.comm import session

    out = Path(args.out).resolve()
    data, jobfile = out / "data", out / "demo.toml"
    with session() as comm:
        err = None
        if comm.rank == 0:
            try:
                if not (data / "truth.json").is_file():
                    log.info("demo: generating SIMULATED data with FEFF into %s", data)
                    generate(data)
                render_job(jobfile, datadir=data, output="results.h5")
            except XasmpiError as exc:
                err = exc
        comm.bcast_or_raise(None, err)
        job = load_job(jobfile, args.overrides)
        run_campaign(job, stages=stage_list(args.stages), restart=args.restart, comm=comm)
    if comm.rank != 0:
        return 0
    from xasmpi.report import write_report
    from xasmpi.store.results import summarize

    rep = write_report(job.job.output, out / "report")
    summary = summarize(job.job.output)
    truth = json.loads((data / "truth.json").read_text())
    print("\nxasmpi demo (SIMULATED data): recovered vs true values "
          "(± total uncertainty: replicate sd ⊕ systematic)")
    for name, smp in summary["samples"].items():
        true = _true_paths(truth, name)
        print(f"  sample {name}: {smp['replicates_done']} replicate fits ({smp['mode']})")
        for p, d in smp["paths"].items():
            t = true.get(p, {})
            tn = t.get("n")
            value = d["N_mean"] if d.get("N_mean") is not None else d.get("N_best")
            sd = next((d[k] for k in ("N_total_sd", "N_sd") if d.get(k) is not None), None)
            if value is None:
                continue
            line = f"    {p:6s} N·S0² = {value:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")
            if tn is not None:
                line += f"   (true {tn:g}, {100 * (value - tn) / tn:+.1f} %"
                if sd:
                    line += ", inside 2σ" if abs(value - tn) <= 2 * sd else ", OUTSIDE 2σ"
                line += ")"
            if d.get("N_flags"):
                line += f"  [{', '.join(d['N_flags'])}]"
            print(line)
    from xasmpi.store.results import open_results

    with open_results(job.job.output) as f:  # the rank stage's winners (none of the candidates is the truth)
        winners = json.loads(f["ranking"].attrs["winners"]) if "ranking" in f else {}
    for ds, w in winners.items():
        print(f"  rank {ds}: {w['winner']} first of the candidates (posterior {w['posterior']:.3g}, ln B = "
              f"{w['margin']:.1f} over {w['runner_up']}); the simulated sample is none of them")
    print(f"\nReport: {out / 'report'}  ({len(rep.written)} files; see report.md)")
    return 0


def _mixture(args) -> int:
    """``--mixture X``: write the real-data mixture file and say where (no MPI needed)."""
    from xasmpi.errors import InputError
    from xasmpi.testing import mixture_truth, write_mixture

    if not 0.0 <= args.mixture <= 1.0:
        raise InputError(f"demo: --mixture must be in [0, 1], got {args.mixture:g}")
    try:
        path = write_mixture(Path(args.out) / "mixture.xdi", args.mixture)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    known = ", ".join(f"N({p}) = {v['n']:g}" for p, v in mixture_truth(args.mixture).items())
    print(f"{path}: real-data mixture x = {args.mixture:g} (known answer {known})")
    return 0


def _true_paths(truth: dict, sample: str) -> dict:
    """``{path: {"n", "r", "sigma2"}}`` of a sample from the generator's truth.json."""
    entry = truth.get(sample)
    return {k: v for k, v in entry.items() if isinstance(v, dict)} if isinstance(entry, dict) else {}
