"""``xasmpi stoich``: integer Cd_xS_y near a cluster mass, ranked by the EXAFS CN.

Examples::

    xasmpi stoich --mass 5160 --tol 20 --elements Cd,S --cn 2.6 --cn-sd 0.27
    xasmpi stoich --mass 5160 --tol 20 --from results.h5 --sample MSC-322 --path Cd-S --json
"""
from __future__ import annotations

import json
import math

import numpy as np

from xasmpi.errors import InputError, ResultsError


def register(sub) -> None:
    p = sub.add_parser(
        "stoich",
        help="enumerate integer stoichiometries near a mass, ranked by coordination number",
        description=(
            "List all integer formulas (e.g. Cd_xS_y) whose mass (standard atomic weights, "
            "xraydb/IUPAC) lies within MASS ± TOL Da, with the coordination number "
            "CN = COORD*n(partner)/n(absorber) they imply (every partner atom four-coordinated "
            "and fully capped by the absorber). With a fitted CN they are ranked by "
            "|CN - CN_fit|/sd."
        ),
    )
    p.add_argument("--mass", type=float, required=True, help="target cluster mass, Da")
    p.add_argument("--tol", type=float, default=20.0, help="half-width of the mass window, Da (default 20)")
    p.add_argument("--elements", default="Cd,S",
                   help="comma-separated elements whose counts are enumerated (default Cd,S)")
    p.add_argument("--absorber", default=None, help="absorber element of the CN (default: first element)")
    p.add_argument("--partner", default=None, help="partner element of the CN (default: second element)")
    p.add_argument("--coordination", type=int, default=4,
                   help="absorber neighbours of each partner atom (default 4)")
    p.add_argument("--extra", action="append", default=[], metavar="EL:N",
                   help="fixed extra atoms added to every formula, e.g. O:10 (repeatable or comma list)")
    p.add_argument("--extra-mass", type=float, default=0.0, help="fixed extra mass (ligands), Da")
    p.add_argument("--min-count", type=int, default=1, help="minimum count of each enumerated element")
    p.add_argument("--cn", type=float, default=None, help="fitted coordination number (N*S0^2) to rank by")
    p.add_argument("--cn-sd", type=float, default=None, help="standard deviation of the fitted CN")
    p.add_argument("--from", dest="results", default=None, metavar="RESULTS.h5",
                   help="take CN mean and sd from the replicate fits of a results file")
    p.add_argument("--sample", default=None, help="sample name in the results file (with --from)")
    p.add_argument("--path", default=None,
                   help="scattering path in the results file (default ABSORBER-PARTNER, e.g. Cd-S)")
    p.add_argument("--s02", type=float, default=1.0,
                   help="S0^2 to divide the fitted N*S0^2 by (default 1, the paper's assumption)")
    p.add_argument("--all-cn", action="store_true",
                   help="also list formulas whose CN exceeds --coordination (unphysical under the assumptions)")
    p.add_argument("--top", type=int, default=25, help="table rows to print (default 25; 0 = all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _parse_extra(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            sym, sep, n = part.partition(":")
            try:
                count = int(n)
            except ValueError:
                count = -1
            if not sep or count < 0:
                raise InputError(f"--extra {part!r}: expected ELEMENT:COUNT with COUNT >= 0, e.g. O:10")
            out[sym.strip()] = out.get(sym.strip(), 0) + count
    return out


def run(args) -> int:
    from xasmpi.analysis.stoichiometry import enumerate_stoichiometries

    elements = [e.strip() for e in args.elements.split(",") if e.strip()]
    extra = _parse_extra(args.extra)
    cn, cn_sd, source = args.cn, args.cn_sd, "command line"
    if args.results is not None:
        if args.cn is not None or args.cn_sd is not None:
            raise InputError("stoich: give either --cn/--cn-sd or --from RESULTS.h5, not both")
        absorber = args.absorber or (elements[0] if elements else "")
        partner = args.partner or (elements[1] if len(elements) > 1 else "")
        path = args.path or f"{absorber}-{partner}"
        col = f"{path}.n"
        from xasmpi.analysis.stoichiometry import cn_estimate
        from xasmpi.store.results import read_replicate_columns, read_uncertainty

        if not (args.s02 > 0 and math.isfinite(args.s02)):
            raise InputError(f"--s02 must be > 0, got {args.s02}")
        cols, n_total, sample = read_replicate_columns(args.results, args.sample, [col])
        if np.isfinite(cols[col]).sum() < 2:
            raise ResultsError(f"{args.results}: fewer than 2 finite '{col}' replicate values")
        u = read_uncertainty(args.results, sample, col)
        cn, cn_sd, n_used = cn_estimate(cols[col], total_sd=None if u is None else u.total,
                                        best=None if u is None else u.best, s02=args.s02)
        source = (f"{args.results} sample {sample}: '{col}' over {n_used}/{n_total} replicates, sd = "
                  + ("total (statistical ⊕ systematic)" if u is not None and np.isfinite(u.total)
                     else "replicate sd (no best fit in the file)"))
        if args.s02 != 1.0:
            source += f", divided by S0^2 = {args.s02:g}"
    elif args.sample is not None or args.path is not None:
        raise InputError("stoich: --sample/--path need --from RESULTS.h5")

    res = enumerate_stoichiometries(
        args.mass,
        tol=args.tol,
        elements=elements,
        cn=cn,
        cn_sd=cn_sd,
        absorber=args.absorber,
        partner=args.partner,
        coordination=args.coordination,
        extra=extra,
        extra_mass=args.extra_mass,
        min_count=args.min_count,
        physical=not args.all_cn,
    )
    if args.json:
        d = res.to_dict()
        d["cn_source"] = source if cn is not None else None
        print(json.dumps(d, indent=2))
        return 0

    print(f"Stoichiometries within {res.target_mass:g} ± {res.tol:g} Da "
          f"({', '.join(f'{s} {m:.4f}' for s, m in res.masses)} Da; standard atomic weights, xraydb/IUPAC)")
    if res.extra or res.extra_mass:
        fixed = ", ".join(f"{s}{n}" for s, n in res.extra)
        print(f"fixed extras: {fixed or 'none'}; extra mass {res.extra_mass:g} Da")
    print("assumptions: " + "; ".join(res.assumptions))
    if cn is not None:
        print(f"fitted CN({res.absorber}-{res.partner}) = {cn:.3f} ± {cn_sd:.3f} ({source}); "
              f"ranked by |CN - CN_fit|/sd")
    else:
        print("no fitted CN given: ranked by |mass error|")
    if res.n_rejected:
        print(f"{res.n_rejected} formula(s) with CN > {res.coordination} omitted (--all-cn lists them)")
    if not res.candidates:
        print("no integer formula in the mass window")
        return 0
    rows = res.candidates if args.top <= 0 else res.candidates[: args.top]
    width = max(7, max(len(c.formula) for c in rows))
    header = f"{'rank':>4}  {'formula':<{width}}  {'mass/Da':>9}  {'dm/Da':>7}  {'CN':>6}"
    if cn is not None:
        header += f"  {'|dCN|/sd':>8}"
    print(header)
    for i, c in enumerate(rows, start=1):
        line = f"{i:>4}  {c.formula:<{width}}  {c.mass:>9.2f}  {c.mass_error:>+7.2f}  {c.cn:>6.3f}"
        if cn is not None:
            line += f"  {c.z:>8.2f}"
        print(line)
    if len(rows) < len(res.candidates):
        print(f"... {len(res.candidates) - len(rows)} more (use --top 0 to list all)")
    return 0
