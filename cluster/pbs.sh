#!/bin/bash
# Magnify one long video on a PBS/Torque allocation.
#   qsub -v INPUT=long.mp4,OUTPUT=long-x10.mp4,OPTIONS="-a 10 --low 5 --high 8" cluster/pbs.sh
#PBS -N daskmag
#PBS -l select=4:ncpus=8:mem=16gb
#PBS -l walltime=04:00:00
set -euo pipefail
cd "$PBS_O_WORKDIR"
export MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_MMAP_THRESHOLD_=1073741824
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
scheduler_file=$PWD/daskmag-scheduler-$PBS_JOBID.json

dask scheduler --scheduler-file "$scheduler_file" &
sleep 5
# one worker process per core on every node of the allocation
pbsdsh -- bash -lc "cd $PWD && dask worker --scheduler-file $scheduler_file --nworkers 8 --nthreads 1 --memory-limit 2GiB" &
sleep 10

address=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['address'])" "$scheduler_file")
daskmag magnify "$INPUT" -o "$OUTPUT" $OPTIONS --scheduler "$address" --no-progress
