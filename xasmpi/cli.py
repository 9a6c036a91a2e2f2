"""Command-line entry point: ``xasmpi <command> ...`` (also ``python -m xasmpi``).

Each sub-command lives in ``xasmpi/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func=run(args) -> int``.
"""
from __future__ import annotations

import os

# One BLAS/OpenMP thread per MPI rank unless the user says otherwise: HPC jobs run one
# rank per core, and it keeps batched floating-point results identical for any rank count.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import importlib
import logging
import sys

from xasmpi import __version__
from xasmpi.errors import XasmpiError

COMMANDS = (
    "run", "summary", "doctor", "jobscript", "demo", "report",
    "stoich", "angle", "angles", "cluster", "rank", "compare",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xasmpi",
        description="X-ray absorption spectra of nanoclusters to atomic structure, at HPC scale.",
    )
    parser.add_argument("--version", action="version", version=f"xasmpi {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"xasmpi.commands.{name}")
        except ModuleNotFoundError as exc:  # command not built yet
            if exc.name != f"xasmpi.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        raise SystemExit(2)
    # our own logger and handler: libraries (larch) reset the root logger's level on import
    log = logging.getLogger("xasmpi")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO)
    try:
        code = args.func(args)
    except XasmpiError as exc:
        if args.debug:
            raise
        print(f"xasmpi: error: {exc}", file=sys.stderr)
        if getattr(exc, "hard_exit", False):  # e.g. disk full: HDF5's exit-time cleanup would crash
            from xasmpi.external import kill_all

            kill_all()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        print("xasmpi: interrupted", file=sys.stderr)
        raise SystemExit(130)
    raise SystemExit(code or 0)
