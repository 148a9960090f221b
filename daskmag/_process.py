"""Process tuning for daskmag's kernels: glibc malloc, BLAS thread pools, Python's GC.

The kernels allocate and free NumPy temporaries of tens to hundreds of MiB
in every block, on worker threads.  Three process-wide defaults make that
expensive, and :func:`tune_process` changes them:

* **glibc malloc** (:func:`tune_malloc`).  A thread other than the main one
  allocates from its own arena, whose heaps are at most 64 MiB; a larger
  request is always a fresh ``mmap``, returned to the system on ``free``, so
  every block's temporaries are page-faulted and zeroed by the kernel anew
  (guitar.mp4: 23 GiB mmap'd and unmapped in one run, ``clear_page_erms``
  11-23% of all CPU samples).  One arena
  (``M_ARENA_MAX``) that grows with ``brk``, no ``mmap`` for large blocks
  (``M_MMAP_MAX``) and a high trim threshold (``M_TRIM_THRESHOLD``) keep freed
  memory for the next block, which needs as much again (0.26 GiB mmap'd,
  a third of the page faults).  The peak resident memory does not grow with
  the clip's length (``benchmarks/memory.py``).  NumPy arrays are allocated
  with the GIL held, so one arena should add little lock contention (only
  measured with 2 worker threads so far).
* **BLAS thread pools** (:func:`limit_blas_threads`).  daskmag's parallelism is
  its workers, one per core; OpenBLAS' own pools (NumPy's and SciPy's) would
  add a thread per core each, and worse, concurrent calls from several
  worker threads queue for one pool (OpenBLAS' ``level3_lock``): with NumPy
  loaded before daskmag (a notebook, a script), guitar.mp4 took 1.02-1.10x
  the wall time and 1.04-1.15x the CPU on 2 cores (``benchmarks/numpy_first.py``),
  and a pool per core grows with the machine.  One thread each: the environment variables
  before NumPy is loaded, ``threadpoolctl`` after (undone by
  :func:`restore_blas_threads`).
* **Python's cyclic GC** (:func:`tune_gc`, the command line only).  Its
  thresholds are tripled, as ``dask worker`` does (dask/distributed#1653):
  the scheduler's and the client's task objects made it collect about 450
  times in a guitar.mp4 run, three of them full collections.

Everything is a no-op where it does not apply (malloc tuning outside glibc),
and all of it is off with ``DASKMAG_TUNE_PROCESS=0`` in the environment (of
the client and of ``dask worker`` processes).
"""

from __future__ import annotations

import gc
import os
import sys

#: The environment variable that turns the tuning off: ``0``, ``off``, ``false`` or ``no``.
SWITCH = "DASKMAG_TUNE_PROCESS"

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -3, -4, -8

#: glibc malloc settings of :func:`tune_malloc`, by name and mallopt parameter.
#: ``M_TRIM_THRESHOLD`` is an ``int``: 2 GiB - 1 is the most it takes.
MALLOC_SETTINGS = {
    "M_ARENA_MAX": (M_ARENA_MAX, 1),
    "M_MMAP_MAX": (M_MMAP_MAX, 0),
    "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, 2**31 - 1),
}

#: Thread-count variables of the BLAS and OpenMP libraries, set to 1 unless the user set them.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: What was done in this process (read by tests and :func:`state`).
STATE: dict = {}


def enabled() -> bool:
    """Whether the tuning is on (``DASKMAG_TUNE_PROCESS`` is not ``0``/``off``/``false``/``no``)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "off", "false", "no")


def _glibc():
    """glibc as a ``ctypes.CDLL``, or None elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the C library this process runs on
        version = libc.gnu_get_libc_version  # glibc only
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return libc


def tune_malloc() -> bool:
    """Apply :data:`MALLOC_SETTINGS` to this process's glibc malloc.

    Best called before worker threads start: a thread that already has its
    own arena keeps it.  Idempotent.

    Returns
    -------
    bool
        Whether every setting was accepted; False outside glibc or when
        turned off (:data:`SWITCH`).
    """
    if not enabled():
        STATE["malloc"] = False
        return False
    if STATE.get("malloc"):
        return True
    libc = _glibc()
    ok = libc is not None and all(libc.mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.values())
    STATE["malloc"] = bool(ok)
    return STATE["malloc"]


