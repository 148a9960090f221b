#!/bin/bash
# One daskmag batch on PBS/Torque: this job runs the client and the scheduler;
# dask-jobqueue submits the workers as PBS jobs (jobqueue.pbs in
# ~/.config/dask/jobqueue.yaml: queue, cores, memory, walltime, resource-spec).
#   qsub -v INPUT=footage/,OUTPUT=magnified/,OPTIONS="-a 10 --low 5 --high 8" cluster/pbs.sh
#PBS -N daskmag-batch
#PBS -l select=1:ncpus=1:mem=4gb
#PBS -l walltime=24:00:00
set -uo pipefail
cd "$PBS_O_WORKDIR"
# shellcheck disable=SC2086  # OPTIONS is a list of flags
daskmag batch "$INPUT" -o "$OUTPUT" $OPTIONS --cluster pbs --min-workers "${MIN_WORKERS:-1}" \
    --max-workers "${MAX_WORKERS:-32}" --no-progress
