#!/usr/bin/env bash
# Download, here, the wheels that benchmarks/gpu_check.sh installs on a fresh
# GPU machine (Python 3.12, x86-64, no network; CuPy, NumPy, SciPy, pandas,
# pytest, psutil and nvidia-ml-py are already there; dask, distributed,
# dask-cuda, zarr, PyAV and array-api-compat are not).  They go to .whl/ (git-ignored) with
# guitar.mp4 from ../shared/data when it is there, and travel with the
# device tool's `carry: [".whl"]`: at most 64 MiB together with the working
# tree, which this script checks.
#
#   bash benchmarks/gpu_wheels.sh            # then the device call in docs/gpu.md
#
# One version of each package (two stop the whole install there); the pins
# are consistent: dask-cuda 26.10 requires rapids-dask-dependency 26.10,
# which pins dask and distributed to 2026.7.1 (tests/test_gpu.py checks the
# downloaded wheels' requirements against each other).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.whl"
PYTHON="${PYTHON:-python3}"
LIMIT_MIB=64

PINS=(
  dask==2026.7.1
  distributed==2026.7.1
  dask-cuda==26.10.0
  rapids-dask-dependency==26.10.0
  zarr==3.1.6
  numcodecs==0.16.6
  donfig==0.8.1.post1
  google-crc32c==1.9.0
  av==18.1.0
  partd==1.4.2
  locket==1.0.0
  tblib==3.2.2
  zict==3.0.0
  tornado==6.6.1
  array-api-compat==1.16.0
)

mkdir -p "$DEST"
grep -qx '/.whl/' "$ROOT/.gitignore" 2>/dev/null || grep -qx '.whl/' "$ROOT/.gitignore" || {
  echo "gpu_wheels: .whl/ must be git-ignored (add it to .gitignore)" >&2; exit 1; }
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${PINS[@]}"

# keep only the pinned versions (an older download would make two of one package)
for whl in "$DEST"/*.whl; do
  base="$(basename "$whl")"
  name="$(echo "${base%%-*}" | tr '_' '-' | tr 'A-Z' 'a-z')"
  version="$(echo "$base" | cut -d- -f2)"
  keep=0
  for pin in "${PINS[@]}"; do
    [ "${pin%%==*}" = "$name" ] && [ "${pin##*==}" = "$version" ] && keep=1
  done
  [ "$keep" = 1 ] || { echo "gpu_wheels: removing unpinned $base"; rm -f "$whl"; }
done

GUITAR="$ROOT/../shared/data/guitar.mp4"
if [ -f "$GUITAR" ]; then
  cp -f "$GUITAR" "$DEST/guitar.mp4"
else
  echo "gpu_wheels: $GUITAR is absent: the GPU check will skip the guitar cases" >&2
fi

count="$(ls "$DEST"/*.whl | wc -l)"
[ "$count" = "${#PINS[@]}" ] || { echo "gpu_wheels: expected ${#PINS[@]} wheels, have $count" >&2; exit 1; }
carried=$(du -sb "$DEST" | cut -f1)
tree=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((carried + tree))
printf 'gpu_wheels: %d wheels, .whl/ %.1f MiB + working tree %.1f MiB = %.1f MiB of %d MiB\n' \
  "$count" "$(echo "$carried / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" \
  "$(echo "$total / 1048576" | bc -l)" "$LIMIT_MIB"
[ "$total" -le $((LIMIT_MIB * 1048576)) ] || { echo "gpu_wheels: over the ${LIMIT_MIB} MiB a device call carries" >&2; exit 1; }
