"""Cluster managers: workers from an HPC job queue or from Kubernetes, scaled to the work.

``daskmag batch --cluster KIND`` starts its workers through the Dask
ecosystem's cluster managers instead of a scheduler started by hand:

* ``slurm``, ``pbs``, ``sge``, ``lsf``: `dask-jobqueue
  <https://jobqueue.dask.org>`_.  The scheduler runs in the batch's own
  process (the one ``sbatch`` started); workers are jobs that the manager
  submits and cancels.  Queue, cores, memory, walltime, GPUs and extra
  directives are Dask configuration: ``jobqueue.<kind>.*`` in
  ``~/.config/dask/jobqueue.yaml`` or ``DASK_JOBQUEUE__SLURM__QUEUE=...``.
* ``kubernetes``: `dask-kubernetes' operator
  <https://kubernetes.dask.org>`_.  A ``DaskCluster`` resource (scheduler
  pod and worker pods) is created in the current namespace and removed at
  the end; image, namespace, resources and environment are the
  ``kubernetes.*`` configuration (``kubernetes.image`` must be an image with
  daskmag, e.g. one built from ``cluster/Dockerfile``).

Both scale adaptively between ``daskmag.adapt.minimum`` and
``daskmag.adapt.maximum`` workers (``--min-workers``/``--max-workers``):
idle workers (a batch's last file) are given back, and jobs are asked for
only while there is work.  Every worker runs one thread
(:data:`daskmag.cluster.WORKER_ENVIRON` in its environment) and gets the
:class:`daskmag.cluster.WorkerSetup` plugin.

Install with ``pip install "daskmag[cluster]"``.
"""

from __future__ import annotations

import contextlib
import sys

import dask

from .errors import UserError

#: Job-queue kinds (dask-jobqueue class names).
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}
#: Every ``--cluster`` kind.
KINDS = (*JOBQUEUE, "kubernetes")
#: Adaptive bounds when neither the flags nor ``daskmag.adapt.*`` give them.
DEFAULT_MINIMUM, DEFAULT_MAXIMUM = 1, 8
#: dask-kubernetes' own default image: plain Dask, without daskmag.
STOCK_DASK_IMAGE = "ghcr.io/dask/dask:latest"


def adapt_bounds(minimum: int | None = None, maximum: int | None = None) -> tuple[int, int]:
    """Adaptive scaling's bounds in workers: the arguments, else ``daskmag.adapt.*``, else 1 and 8.

    Raises
    ------
    UserError
        ``minimum`` below 0 or above ``maximum``, or ``maximum`` below 1.
    """
    if minimum is None:
        minimum = dask.config.get("daskmag.adapt.minimum", DEFAULT_MINIMUM)
    if maximum is None:
        maximum = dask.config.get("daskmag.adapt.maximum", max(DEFAULT_MAXIMUM, int(minimum)))
    minimum, maximum = int(minimum), int(maximum)
    if minimum < 0:
        raise UserError(f"--min-workers must be at least 0, got {minimum}")
    if maximum < 1 or maximum < minimum:
        raise UserError(f"--max-workers must be at least 1 and at least --min-workers ({minimum}), got {maximum}")
    return minimum, maximum


def _prologue() -> list[str]:
    from .cluster import WORKER_ENVIRON

    return [f"export {name}={value}" for name, value in WORKER_ENVIRON.items()]


def jobqueue_cluster(kind: str, **overrides):
    """A dask-jobqueue cluster for ``kind`` (no job submitted yet), configured the Dask way.

    Every option comes from ``jobqueue.<kind>`` in the Dask configuration
    unless given in ``overrides`` (dask-jobqueue's keyword arguments).
    daskmag adds, before the configured prologue, the exports of
    :data:`daskmag.cluster.WORKER_ENVIRON`, and makes each worker one
    process of one thread (``processes = cores``) unless ``processes`` is
    configured.

    Raises
    ------
    UserError
        dask-jobqueue is not installed, or cores and memory per job are not configured.
    """
    try:
        import dask_jobqueue
    except ImportError:
        raise UserError(f"--cluster {kind} needs dask-jobqueue: pip install 'daskmag[cluster]'") from None
    cls = getattr(dask_jobqueue, JOBQUEUE[kind])
    config = dask.config.get(f"jobqueue.{kind}", {})
    cores = overrides.get("cores", config.get("cores"))
    memory = overrides.get("memory", config.get("memory"))
    if not cores or not memory:
        raise UserError(f"--cluster {kind}: set the cores and memory of one job in the Dask configuration "
                        f"(jobqueue.{kind}.cores and jobqueue.{kind}.memory in ~/.config/dask/jobqueue.yaml, "
                        f"or DASK_JOBQUEUE__{kind.upper()}__CORES=...); see docs/batch.md")
    kwargs = dict(overrides)
    if kwargs.get("processes", config.get("processes")) is None:
        kwargs["processes"] = int(cores)  # one single-threaded worker per core
    prologue = overrides.get("job_script_prologue", config.get("job-script-prologue")) or []
    kwargs["job_script_prologue"] = _prologue() + list(prologue)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise UserError(f"--cluster {kind}: {' '.join(str(exc).split())}") from None


