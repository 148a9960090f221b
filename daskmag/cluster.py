"""Where the work runs: a local cluster, or an existing Dask scheduler.

Worker setup lives here in one place, as in dask-cuda: :class:`WorkerSetup`
is a worker plugin that the client registers on every worker, local or
remote (``dask worker`` processes behind ``--scheduler``, and workers that
join later), so every worker gets the same memory settings.  Local worker
processes also get :data:`WORKER_ENVIRON` before they start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from distributed.diagnostics.plugin import WorkerPlugin

from .errors import UserError


#: Environment of local worker processes.  distributed's default makes glibc
#: hand freed memory back to the OS at once (MALLOC_TRIM_THRESHOLD_=64 KiB);
#: the kernels free and re-allocate blocks of hundreds of MiB, so that setting
#: turns every block into page faults (measured: 35 instead of 52 frames/s
#: per process on guitar.mp4).  Keeping freed memory for reuse costs no extra
#: peak memory: the next block needs as much again.  One malloc arena and no
#: mmap'd blocks, as :func:`daskmag._process.tune_malloc` (the worker thread's
#: own arena would mmap every block over 64 MiB afresh).
WORKER_ENVIRON = {
    "MALLOC_TRIM_THRESHOLD_": str(2**30),
    "MALLOC_MMAP_THRESHOLD_": str(2**30),
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMPY_MADVISE_HUGEPAGE": "0",  # see daskmag._process.small_pages
}


#: Tasks in flight per worker thread before the local scheduler queues
#: "root-ish" tasks (distributed's default is 1.1).  The staged graph's small
#: slicing tasks (a chunk's rows of a group's phase shifts) count as root-ish:
#: queued behind the encodes that fill every slot, a block's synthesis waited
#: for them, and a guitar.mp4 run ended on one thread.  The reads, the real
#: root tasks, stay bounded by the writer's window of blocks in flight.
#: A value the user set (not distributed's default) is kept.
WORKER_SATURATION = 4.0


class _QuietUserErrors(logging.Filter):
    """Drop a worker's "Compute Failed" log of a task that raised a :class:`UserError`.

    The client re-raises the error and the CLI prints it in one line; the
    worker's log would repeat it with a traceback.  Other failures are kept.
    """

    def filter(self, record) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (str(record.msg).startswith("Compute Failed") and len(args) > 3
                    and str(args[3]).startswith(f"{UserError.__name__}("))


def keep_freed_memory() -> bool:
    """Keep freed memory in this process for the next block (glibc only).

    :func:`daskmag._process.tune_malloc`: one arena, no mmap'd blocks, a
    high trim threshold.  For threaded workers, which live in this process;
    returns whether it worked (False outside glibc, or with
    ``DASKMAG_TUNE_PROCESS=0``).
    """
    from ._process import tune_malloc

    return tune_malloc()


def worker_environ() -> dict:
    """:data:`WORKER_ENVIRON`, less its malloc settings when ``DASKMAG_TUNE_PROCESS=0``."""
    from ._process import enabled

    if enabled():
        return dict(WORKER_ENVIRON)
    return {name: value for name, value in WORKER_ENVIRON.items() if not name.startswith("MALLOC_")}


#: What :class:`WorkerSetup` did in this process (read by tests and ``client.run``).
SETUP_STATE: dict = {}


class WorkerSetup(WorkerPlugin):
    """Set up a worker for daskmag's kernels: malloc settings, quiet user errors.

    Registered by :func:`dask_client` on every worker of the cluster it
    connects to, local or remote; a worker that joins later gets it too.
    Applies the glibc malloc settings in the worker's process
    (:func:`keep_freed_memory`), one thread for BLAS pools while it runs
    (:func:`daskmag._process.limit_blas_threads`; ``DASKMAG_TUNE_PROCESS=0``
    in the worker's environment turns both off) and drops the worker's log of tasks
    that failed on a :class:`UserError` (the client reports those in one line).
    """

    name = "daskmag-worker-setup"
    idempotent = True

    def setup(self, worker):
        from ._process import limit_blas_threads

        SETUP_STATE["malloc"] = keep_freed_memory()
        SETUP_STATE["blas"] = limit_blas_threads()  # the variables for libraries loaded later
        if "log_filter" not in SETUP_STATE:
            SETUP_STATE["log_filter"] = _QuietUserErrors()
            logging.getLogger("distributed.worker").addFilter(SETUP_STATE["log_filter"])
        SETUP_STATE.setdefault("workers", []).append(worker.address)
        SETUP_STATE["running"] = SETUP_STATE.get("running", 0) + 1

    def teardown(self, worker):
        from ._process import restore_blas_threads

        # the last worker of this process gives a caller's BLAS pools back
        # (threaded workers live in the caller's process: a notebook's NumPy)
        SETUP_STATE["running"] = max(0, SETUP_STATE.get("running", 1) - 1)
        if not SETUP_STATE["running"]:
            restore_blas_threads()


def worker_setup_state() -> dict:
    """This process's :data:`SETUP_STATE`, JSON-able (for ``client.run``)."""
    return {"malloc": SETUP_STATE.get("malloc"), "blas": SETUP_STATE.get("blas"),
            "workers": list(SETUP_STATE.get("workers", [])), "pid": os.getpid()}


def default_workers() -> int:
    """One worker per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, *, timeout: str = "10s",
                processes: bool = False, memory_limit: str | None = "auto", quiet: bool = False,
                dashboard: bool = True):
    """A ``distributed.Client`` for the duration of the ``with`` block.

    Parameters
    ----------
    workers : int, optional
        Workers of the local cluster (default: one per core).
    processes : bool
        Run each local worker in its own process (isolated, restartable)
        instead of as a thread of this process.  Threads start at once and
        share memory, and the kernels release the GIL in their FFTs and array
        maths: measured 3.6 s against 4.5 s for guitar.mp4 on 2 cores.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); then no local
        cluster is started and ``workers`` is ignored.
    memory_limit : str, optional
        Per-worker memory limit of the local cluster.
    quiet : bool
        Do not print the dashboard link.
    dashboard : bool
        Serve the local cluster's dashboard (Bokeh).  Starting it costs about
        0.6 CPU-s and 1 s (measured on the 2-core development machine);
        worth it for long runs, which users watch there.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        cluster = None
    else:
        workers = workers or default_workers()
        if workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        import dask

        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.update(worker_environ())
        if not processes:
            keep_freed_memory()
        config = {"distributed.nanny.pre-spawn-environ": environ}
        saturation = "distributed.scheduler.worker-saturation"
        if dask.config.get(saturation) == dask.config.get(saturation, config=dask.config.merge(*dask.config.defaults)):
            config[saturation] = WORKER_SATURATION  # still distributed's own default: not the user's choice
        if not dashboard:
            # the workers' statistical profiler (a stack walk of every thread
            # every 10 ms) only feeds the dashboard's profile page: 0.18 CPU-s
            # of a 5 s guitar.mp4 run on the event loop (py-spy)
            config["distributed.worker.profile.enabled"] = False
        with dask.config.set(config):
            cluster = LocalCluster(
                n_workers=workers if processes else 1,
                threads_per_worker=1 if processes else workers,
                processes=processes,
                memory_limit=memory_limit,
                silence_logs=logging.ERROR,
                dashboard_address=_dashboard_address(),  # the HTTP server (/metrics) stays either way
                scheduler_kwargs={"dashboard": dashboard},
            )
        client = Client(cluster)
    worker_log = logging.getLogger("distributed.worker")  # the local workers' (threads in this process)
    quiet_user_errors = _QuietUserErrors()
    worker_log.addFilter(quiet_user_errors)
    try:
        client.register_plugin(WorkerSetup())
        if not quiet and (dashboard or cluster is None):
            print(f"dashboard: {client.dashboard_link}", file=sys.stderr)
        yield client
    finally:
        worker_log.removeFilter(quiet_user_errors)
        client.close()
        if cluster is not None:
            cluster.close()


def _dashboard_address(port: int = 8787) -> str:
    """``:8787`` when that port is free, else ``:0`` (any free port): no warning from distributed.

    The ``dashboard:`` line prints the link the dashboard really has.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return ":0"
    return f":{port}"


def worker_threads(client) -> int:
    """Total worker threads of the cluster behind ``client``."""
    return max(1, sum(client.nthreads().values()))
