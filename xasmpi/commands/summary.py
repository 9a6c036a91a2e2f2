"""``xasmpi summary RESULTS.h5 [--json]``."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("summary", help="summarise a results file (JSON with --json)")
    p.add_argument("results", help="results HDF5 file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _describe(d: dict, key: str) -> str:
    """``N = 2.61 ± 0.05 (best ± stderr), 2.60 ± 0.04 (replicates), sys 0.2, total 0.2 [flags]``."""
    out = f"{key} = {_fmt(d.get(key + '_best'))} ± {_fmt(d.get(key + '_stderr'))}"
    if d.get(key + "_mean") is not None:
        out += f", replicates {_fmt(d[key + '_mean'])} ± {_fmt(d.get(key + '_sd'))}"
    if d.get(key + "_sys") is not None:
        out += f", sys {_fmt(d[key + '_sys'])}"
    if d.get(key + "_total_sd") is not None:
        out += f", total {_fmt(d[key + '_total_sd'])}"
    if d.get(key + "_flags"):
        out += f" [{', '.join(d[key + '_flags'])}]"
    return out


def run(args) -> int:
    from xasmpi.store.results import summarize

    s = summarize(args.results)
    for w in s["warnings"]:  # stderr, so that --json output stays parseable
        print(f"xasmpi: WARNING: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    ranks = s["stage_ranks"]
    def _ranks(r):
        r = r if isinstance(r, list) else [r]
        return f"{'+'.join(map(str, r))} rank{'s' if r != [1] else ''}"

    stages = ", ".join(f"{st} ({_ranks(ranks[st])})" if st in ranks else st for st in s["stages_done"])
    print(f"{s['file']}: xasmpi {s['xasmpi_version']}{'' if s['complete'] else ' [INCOMPLETE]'}"
          f"{' [STALE: ' + ', '.join(s['stale_stages']) + ']' if s['stale_stages'] else ''}, stages {stages}"
          f"{'' if ranks else ', ' + str(s['n_ranks']) + ' rank(s)'}"
          f"{' [SIMULATED DATA]' if s['simulated'] else ''}; failed tasks: {s['failed_tasks']}")
    for name, smp in s["samples"].items():
        print(f"  sample {name}: {smp['replicates_done']}/{smp['replicates_total']} replicates ok"
              f" ({smp['replicates_failed']} failed), mode {smp['mode']}"
              + (f", best SSR {smp['ssr_best']:.4g}" if "ssr_best" in smp else "")
              + (f", FEFF-route SSR {smp['ssr_feff']:.4g}" if "ssr_feff" in smp else ""))
        if smp.get("mode") == "restart":
            print("    (restart replicates: the spread measures the optimiser's stability, not an uncertainty)")
        if "systematics" in smp:
            sy = smp["systematics"]
            print(f"    systematic refits: {sy['ok']}/{len(sy['variations'])} ok")
        for p, d in list(smp["paths"].items()) + [(f"ΔE0 {g}", d) for g, d in smp.get("e0", {}).items()]:
            print(f"    {p:10s} " + "; ".join(_describe(d, k) for k in ("N", "sigma2", "R", "dE0")
                                             if d.get(f"{k}_mean") is not None or d.get(f"{k}_best") is not None))
    for c, d in s["xanes"].items():
        print(f"  xanes {c}: {d['absorbers_ok']}/{d['absorbers']} absorbers ok")
    return 0
