"""``xasmpi angle``: mean bond angle from two EXAFS shell distances.

Examples::

    xasmpi angle --r1 2.4881 --r1-sd 0.0098 --r2 3.9769 --r2-sd 0.0096
    xasmpi angle --from results.h5 --sample MSC-322 --r1-path Cd-S --r2-path Cd-Cd --json
"""
from __future__ import annotations

import json

import numpy as np

from xasmpi.errors import InputError, ResultsError


def register(sub) -> None:
    p = sub.add_parser(
        "angle",
        help="bond angle 2*asin(R2/(2*R1)) from two shell distances, compared with 109.47 deg",
        description=(
            "Bond angle theta = 2*asin(R2/(2*R1)) (e.g. Cd-S-Cd from R(Cd-S) and R(Cd-Cd)). "
            "With --r1/--r2 the uncertainty is propagated analytically (first order, independent "
            "errors in quadrature); with --from RESULTS.h5 theta is computed for every replicate "
            "(R1, R2) pair, keeping their correlation, and the systematic term comes from the "
            "systematic refits' (R1, R2) pairs."
        ),
    )
    p.add_argument("--r1", type=float, default=None, help="first-shell distance R1, Å")
    p.add_argument("--r1-sd", type=float, default=0.0, help="standard uncertainty of R1, Å")
    p.add_argument("--r2", type=float, default=None, help="second-shell distance R2, Å")
    p.add_argument("--r2-sd", type=float, default=0.0, help="standard uncertainty of R2, Å")
    p.add_argument("--from", dest="results", default=None, metavar="RESULTS.h5",
                   help="use replicate (R1, R2) pairs from a results file (R must be a free parameter)")
    p.add_argument("--sample", default=None, help="sample name in the results file")
    p.add_argument("--r1-path", default="Cd-S", help="path of R1 in the results file (default Cd-S)")
    p.add_argument("--r2-path", default="Cd-Cd", help="path of R2 in the results file (default Cd-Cd)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from xasmpi.analysis.angles import angle_from_replicates, angle_from_shells

    if args.results is None:
        if args.r1 is None or args.r2 is None:
            raise InputError("angle: give --r1 and --r2 (Å), or --from RESULTS.h5")
        if args.sample is not None:
            raise InputError("angle: --sample needs --from RESULTS.h5")
        res = angle_from_shells(args.r1, args.r2, r1_sd=args.r1_sd, r2_sd=args.r2_sd)
        if args.json:
            print(json.dumps(res.to_dict(), indent=2))
            return 0
        print(f"theta = 2*asin(R2/(2*R1)) with R1 = {res.r1:.4f} ± {res.r1_sd:.4f} Å, "
              f"R2 = {res.r2:.4f} ± {res.r2_sd:.4f} Å")
        print(f"theta = {res.angle:.2f} ± {res.sd:.2f} deg")
        print(f"method: {res.method}")
        print(f"tetrahedral angle {res.tetrahedral:.2f} deg: difference {res.deviation:+.2f} deg "
              f"({res.z_tetrahedral:+.1f} sd)")
        return 0

    if args.r1 is not None or args.r2 is not None:
        raise InputError("angle: give either --r1/--r2 or --from RESULTS.h5, not both")
    from xasmpi.store.results import read_replicate_columns

    c1, c2 = f"{args.r1_path}.r", f"{args.r2_path}.r"
    try:
        cols, n_total, sample = read_replicate_columns(args.results, args.sample, [c1, c2])
    except ResultsError as exc:
        if "no fitted parameter" in str(exc):
            raise ResultsError(
                f"{exc} -- the distances were not free parameters in this fit; "
                f"give --r1/--r2 with their uncertainties instead"
            ) from None
        raise
    r1, r2 = cols[c1], cols[c2]
    res = angle_from_replicates(r1, r2)
    from xasmpi.store.results import angle_systematic, open_results

    with open_results(args.results) as f:
        sys = angle_systematic(f[f"exafs/{sample}"], c1, c2)
    total = float(np.hypot(res.sd, sys)) if np.isfinite(sys) else float(res.sd)
    from xasmpi.store.layout import mean_sd

    ok = np.isfinite(r1) & np.isfinite(r2)
    mean, sd = mean_sd(np.column_stack([r1[ok], r2[ok]]))
    analytic = angle_from_shells(float(mean[0]), float(mean[1]), r1_sd=float(sd[0]), r2_sd=float(sd[1]))
    if args.json:
        d = res.to_dict()
        d.update({"file": args.results, "sample": sample, "r1_param": c1, "r2_param": c2,
                  "n_replicates_total": n_total,
                  "sys_deg": float(sys) if np.isfinite(sys) else None, "total_sd_deg": total,
                  "analytic_from_replicate_mean_sd": analytic.to_dict()})
        print(json.dumps(d, indent=2))
        return 0
    print(f"theta = 2*asin(R2/(2*R1)), R1 = '{c1}', R2 = '{c2}' from {args.results}"
          f" sample {sample}: {res.n}/{n_total} replicate pairs"
          + (f" ({res.n_invalid} invalid pairs dropped)" if res.n_invalid else ""))
    print(f"theta = {res.mean:.2f} ± {res.sd:.2f} deg (mean ± sd), median {res.median:.2f} deg")
    if np.isfinite(sys):
        print(f"systematic {sys:.2f} deg (refits of the systematics stage), total {total:.2f} deg")
    else:
        print("no systematic refits in the file: the sd is statistical only")
    pct = dict(res.percentiles)
    if 2.5 in pct and 97.5 in pct:
        print(f"95% interval [{pct[2.5]:.2f}, {pct[97.5]:.2f}] deg")
    corr = "undefined" if np.isnan(res.correlation) else f"{res.correlation:+.2f}"
    print(f"method: {res.method}; corr(R1, R2) = {corr}")
    print(f"for comparison, analytic (independent errors, replicate mean/sd): "
          f"{analytic.angle:.2f} ± {analytic.sd:.2f} deg")
    print(f"tetrahedral angle {res.tetrahedral:.2f} deg: difference {res.deviation:+.2f} deg; "
          f"{100 * res.fraction_below_tetrahedral:.1f}% of replicates below it")
    return 0
