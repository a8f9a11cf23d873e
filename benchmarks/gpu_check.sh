#!/usr/bin/env bash
# Every GPU check in one run (benchmarks/gpu_check.py), for the short device sessions: about 8 minutes at most.
#   benchmarks/gpu_check.sh             on a CUDA machine (the repository root is the working directory)
#   benchmarks/gpu_check.sh --dry-run   anywhere: tiny sizes on the CPU, to know the script works first
# The device image has torch, CuPy and numba-cuda but not this package's other requirements: install what is
# missing without dependencies (nothing can be downloaded there; only what is carried arrives).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
python -c "import pose_stream" || { echo "gpu_check: pose_stream does not import" >&2; exit 2; }
exec python benchmarks/gpu_check.py "$@"
