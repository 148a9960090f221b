"""Cluster managers: the job scripts dask-jobqueue submits and the DaskCluster that dask-kubernetes creates.

No HPC scheduler or Kubernetes runs here: these check what would be
submitted (the generated scripts and resources), the errors before any work,
and, where SLURM's ``sbatch`` is on this machine with a running controller,
a real one-node batch (see docs/batch.md for what was run).
"""

from __future__ import annotations

import shutil
import subprocess

import dask
import pytest

from daskmag.cluster import WORKER_ENVIRON
from daskmag.errors import UserError
from daskmag.managers import (DEFAULT_MAXIMUM, KINDS, STOCK_DASK_IMAGE, adapt_bounds, jobqueue_cluster,
                              kubernetes_spec, make_cluster)

jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (the 'cluster' extra)")

#: What each kind's script must say for 4 cores, 8 GiB, queue "short", 2 hours.
DIRECTIVES = {
    "slurm": ["#SBATCH -p short", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH -t 02:00:00"],
    "pbs": ["#PBS -q short", "#PBS -l select=1:ncpus=4:mem=8192MB", "#PBS -l walltime=02:00:00"],
    "sge": ["#$ -q short", "#$ -l h_rt=02:00:00"],
    "lsf": ["#BSUB -q short", "#BSUB -n 4", "#BSUB -W 02:00"],
}


def _config(kind, **more):
    return {f"jobqueue.{kind}.cores": 4, f"jobqueue.{kind}.memory": "8GiB", f"jobqueue.{kind}.queue": "short",
            f"jobqueue.{kind}.walltime": "02:00" if kind == "lsf" else "02:00:00",  # LSF: [hours:]minutes f"jobqueue.{kind}.scheduler-options": {"dashboard_address": ":0"},
            **{f"jobqueue.{kind}.{key}": value for key, value in more.items()}}


@pytest.mark.parametrize("kind", ["slurm", "pbs", "sge", "lsf"])
def test_job_scripts_from_the_dask_configuration(kind):
    """Queue, cores, memory and walltime from jobqueue.<kind>; one single-threaded worker per core; daskmag's env."""
    with dask.config.set(_config(kind, **{"job-extra-directives": ["--comment=daskmag-test"]})):
        cluster = jobqueue_cluster(kind)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    lines = script.splitlines()
    for directive in DIRECTIVES[kind]:
        assert directive in lines, (directive, script)
    assert any(line.endswith("--comment=daskmag-test") for line in lines)
    for name, value in WORKER_ENVIRON.items():
        assert f"export {name}={value}" in lines
    worker = [line for line in lines if "distributed.cli.dask_worker" in line]
    assert len(worker) == 1
    assert "--nthreads 1" in worker[0] and "--nworkers 4" in worker[0]
    # the exports come before the worker starts
    assert lines.index(f"export OMP_NUM_THREADS=1") < lines.index(worker[0])


def test_slurm_gpu_and_a_configured_prologue_are_kept():
    with dask.config.set(_config("slurm", **{"job-extra-directives": ["--gres=gpu:1"], "processes": 1,
                                             "job-script-prologue": ["module load ffmpeg"]})):
        cluster = jobqueue_cluster("slurm")
        try:
            lines = cluster.job_script().splitlines()
        finally:
            cluster.close()
    assert "#SBATCH --gres=gpu:1" in lines
    assert "module load ffmpeg" in lines
    assert lines.index("export MALLOC_TRIM_THRESHOLD_=1073741824") < lines.index("module load ffmpeg")
    worker = next(line for line in lines if "dask_worker" in line)
    assert "--nthreads 4" in worker  # processes configured: 1 process of 4 threads, as asked


def test_jobqueue_without_cores_and_memory_is_one_line():
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        with pytest.raises(UserError, match=r"jobqueue\.slurm\.cores and jobqueue\.slurm\.memory"):
            make_cluster("slurm")


def test_adaptive_bounds_from_flags_or_configuration():
    assert adapt_bounds() == (1, DEFAULT_MAXIMUM)
    with dask.config.set({"daskmag.adapt.minimum": 2, "daskmag.adapt.maximum": 40}):
        assert adapt_bounds() == (2, 40)
        assert adapt_bounds(0, 5) == (0, 5)
    with pytest.raises(UserError, match="--max-workers"):
        adapt_bounds(4, 2)
    with pytest.raises(UserError, match="--min-workers"):
        adapt_bounds(-1, 2)


def test_adapt_on_a_jobqueue_cluster_sets_the_bounds():
    """The manager's own adaptive loop gets daskmag's bounds (minimum 0: no job is submitted here)."""
    with dask.config.set(_config("slurm")):
        cluster = jobqueue_cluster("slurm")
        try:
            adaptive = cluster.adapt(minimum=0, maximum=6)
            assert (adaptive.minimum, adaptive.maximum) == (0, 6)
            assert cluster.scheduler_address.startswith("tcp://")
        finally:
            cluster.close()


def test_kubernetes_spec_from_the_dask_configuration():
    pytest.importorskip("dask_kubernetes", reason="dask-kubernetes is not installed (the 'cluster' extra)")
    config = {"kubernetes.image": "registry.example/daskmag:0.1",
              "kubernetes.resources": {"limits": {"memory": "2500Mi"}, "requests": {"cpu": "1", "memory": "2Gi"}},
              "kubernetes.env": {"EXTRA": "yes"},
              "daskmag.kubernetes.volumes": [{"name": "footage", "persistentVolumeClaim": {"claimName": "f"}}],
              "daskmag.kubernetes.volume-mounts": [{"name": "footage", "mountPath": "/footage"}]}
    with dask.config.set(config):
        spec = kubernetes_spec(name="daskmag-test", n_workers=2)
    assert spec["kind"] == "DaskCluster" and spec["metadata"]["name"] == "daskmag-test"
    worker = spec["spec"]["worker"]
    assert worker["replicas"] == 2
    container = worker["spec"]["containers"][0]
    assert container["image"] == "registry.example/daskmag:0.1"
    assert container["args"][:4] == ["dask", "worker", "--nthreads", "1"]
    assert container["resources"]["limits"]["memory"] == "2500Mi"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["EXTRA"] == "yes" and env["MALLOC_TRIM_THRESHOLD_"] == WORKER_ENVIRON["MALLOC_TRIM_THRESHOLD_"]
    assert worker["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "f"
    assert container["volumeMounts"] == [{"name": "footage", "mountPath": "/footage"}]
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    assert scheduler["args"][:2] == ["dask", "scheduler"]  # distributed installs `dask`, not `dask-scheduler`
    assert scheduler["image"] == container["image"]


def test_kubernetes_needs_an_image_with_daskmag():
    pytest.importorskip("dask_kubernetes", reason="dask-kubernetes is not installed (the 'cluster' extra)")
    with dask.config.set({"kubernetes.image": STOCK_DASK_IMAGE}):
        with pytest.raises(UserError, match="kubernetes.image"):
            make_cluster("kubernetes")


def test_unknown_kind():
    assert KINDS == ("slurm", "pbs", "sge", "lsf", "kubernetes")
    with pytest.raises(UserError, match="unknown cluster kind"):
        make_cluster("mesos")


def test_batch_cli_cluster_errors_are_one_line(tmp_path, capsys):
    from daskmag.cli import main

    clip = tmp_path / "a.mkv"
    clip.write_bytes(b"")
    with dask.config.set({"jobqueue.pbs.cores": None, "jobqueue.pbs.memory": None}):
        code = main(["batch", str(clip), "-o", str(tmp_path / "out"), "--low", "3", "--high", "7",
                     "--cluster", "pbs"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("daskmag: error: --cluster pbs: set the cores") and err.count("\n") == 1


def _slurm_running():
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip("SLURM (sbatch, sinfo) is not installed on this machine")
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.skip("SLURM is installed but no controller answers (start one: cluster/slurm-one-node.sh)")


def test_real_slurm_accepts_the_job_script():
    """Where a SLURM controller runs, it accepts the generated script (`sbatch --test-only`)."""
    _slurm_running()
    with dask.config.set(_config("slurm", queue=None, cores=1, memory="500MB", walltime="00:05:00")):
        cluster = jobqueue_cluster("slurm")
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    result = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_real_slurm_batch(tmp_path):
    """`daskmag batch --cluster slurm` on a running SLURM: workers are SLURM jobs, scaled adaptively."""
    import os
    import sys

    from daskmag.io import probe, write_array
    from daskmag.synthetic import translating_clip

    _slurm_running()
    for seed in range(2):
        write_array(translating_clip(40, 48, 64, 30.0, ((0.3, 2.0),), seed=seed), tmp_path / f"c{seed}.mkv", 30)
    env = dict(os.environ, DASK_JOBQUEUE__SLURM__CORES="1", DASK_JOBQUEUE__SLURM__MEMORY="1GiB",
               DASK_JOBQUEUE__SLURM__WALLTIME="00:10:00",
               DASK_JOBQUEUE__SLURM__LOG_DIRECTORY=str(tmp_path / "logs"),
               DASK_JOBQUEUE__SLURM__SCHEDULER_OPTIONS='{"dashboard_address": ":0"}')
    result = subprocess.run([sys.executable, "-m", "daskmag", "batch", str(tmp_path / "c0.mkv"),
                             str(tmp_path / "c1.mkv"), "-o", str(tmp_path / "out"), "--low", "1", "--high", "4",
                             "--format", "mkv", "--cluster", "slurm", "--min-workers", "1", "--max-workers", "2",
                             "--no-progress"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "2 done, 0 skipped, 0 failed" in result.stderr
    assert [probe(tmp_path / "out" / f"c{seed}.mkv").n_frames for seed in range(2)] == [40, 40]
    logs = list((tmp_path / "logs").glob("dask-worker-*.err"))
    assert logs, "no worker ran as a SLURM job"


def test_recipes_run_one_batch_through_a_manager():
    """cluster/: the sbatch and PBS scripts and the Kubernetes Job each run one `daskmag batch --cluster`."""
    from pathlib import Path

    import yaml

    folder = Path(__file__).resolve().parents[1] / "cluster"
    for script, kind in (("slurm.sbatch", "slurm"), ("pbs.sh", "pbs")):
        text = (folder / script).read_text()
        assert subprocess.run(["bash", "-n", str(folder / script)]).returncode == 0
        assert f"--cluster {kind}" in text and "daskmag batch" in text
    documents = list(yaml.safe_load_all((folder / "kubernetes.yaml").read_text()))
    job = next(d for d in documents if d["kind"] == "Job")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["daskmag", "batch"] and "kubernetes" in command
    config = yaml.safe_load(next(d for d in documents if d["kind"] == "ConfigMap")["data"]["kubernetes.yaml"])
    with dask.config.set(config):  # the recipe's configuration gives a spec with the footage mounted
        pytest.importorskip("dask_kubernetes")
        spec = kubernetes_spec(name="recipe")
    mounts = spec["spec"]["worker"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "footage", "mountPath": "/footage"} in mounts
    compose = yaml.safe_load((folder / "compose.yaml").read_text())
    assert set(compose["services"]) == {"scheduler", "worker", "batch"}
    assert compose["services"]["batch"]["command"][:2] == ["daskmag", "batch"]
