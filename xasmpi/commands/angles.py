"""``xasmpi angles MODEL.xyz``: bond-angle distributions (core vs surface) in a cluster model.

Example::

    xasmpi angles cluster.xyz --cutoff Cd-S=3.0 --cutoff Cd-O=2.6 --json
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from xasmpi.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "angles",
        help="bond-angle distributions by kind (Cd-S-Cd, S-Cd-S, S-Cd-O, O-Cd-O, Cd-O-Cd), core vs surface",
        description=(
            "All X-Cd-X and Cd-X-Cd bond angles of a structure model (any ASE-readable file), "
            "split into core (centre bonded only to Cd or S) and surface (centre bonded to O), "
            "with histogram, Gaussian KDE (scipy, Scott's rule by default), modes and a "
            "core-vs-surface bimodality test."
        ),
    )
    p.add_argument("model", help="structure file (xyz, cif, POSCAR, ... anything ase.io.read reads)")
    p.add_argument("--cutoff", action="append", default=[], metavar="A-B=R",
                   help="explicit bond cutoff in Å for an element pair, e.g. Cd-S=3.0 (repeatable)")
    p.add_argument("--tol", type=float, default=0.2,
                   help="fractional tolerance on covalent-radius cutoffs: (1+tol)*(r_a+r_b) (default 0.2)")
    p.add_argument("--cation", default="Cd", help="cation element (default Cd)")
    p.add_argument("--surface", default="O", help="comma-separated surface elements (default O)")
    p.add_argument("--bins", default="1",
                   help="histogram bin width in degrees (number), a bin count (e.g. 40 bins: '40b'), "
                        "or a numpy rule such as 'auto', 'fd' (default: 1 degree)")
    p.add_argument("--bw", default="scott",
                   help="KDE bandwidth rule: scott (default), silverman, or a factor times the sample sd")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--curves", action="store_true", help="include histogram and KDE arrays in the JSON")
    p.set_defaults(func=run)


def _parse_cutoffs(items: list[str]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            pair, sep, value = part.partition("=")
            a, dash, b = pair.partition("-")
            try:
                r = float(value)
            except ValueError:
                r = float("nan")
            if not sep or not dash or not a.strip() or not b.strip() or not math.isfinite(r) or r < 0:
                raise InputError(f"--cutoff {part!r}: expected A-B=R with R >= 0 in Å, e.g. Cd-S=3.0")
            out[(a.strip(), b.strip())] = r
    return out


def _bins(spec: str, values: np.ndarray):
    """Histogram bins from the --bins option."""
    spec = str(spec).strip()
    if spec.endswith("b") and spec[:-1].isdigit():
        return int(spec[:-1]), f"{int(spec[:-1])} bins"
    try:
        width = float(spec)
    except ValueError:
        return spec, spec  # numpy rule name; validated by numpy
    if not math.isfinite(width) or width <= 0:
        raise InputError(f"--bins {spec!r}: bin width must be > 0 degrees")
    lo = math.floor(values.min() / width) * width if values.size else 0.0
    hi = math.ceil(values.max() / width) * width if values.size else width
    if hi <= lo:
        lo, hi = lo - width, hi + width
    hi = max(hi, lo + width)
    return np.arange(lo, hi + 0.5 * width, width), f"{width:g} deg bins"


def _bw(spec: str):
    spec = str(spec).strip().lower()
    if spec in ("scott", "silverman"):
        return spec
    try:
        return float(spec)
    except ValueError:
        raise InputError(f"--bw {spec!r}: expected scott, silverman or a positive number") from None


def _fmt(v: float, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def run(args) -> int:
    from xasmpi.analysis.angles import TETRAHEDRAL_ANGLE_DEG, bond_angle_distribution
    from xasmpi.analysis.distributions import bimodality_test, describe

    from xasmpi.xanes.clusters import read_model

    path = Path(args.model)
    atoms = read_model(path)
    surface = tuple(s.strip() for s in args.surface.split(",") if s.strip())
    dist = bond_angle_distribution(
        atoms, cation=args.cation, surface_elements=surface, tol=args.tol,
        cutoffs=_parse_cutoffs(args.cutoff),
    )
    bw = _bw(args.bw)
    edges, bins_label = _bins(args.bins, dist.angles)
    classes = {
        "all": dist.angles,
        "core": dist.core_angles,
        "surface": dist.surface_angles,
    }
    summaries = {k: describe(v, bins=edges, bw_method=bw) for k, v in classes.items()}
    test = bimodality_test(dist.core_angles, dist.surface_angles)

    cut_used = {f"{a}-{b}": v for (a, b), v in dist.cutoffs if dist.cation in (a, b) and a != b}
    if args.json:
        out = {
            "model": str(path),
            "formula": atoms.get_chemical_formula(),
            "cation": dist.cation,
            "surface_elements": list(dist.surface_elements),
            "bond_cutoffs_A": cut_used,
            "tol": args.tol,
            "definitions": {
                "core": f"angles centred on atoms bonded only to {dist.cation} or non-surface elements",
                "surface": f"angles centred on atoms bonded to {'/'.join(surface)} (or being one)",
            },
            "kde_bandwidth_rule": bw if isinstance(bw, str) else f"factor={bw:g}",
            "histogram_bins": bins_label,
            "tetrahedral_deg": TETRAHEDRAL_ANGLE_DEG,
            "n_core_centres": dist.n_core_centres,
            "n_surface_centres": dist.n_surface_centres,
            "classes": {k: s.to_dict(include_curves=args.curves) for k, s in summaries.items()},
            "by_kind": {
                kind: {"n": int((dist.kind == kind).sum()),
                       "mean": float(dist.angles[dist.kind == kind].mean()),
                       "n_core": int(dist.select(kind=kind, surface=False).size),
                       "n_surface": int(dist.select(kind=kind, surface=True).size)}
                for kind in dist.kinds
            },
            "bimodality": test.to_dict(),
        }
        print(json.dumps(out, indent=2))
        return 0

    print(f"{path}: {atoms.get_chemical_formula()}, {len(atoms)} atoms")
    print("bond cutoffs: " + ", ".join(f"{k} {v:.2f} Å" for k, v in cut_used.items())
          + f" (covalent radii x {1 + args.tol:g} unless set with --cutoff)")
    print(f"core: centre bonded only to {dist.cation}/S-like atoms ({dist.n_core_centres} centres); "
          f"surface: centre bonded to {'/'.join(surface)} ({dist.n_surface_centres} centres)")
    bw_label = bw if isinstance(bw, str) else f"factor {bw:g} x sd"
    print(f"KDE: scipy gaussian_kde, bandwidth rule {bw_label}; histogram {bins_label}")
    print(f"{'class':<8} {'n':>6} {'mean':>8} {'sd':>6} {'median':>8} {'min':>8} {'max':>8} "
          f"{'KDE h':>6}  modes/deg")
    for k, s in summaries.items():
        h = _fmt(s.kde.bandwidth) if s.kde is not None else "-"
        m = ", ".join(f"{v:.1f}" for v in s.modes) or "-"
        print(f"{k:<8} {s.n:>6} {_fmt(s.mean):>8} {_fmt(s.sd):>6} {_fmt(s.median):>8} "
              f"{_fmt(s.minimum):>8} {_fmt(s.maximum):>8} {h:>6}  {m}")
    print("by kind: " + ", ".join(
        f"{k} n={int((dist.kind == k).sum())} mean {dist.angles[dist.kind == k].mean():.1f}" for k in dist.kinds))
    print(f"tetrahedral angle {TETRAHEDRAL_ANGLE_DEG:.2f} deg; mean deviation: all "
          f"{_fmt(summaries['all'].mean - TETRAHEDRAL_ANGLE_DEG, '+.2f')}, core "
          f"{_fmt(summaries['core'].mean - TETRAHEDRAL_ANGLE_DEG, '+.2f') if summaries['core'].n else '-'}, surface "
          f"{_fmt(summaries['surface'].mean - TETRAHEDRAL_ANGLE_DEG, '+.2f') if summaries['surface'].n else '-'} deg")
    print("core vs surface (bimodality): "
          f"KS D = {_fmt(test.ks_statistic, '.3f')} (p = {_fmt(test.ks_pvalue, '.2g')}), "
          f"Mann-Whitney p = {_fmt(test.mw_pvalue, '.2g')}; pooled: bimodality coefficient "
          f"{_fmt(test.bimodality_coefficient, '.3f')} (> 0.555 suggests bimodal), "
          + (f"Gaussian mixture dBIC(1-2) = {test.mixture.delta_bic:.1f} (> 10 favours two components, "
             f"means {test.mixture.means[0]:.1f} and {test.mixture.means[1]:.1f} deg, "
             f"Ashman D = {test.mixture.ashman_d:.2f})"
             if test.mixture is not None else "Gaussian mixture undefined"))
    print(f"bi-fold distribution: {'yes' if test.bimodal else 'no'} (KS p < 0.05, dBIC > 10 and Ashman D > 2)"
          + (f"; {test.note}" if test.note else ""))
    return 0
