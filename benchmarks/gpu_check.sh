#!/usr/bin/env bash
# The one prepared device check of the GPU path (docs/gpu.md), for a fresh GPU
# machine with no network: installs the wheels carried in .whl/ (made here by
# benchmarks/gpu_wheels.sh) into /tmp/site, runs the GPU tests, runs the GPU
# benchmark, and prints one table, all within 8 minutes.  Run through the
# device tool from the repository root:
#
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# Logs and the JSON record go to $OUT (the device tool's folder that comes
# back) or benchmarks/results/.
set -uo pipefail
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-480}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="${OUT:-$ROOT/benchmarks/results}"
mkdir -p "$RESULTS"
elapsed() { echo $(( $(date +%s) - START )); }

ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_check: no wheels in .whl/: run benchmarks/gpu_wheels.sh here and carry .whl"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "gpu_check: installing the carried wheels failed"; exit 2; }
export PYTHONPATH="/tmp/site:$ROOT" PYTHONUNBUFFERED=1 DASKMAG_UNVERIFIED_GPU=1
# the tests and benchmarks look for ../shared/data/guitar.mp4 beside the checkout
if [ -f .whl/guitar.mp4 ] && [ ! -f ../shared/data/guitar.mp4 ]; then
  mkdir -p ../shared/data && cp .whl/guitar.mp4 ../shared/data/guitar.mp4
fi

echo "== machine ($(elapsed) s)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -4
python3 - <<'PY' 2>&1
import importlib, sys
print("python", sys.version.split()[0])
for name in ("numpy", "scipy", "cupy", "dask", "distributed", "dask_cuda", "av", "zarr", "array_api_compat", "pytest"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except Exception as exc:
        print(f"{name} MISSING: {exc}")
from daskmag import gpu
print("device:", gpu.device_problem() or "usable", gpu.usable_devices())
PY

echo "== GPU tests ($(elapsed) s)"
timeout 200 python3 -m pytest -q -p no:cacheprovider -o addopts="-ra" tests/test_gpu.py \
  tests/kernels/test_backend.py tests/kernels/test_array_api.py tests/kernels/test_riesz.py tests/graph/test_colour.py \
  -k "gpu or cupy or test_gpu" 2>&1 | tee "$RESULTS/gpu_tests.log" | tail -40
TESTS=${PIPESTATUS[0]}
echo "pytest exit status: $TESTS"

echo "== GPU benchmark ($(elapsed) s)"
LEFT=$(( BUDGET - $(elapsed) - 20 ))
timeout $(( LEFT + 15 )) python3 benchmarks/gpu_bench.py --out "$RESULTS" --budget "$LEFT" 2>&1 \
  | tee "$RESULTS/gpu_bench.log" | grep -v '^generating\|^  done'
BENCH=${PIPESTATUS[0]}

echo "== done in $(elapsed) s: tests exit $TESTS, benchmark exit $BENCH"
[ "$TESTS" = 0 ] && [ "$BENCH" = 0 ]
