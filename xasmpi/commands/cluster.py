"""``xasmpi cluster build``: candidate CdS cluster models for XANES.

Examples
--------
::

    xasmpi cluster build --lattice zincblende --formula Cd37S20 --terminate O -o zb.xyz
    xasmpi cluster build --lattice zincblende --strain 0,0,-0.05 --atoms 40 -o dzb.xyz --json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from xasmpi.errors import InputError
from xasmpi.xanes.clusters import LATTICES, build_cluster


def _strain(text: str) -> float | tuple[float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--strain {text!r}: expected EPS or EX,EY,EZ") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 3:
        return tuple(values)
    raise argparse.ArgumentTypeError(f"--strain {text!r}: expected one or three numbers")


def register(subparsers) -> None:
    """Add the ``cluster`` command (sub-action ``build``)."""
    parser = subparsers.add_parser("cluster", help="build candidate cluster models",
                                   description="Build candidate cluster models for XANES.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser(
        "build", help="cut a (strained, O-terminated) CdS cluster from a polymorph",
        description="Cut a CdS cluster from zinc blende, wurtzite, rock salt or beta-Sn, "
                    "optionally strained and O-terminated, and write it to a structure file.")
    b.add_argument("--lattice", required=True, choices=LATTICES, help="polymorph family")
    b.add_argument("--a", type=float, help="lattice parameter a (Å); default per lattice")
    b.add_argument("--c", type=float, help="lattice parameter c (Å), wurtzite and betasn")
    b.add_argument("--strain", type=_strain,
                   help="strain: EPS (isotropic) or EX,EY,EZ along x,y,z, e.g. 0,0,-0.05")
    target = b.add_mutually_exclusive_group(required=True)
    target.add_argument("--atoms", type=int, metavar="N", help="target number of CdS atoms")
    target.add_argument("--formula", help="target CdS composition, e.g. Cd37S20")
    b.add_argument("--mode", choices=("sphere", "shell"), default="sphere",
                   help="exact count (sphere) or complete shells nearest the target (shell)")
    b.add_argument("--center", choices=("cd", "cell"), default="cd",
                   help="centre on a Cd atom or on the centre of a unit cell")
    b.add_argument("--terminate", metavar="ELEMENT",
                   help="terminate under-coordinated Cd with this element (e.g. O)")
    b.add_argument("--termination-distance", type=float, default=2.3,
                   help="Cd-terminator distance (Å), default 2.3")
    b.add_argument("-o", "--output", required=True, type=Path,
                   help="output structure file (format from the extension: xyz, extxyz, cif...)")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the cluster, write it and print its report."""
    from ase.io import write

    atoms, report = build_cluster(
        args.lattice, a=args.a, c=args.c, strain=args.strain, n_atoms=args.atoms,
        formula=args.formula, center=args.center, mode=args.mode,
        terminate_with=args.terminate, termination_distance=args.termination_distance)
    try:
        write(str(args.output), atoms)
    except Exception as exc:  # ASE: unknown extension, unwritable path...
        raise InputError(f"{args.output}: cannot write structure ({exc})") from exc
    if args.json:
        print(json.dumps({**report.to_dict(), "lattice": args.lattice,
                          "output": str(args.output)}, indent=2))
    else:
        dist = ", ".join(f"{k} {v:.3f} Å" for k, v in report.shortest.items())
        print(f"{report.formula} ({report.n_atoms} atoms) -> {args.output}")
        print(f"Cd: {report.n_core_cd} core, {report.n_surface_cd} surface "
              f"(core = {report.shell_size} S within {report.bond_cutoff} Å); "
              f"min Cd coordination {report.min_coordination}")
        print(f"shortest: {dist}")
    return 0