def kubernetes_spec(name: str | None = None, n_workers: int | None = None) -> dict:
    """The ``DaskCluster`` resource that ``--cluster kubernetes`` creates (a plain dict).

    From the ``kubernetes.*`` Dask configuration (image, resources, env,
    worker-command, scheduler-service-type); daskmag adds
    :data:`daskmag.cluster.WORKER_ENVIRON` to the environment, runs each
    worker with one thread, and mounts ``daskmag.kubernetes.volumes`` at
    ``daskmag.kubernetes.volume-mounts`` in the workers (Kubernetes' own
    ``volumes`` and ``volumeMounts`` entries): the workers read the inputs
    and write the outputs at the same paths as the batch's pod.

    Raises
    ------
    UserError
        dask-kubernetes is not installed, or ``kubernetes.image`` is still
        the stock Dask image (which has no daskmag).
    """
    try:
        from dask_kubernetes.operator import make_cluster_spec
    except ImportError:
        raise UserError("--cluster kubernetes needs dask-kubernetes: pip install 'daskmag[cluster]'") from None
    from .cluster import WORKER_ENVIRON

    image = dask.config.get("kubernetes.image", STOCK_DASK_IMAGE)
    if not image or image == STOCK_DASK_IMAGE:
        raise UserError("--cluster kubernetes: set kubernetes.image in the Dask configuration to an image "
                        "with daskmag installed (build one from cluster/Dockerfile)")
    env = dict(WORKER_ENVIRON)
    configured = dask.config.get("kubernetes.env", {}) or {}
    if isinstance(configured, dict):
        env.update({key: str(value) for key, value in configured.items()})
        env = [{"name": key, "value": value} for key, value in env.items()]
    else:  # a list of {"name", "value"} entries
        env = [{"name": key, "value": value} for key, value in env.items()] + list(configured)
    command = dask.config.get("kubernetes.worker-command", "dask-worker")
    command = command.split() if isinstance(command, str) else list(command)
    if command[:1] == ["dask-worker"]:  # dask-kubernetes' default; distributed now installs only `dask`
        command = ["dask", "worker", *command[1:]]
    if "--nthreads" not in command:
        command += ["--nthreads", "1"]
    name = name or dask.config.get("kubernetes.name", "daskmag-{uuid}").format(
        user=_user(), uuid=_short_uuid())
    spec = make_cluster_spec(
        name=name, image=image, n_workers=n_workers if n_workers is not None else 0,
        resources=dask.config.get("kubernetes.resources", None) or None, env=env,
        worker_command=command,
        scheduler_service_type=dask.config.get("kubernetes.scheduler-service-type", "ClusterIP"))
    for container in spec["spec"]["scheduler"]["spec"]["containers"]:
        if container.get("args", [])[:1] == ["dask-scheduler"]:  # as the worker command
            container["args"] = ["dask", "scheduler", *container["args"][1:]]
    # the workers read the inputs and write the outputs' parts at the client's paths
    volumes = dask.config.get("daskmag.kubernetes.volumes", []) or []
    mounts = dask.config.get("daskmag.kubernetes.volume-mounts", []) or []
    if volumes or mounts:
        pod = spec["spec"]["worker"]["spec"]
        pod["volumes"] = list(pod.get("volumes", [])) + list(volumes)
        for container in pod["containers"]:
            container["volumeMounts"] = list(container.get("volumeMounts", [])) + list(mounts)
    return spec


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - a container without a passwd entry
        return "daskmag"


def _short_uuid() -> str:
    import uuid

    return uuid.uuid4().hex[:10]


def kubernetes_cluster(n_workers: int = 0, **overrides):
    """A dask-kubernetes operator ``KubeCluster`` from :func:`kubernetes_spec` (creates the resource).

    Raises
    ------
    UserError
        As :func:`kubernetes_spec`, or no Kubernetes cluster reachable.
    """
    spec = kubernetes_spec(n_workers=n_workers)
    from dask_kubernetes.operator import KubeCluster

    try:
        return KubeCluster(custom_cluster_spec=spec, **overrides)
    except Exception as exc:  # noqa: BLE001 - kubeconfig missing, API unreachable, forbidden
        raise UserError(f"--cluster kubernetes: cannot create the Dask cluster ({' '.join(str(exc).split())})") \
            from None


def make_cluster(kind: str, **overrides):
    """A cluster manager for ``kind`` (:data:`KINDS`), not yet scaled.

    Raises
    ------
    UserError
        An unknown kind, a missing package, or missing configuration.
    """
    if kind in JOBQUEUE:
        return jobqueue_cluster(kind, **overrides)
    if kind == "kubernetes":
        return kubernetes_cluster(**overrides)
    raise UserError(f"unknown cluster kind {kind!r}: use one of {', '.join(KINDS)}")


@contextlib.contextmanager
def managed_client(kind: str, *, minimum: int | None = None, maximum: int | None = None, quiet: bool = False,
                   **overrides):
    """A ``distributed.Client`` on a cluster that ``kind``'s manager starts and scales adaptively.

    Parameters
    ----------
    kind : {"slurm", "pbs", "sge", "lsf", "kubernetes"}
    minimum, maximum : int, optional
        Adaptive bounds in workers (:func:`adapt_bounds`).
    quiet : bool
        Do not print the dashboard link.
    **overrides
        Keyword arguments for the manager (they win over the configuration).

    Raises
    ------
    UserError
        As :func:`make_cluster`, or bad bounds.
    """
    from distributed import Client

    from .cluster import WorkerSetup

    minimum, maximum = adapt_bounds(minimum, maximum)
    cluster = make_cluster(kind, **overrides)
    try:
        cluster.adapt(minimum=minimum, maximum=maximum)
        with Client(cluster) as client:
            client.register_plugin(WorkerSetup())
            if not quiet:
                print(f"dashboard: {client.dashboard_link} ({kind}: {minimum} to {maximum} workers, adaptive)",
                      file=sys.stderr)
            yield client
    finally:
        cluster.close()
