"""``xasmpi cluster build``: candidate CdS cluster models for XANES.

Examples
--------
::

    xasmpi cluster build --lattice zincblende --formula Cd37S20 --terminate O -o zb.xyz
    xasmpi cluster build --lattice zincblende --strain 0,0,-0.05 --atoms 40 -o dzb.xyz --json
    xasmpi cluster build --model inp-like -o Cd37S20O54.xyz      # the InP-like model, O-terminated
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from xasmpi.errors import InputError
from xasmpi.xanes.clusters import (LATTICES, build_cluster, build_inp_like, check_chemistry,
                                   symmetry_deviation)


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
    kind = b.add_mutually_exclusive_group(required=True)
    kind.add_argument("--lattice", choices=LATTICES, help="polymorph family to cut from")
    kind.add_argument("--model", choices=("inp-like",),
                      help="a named model: inp-like = Cd37S20 after In37P20(O2CR)51 (Gary et al. 2016), "
                           "O-terminated unless --terminate none")
    b.add_argument("--a", type=float, help="lattice parameter a (Å); default per lattice")
    b.add_argument("--c", type=float, help="lattice parameter c (Å), wurtzite and betasn")
    b.add_argument("--strain", type=_strain,
                   help="strain: EPS (isotropic) or EX,EY,EZ along x,y,z, e.g. 0,0,-0.05")
    target = b.add_mutually_exclusive_group()
    target.add_argument("--atoms", type=int, metavar="N", help="target number of CdS atoms")
    target.add_argument("--formula", help="target CdS composition, e.g. Cd37S20")
    b.add_argument("--mode", choices=("sphere", "shell"), default="sphere",
                   help="exact count (sphere) or complete shells nearest the target (shell)")
    b.add_argument("--center", choices=("cd", "cell"), default="cd",
                   help="centre on a Cd atom or on the centre of a unit cell")
    b.add_argument("--terminate", metavar="ELEMENT",
                   help="terminate under-coordinated Cd with this element (e.g. O; 'none' for the bare "
                        "--model core)")
    b.add_argument("--termination-distance", type=float, default=2.3,
                   help="Cd-terminator distance (Å), default 2.3")
    b.add_argument("-o", "--output", required=True, type=Path,
                   help="output structure file (format from the extension: xyz, extxyz, cif...)")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the cluster, write it and print its report."""
    from ase.io import write

    extra: dict = {}
    if args.model:
        if args.atoms or args.formula or args.strain or args.c:
            raise InputError("--model takes no --atoms/--formula/--strain/--c (its composition is fixed)")
        term = None if (args.terminate or "O").lower() == "none" else (args.terminate or "O")
        atoms, report = build_inp_like(a=args.a, terminate_with=term,
                                       termination_distance=args.termination_distance)
        extra = {"model": args.model, "c2v_deviation": symmetry_deviation(atoms)}
    else:
        if not (args.atoms or args.formula):
            raise InputError("--lattice needs --atoms N or --formula F")
        atoms, report = build_cluster(
            args.lattice, a=args.a, c=args.c, strain=args.strain, n_atoms=args.atoms,
            formula=args.formula, center=args.center, mode=args.mode,
            terminate_with=args.terminate, termination_distance=args.termination_distance)
        extra = {"lattice": args.lattice}
    check = check_chemistry(atoms)
    try:
        write(str(args.output), atoms, parallel=False)
    except Exception as exc:  # ASE: unknown extension, unwritable path...
        raise InputError(f"{args.output}: cannot write structure ({exc})") from exc
    if args.json:
        print(json.dumps({**report.to_dict(), **extra, "chemistry": check.to_dict(),
                          "output": str(args.output)}, indent=2))
    else:
        dist = ", ".join(f"{k} {v:.3f} Å" for k, v in report.shortest.items())
        print(f"{report.formula} ({report.n_atoms} atoms) -> {args.output}")
        print(f"Cd: {report.n_core_cd} core, {report.n_surface_cd} surface "
              f"(core = {report.shell_size} S within {report.bond_cutoff} Å); "
              f"min Cd coordination {report.min_coordination}")
        print(f"shortest: {dist}")
        if "c2v_deviation" in extra:
            print(f"C2v symmetry: largest deviation {extra['c2v_deviation']:.2g} Å")
        print("chemistry check: " + ("ok" if check.passed else "; ".join(check.flags)))
    return 0
