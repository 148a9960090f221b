#!/bin/bash
# Magnify every video in a folder through one running Dask scheduler.
#   cluster/batch.sh tcp://head:8786 footage/ magnified/ -a 10 --low 5 --high 8 --fps 600
# Each file's blocks spread over all workers; a file already done is skipped,
# an interrupted one resumes. Failures are listed at the end; the exit status
# is the number of failures.
set -uo pipefail
scheduler=$1 source=$2 target=$3
shift 3
mkdir -p "$target"
failed=()
for input in "$source"/*; do
  [ -f "$input" ] || continue
  name=$(basename "${input%.*}")
  output="$target/$name.mp4"
  [ -e "$output" ] && { echo "skip $output (exists)"; continue; }
  if ! daskmag magnify "$input" -o "$output" "$@" --scheduler "$scheduler" --no-progress; then
    failed+=("$input")
  fi
done
[ ${#failed[@]} -eq 0 ] || printf 'failed: %s\n' "${failed[@]}"
exit ${#failed[@]}
