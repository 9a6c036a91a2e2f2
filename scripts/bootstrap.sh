#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine (or a cluster login node).
#
#   scripts/bootstrap.sh            # system MPI/HDF5 check, .venv, mpi4py, h5py(MPI), xasmpi, FDMNES
#   scripts/bootstrap.sh --test     # ... plus the test extras (pytest)
#
# Every step checks first and does nothing when its result is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
VENV="${XASMPI_VENV:-$here/.venv}"
PY="${PYTHON:-python3}"
extras="${1:-}"
log() { printf '[bootstrap] %s\n' "$*"; }
# tested dependency versions (constraints.txt); XASMPI_CONSTRAINTS= (empty) installs without them
CONSTRAINTS="${XASMPI_CONSTRAINTS-$here/constraints.txt}"
if [ -n "$CONSTRAINTS" ]; then export PIP_CONSTRAINT="$CONSTRAINTS"; fi

# 1. System Open MPI and parallel HDF5 ------------------------------------------------------
need_pkgs=()
command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 || need_pkgs+=(openmpi-bin libopenmpi-dev)
pkg-config --exists hdf5-openmpi 2>/dev/null || need_pkgs+=(libhdf5-openmpi-dev pkg-config)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing system packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    echo "xasmpi needs an MPI compiler wrapper and parallel HDF5 that are missing: ${need_pkgs[*]}" >&2
    echo "  Debian/Ubuntu (as root): apt-get install openmpi-bin libopenmpi-dev libhdf5-openmpi-dev pkg-config" >&2
    echo "  HPC cluster:             module load openmpi hdf5   (a parallel HDF5 build; see README 'Cluster installs')" >&2
    exit 1
  fi
fi

# 1b. Headless Chromium for the report.html browser test (test extra only; skipped without it) -------
if [ "$extras" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium (report.html test)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || log "chromium could not be installed: the report.html browser test will be skipped"
  else
    log "no chromium (install Debian's 'chromium' as root): the report.html browser test will be skipped"
  fi
fi

# 2. Virtual environment ----------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
pip_() { "$VENV/bin/pip" install -q --disable-pip-version-check "$@"; }
vpy() { "$VENV/bin/python" "$@"; }

# 3. mpi4py binary wheel (never compiled from source: that needs >20 GB RAM under build isolation)
if ! vpy -c 'import mpi4py' 2>/dev/null; then
  log "installing mpi4py (binary wheel)"
  pip_ --only-binary=mpi4py mpi4py
fi

# 4. h5py against Debian's libhdf5-openmpi-dev, with MPI ------------------------------------------
if ! vpy -c 'import h5py, sys; sys.exit(0 if h5py.get_config().mpi else 1)' 2>/dev/null; then
  log "building h5py against parallel HDF5 (a few minutes)"
  pip_ --upgrade "numpy>=1.24" "Cython>=3" pkgconfig "setuptools>=77" wheel
  CC=mpicc HDF5_MPI=ON HDF5_PKGCONFIG_NAME="${HDF5_PKGCONFIG_NAME:-hdf5-openmpi}" \
    pip_ --no-binary=h5py --no-build-isolation --force-reinstall --no-deps h5py
  vpy -c 'import h5py; assert h5py.get_config().mpi, "h5py built without MPI"'
fi

# 5. torch, CPU build, pinned before anything can ask for it (the relax extra: CHGNet) -------------
#    (a plain 'torch' requirement may pull a CUDA build of several GB; override with XASMPI_TORCH)
if ! vpy -c 'import torch' 2>/dev/null; then
  log "installing ${XASMPI_TORCH:-torch==2.13.0} (CPU build) for the relax stage"
  pip_ "${XASMPI_TORCH:-torch==2.13.0}"
fi

# 6. xasmpi itself (editable) and its Python dependencies (with the relax extra: CHGNet) ---------
stamp="$VENV/.xasmpi-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || \
   { [ -n "$CONSTRAINTS" ] && [ "$CONSTRAINTS" -nt "$stamp" ]; } || \
   ! vpy -c 'import chgnet' 2>/dev/null || \
   { [ "$extras" = "--test" ] && ! vpy -c 'import pytest' 2>/dev/null; }; then
  log "installing xasmpi and dependencies"
  if [ "$extras" = "--test" ]; then pip_ -e ".[test,relax]"; else pip_ -e ".[relax]"; fi
  touch "$stamp"
fi

# 7. FDMNES: the static Linux binary from the pyfitit 3.1.7 wheel (only that one file) -----------
FDM="$VENV/opt/fdmnes/fdmnes_linux64"
if [ ! -x "$FDM" ]; then
  log "fetching FDMNES binary from the pyfitit==3.1.7 wheel"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" pyfitit==3.1.7
  mkdir -p "$(dirname "$FDM")"
  vpy - "$tmp"/pyfitit-3.1.7-*.whl "$FDM" <<'PYEOF'
import sys, zipfile, shutil, os
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("pyfitit/bin/fdmnes/fdmnes_linux64") as src, open(dest + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
PYEOF
fi
log "ready: $VENV/bin/xasmpi"
