"""``xasmpi report RESULTS.h5 --out DIR [--formats png,pdf]``: figures, Table 1 and report.md."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="figures (PNG+PDF), Table 1 (Markdown+CSV) and report.md from a results file",
        description=(
            "Draw the paper's figures (1a-c, 2a-b, 3, 4) from a results file, write Table 1 "
            "and the other tables as CSV and a Markdown report listing what was written and "
            "which figures were skipped because their data are absent."
        ),
    )
    p.add_argument("results", help="results HDF5 file")
    p.add_argument("--out", default="report", metavar="DIR", help="output folder (default ./report)")
    p.add_argument("--formats", default="png,pdf", help="comma-separated figure formats (default png,pdf)")
    p.add_argument("--dpi", type=int, default=150, help="raster resolution, dots per inch (default 150)")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from xasmpi.report import write_report
    from xasmpi.store.results import open_results, warnings_for

    with open_results(args.results) as f:
        warn = warnings_for(f, args.results)
    for w in warn:
        print(f"xasmpi: WARNING: {w}", file=sys.stderr)
    res = write_report(args.results, args.out, formats=args.formats.split(","), dpi=args.dpi)
    tag = " [SIMULATED DATA]" if res.simulated else ""
    print(f"report{tag}: {res.report}")
    print(f"  {len(res.figures)} figure(s), {len(res.written)} file(s) written to {res.out_dir}")
    for fid, files in res.figures:
        print(f"  {fid:8s} " + ", ".join(p.name for p in files))
    for sid, reason in res.skipped:
        print(f"  skipped {sid}: {reason}")
    return 0
