"""``xasmpi jobscript``: a ready-to-submit Grid Engine (Apocrita) or Slurm script."""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from xasmpi.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("jobscript", help="write a Grid Engine (SGE/Apocrita) or Slurm submission script")
    p.add_argument("job", help="TOML job file")
    p.add_argument("--scheduler", choices=("sge", "slurm"), required=True)
    p.add_argument("--ranks", type=int, required=True, help="MPI ranks (cores)")
    p.add_argument("--hours", type=float, default=1.0, help="wall-clock limit in hours (default 1)")
    p.add_argument("--mem-per-rank", type=float, default=2.0, metavar="G",
                   help="memory per rank in GB (default 2)")
    p.add_argument("--pe", choices=("smp", "parallel"),
                   help="SGE parallel environment (default: smp up to 48 ranks, else parallel)")
    p.add_argument("--modules", default="openmpi hdf5",
                   help="space-separated modules to load (default: 'openmpi hdf5')")
    p.add_argument("--name", help="job name (default: from the job file name)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="--set options passed on to xasmpi run")
    p.add_argument("--venv", default=sys.prefix,
                   help="virtual environment to activate on the compute nodes (default: the current one)")
    p.add_argument("-o", "--output", help="write the script here (default: print it)")
    p.set_defaults(func=run)


def _hms(hours: float) -> str:
    s = int(round(hours * 3600))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render(*, scheduler: str, job: str, ranks: int, hours: float, mem_per_rank: float, pe: str | None,
           modules: str, name: str, overrides: list[str], venv: str) -> str:
    """The submission script text."""
    if ranks < 1:
        raise ConfigError(f"--ranks {ranks}: must be at least 1")
    if hours <= 0:
        raise ConfigError(f"--hours {hours}: must be positive")
    if mem_per_rank <= 0:
        raise ConfigError(f"--mem-per-rank {mem_per_rank}: must be positive")
    sets = "".join(f" --set {shlex.quote(o)}" for o in overrides)
    mods = "\n".join(f"module load {m}" for m in modules.split())
    common = f"""
# Load the same MPI and parallel HDF5 that the venv's h5py and MPI bindings were built against.
{mods}
source "{venv}/bin/activate"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE   # parallel HDF5 on NFS/Lustre; xasmpi locks the output itself

# Resubmitting this script resumes: finished tasks are kept in <output>.journal/.
"""
    if scheduler == "sge":
        pe = pe or ("smp" if ranks <= 48 else "parallel")
        mem = f"{mem_per_rank:g}G"
        return f"""#!/bin/bash
# Grid Engine script (Apocrita conventions) written by `xasmpi jobscript`.
#$ -N {name}
#$ -cwd
#$ -j y
#$ -pe {pe} {ranks}
#$ -l h_rt={_hms(hours)}
#$ -l h_vmem={mem}
{common}
mpirun -np $NSLOTS xasmpi run {shlex.quote(job)}{sets}
"""
    return f"""#!/bin/bash
# Slurm script written by `xasmpi jobscript`.
#SBATCH --job-name={name}
#SBATCH --ntasks={ranks}
#SBATCH --time={_hms(hours)}
#SBATCH --mem-per-cpu={int(round(mem_per_rank * 1024))}M
#SBATCH --output=%x-%j.out
{common}
srun xasmpi run {shlex.quote(job)}{sets}
"""


def run(args) -> int:
    from xasmpi.config import load_job

    load_job(args.job, args.overrides)  # refuse a broken job before it sits in a queue
    text = render(scheduler=args.scheduler, job=args.job, ranks=args.ranks, hours=args.hours,
                  mem_per_rank=args.mem_per_rank, pe=args.pe, modules=args.modules,
                  name=args.name or Path(args.job).stem, overrides=args.overrides, venv=args.venv)
    if args.output:
        Path(args.output).write_text(text)
        os.chmod(args.output, 0o755)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0