def limit_blas_threads() -> str | None:
    """One thread for the BLAS/OpenMP pools of this process.

    Sets :data:`BLAS_VARIABLES` to 1 where the user has not set them (read
    by the libraries when they load, and inherited by child processes).
    Where NumPy was loaded before they were set, its pools already have a
    thread per core: they are limited to the variables' value through
    ``threadpoolctl`` (:func:`restore_blas_threads` undoes it).

    Returns
    -------
    str or None
        ``"environment"`` (the variables were set before NumPy loaded),
        ``"threadpoolctl"``, or None when turned off.
    """
    if not enabled():
        return None
    if STATE.get("blas") in ("environment", "threadpoolctl"):
        return STATE["blas"]  # done in this process (the command line, or an earlier worker)
    for variable in BLAS_VARIABLES:
        os.environ.setdefault(variable, "1")
    how = "environment"
    if "numpy" in sys.modules:
        import threadpoolctl

        STATE["blas_limiter"] = threadpoolctl.threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]),
                                                                user_api="blas")
        how = "threadpoolctl"
    STATE["blas"] = how
    return how


def restore_blas_threads() -> bool:
    """Give the BLAS pools back the threads :func:`limit_blas_threads` took
    through ``threadpoolctl`` (a notebook's own NumPy after its run).
    Returns whether there was anything to restore."""
    limiter = STATE.pop("blas_limiter", None)
    if limiter is None:
        return False
    limiter.restore_original_limits()
    STATE.pop("blas", None)
    return True


#: Factor on the GC thresholds of :func:`tune_gc` (``dask worker`` uses 3).
GC_FACTOR = 3


def tune_gc() -> bool:
    """Fewer and cheaper runs of Python's cyclic garbage collector in this process.

    Raises the thresholds :data:`GC_FACTOR` times (once per process).  For
    the command line, which owns its process: a library call leaves the
    caller's GC alone.  Returns whether it changed anything.
    """
    if not enabled() or STATE.get("gc_threshold"):
        return False
    old = gc.get_threshold()
    gc.set_threshold(*(GC_FACTOR * g for g in old))
    STATE["gc_threshold"] = old
    return True


def small_pages() -> bool:
    """Ask NumPy not to back its large arrays with transparent huge pages.

    NumPy ``madvise``s arrays of 4 MiB or more for 2 MiB pages
    (``NUMPY_MADVISE_HUGEPAGE``, read when NumPy loads).  The kernels' arrays
    are short-lived and only partly touched per batch; zeroing whole 2 MiB
    pages on their first touch was 24% of a guitar.mp4 run's CPU samples
    (``clear_page_erms``), and 4 KiB pages saved about 0.9 CPU-s of ~11 (two
    A/B pairs).  Only before NumPy loads, and only if the user has not chosen.

    Returns
    -------
    bool
        Whether the setting is in place for this process's NumPy.
    """
    if enabled() and "numpy" not in sys.modules:
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    STATE["small_pages"] = os.environ.get("NUMPY_MADVISE_HUGEPAGE") == "0"
    return STATE["small_pages"]


def tune_process() -> dict:
    """All of it for the command line: malloc, BLAS threads, page size and GC; returns :data:`STATE`."""
    tune_malloc()
    limit_blas_threads()
    small_pages()
    tune_gc()
    return state()


def exit_now(code: int) -> int:
    """End the command line's process at once, without Python's own teardown.

    At exit, CPython clears every module and runs its cyclic GC over all
    that dask, distributed and the run left behind: 0.3-0.5 s after a 6 s
    guitar.mp4 run (py-spy: ``gc_collect_main`` with no Python frame above
    it), on one core, after the output is complete.  By the time the command
    returns, its outputs are written and closed and its cluster is shut
    down, so this runs the ``atexit`` hooks (``weakref.finalize``,
    ``logging``, ``multiprocessing``), flushes stdout and stderr, and leaves
    with ``os._exit(code)``.

    Returns ``code`` instead, for the caller's ``sys.exit``, where the
    tuning is off (:data:`SWITCH`) or a non-daemon thread still runs
    (Python would wait for it).

    Parameters
    ----------
    code : int
        The exit status.
    """
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if not enabled() or others:
        return code
    import atexit

    atexit._run_exitfuncs()  # what Py_Finalize would run first (logging's flush among them)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(code)


def state() -> dict:
    """What was done in this process, JSON-able (for tests and ``client.run``)."""
    return {"enabled": enabled(), "malloc": STATE.get("malloc", False), "blas": STATE.get("blas"),
            "small_pages": STATE.get("small_pages", False), "gc_threshold": gc.get_threshold(),
            "pid": os.getpid()}
