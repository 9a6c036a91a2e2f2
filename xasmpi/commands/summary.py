"""``xasmpi summary RESULTS.h5 [--json]``."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("summary", help="summarise a results file (JSON with --json)")
    p.add_argument("results", help="results HDF5 file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from xasmpi.store.results import summarize

    s = summarize(args.results)
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    print(f"{s['file']}: xasmpi {s['xasmpi_version']}, {s['n_ranks']} rank(s), stages {', '.join(s['stages_done'])}"
          f"{' [SIMULATED DATA]' if s['simulated'] else ''}; failed tasks: {s['failed_tasks']}")
    for name, smp in s["samples"].items():
        print(f"  sample {name}: {smp['replicates_done']}/{smp['replicates_total']} replicates ok"
              f" ({smp['replicates_failed']} failed), mode {smp['mode']}"
              + (f", best SSR {smp['ssr_best']:.4g}" if "ssr_best" in smp else "")
              + (f", FEFF-route SSR {smp['ssr_feff']:.4g}" if "ssr_feff" in smp else ""))
        for p, d in smp["paths"].items():
            parts = [f"{k[:-5]} = {d[k]:.4g} ± {d[k[:-5] + '_sd'] or 0:.2g}" for k in d if k.endswith("_mean") and d[k] is not None]
            print(f"    {p:10s} " + ", ".join(parts))
    for c, d in s["xanes"].items():
        print(f"  xanes {c}: {d['absorbers_ok']}/{d['absorbers']} absorbers ok")
    return 0
