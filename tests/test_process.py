"""Process tuning (daskmag._process): malloc keeps freed blocks, one BLAS thread, fewer GC runs.

Each check runs in a fresh interpreter: the settings act on threads and
libraries that start after them, and must not leak into the test process.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None

#: Allocate and fill a 96 MiB array five times on a worker thread (as the
#: kernels do), after tuning unless DASKMAG_TUNE_PROCESS=0; report where the
#: array was (the brk heap or an mmap) and the page faults of rounds 2 to 5.
WORKER_THREAD_ALLOCATIONS = r"""
import json, resource, threading
from daskmag import _process
tuned = _process.tune_malloc()
import numpy as np

def heap_range():
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            start, stop = line.split()[0].split("-")
            return int(start, 16), int(stop, 16)
    return 0, 0

result = {"tuned": tuned}
def work():
    faults = []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        block = np.empty(96 * 2**20, np.uint8)
        block.fill(1)  # touch every page
        address = block.ctypes.data
        del block
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
    start, stop = heap_range()
    result.update(in_heap=start <= address < stop, first=faults[0], later=sum(faults[1:]))
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(json.dumps(result))
"""


def _python(code, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("DASKMAG_TUNE_PROCESS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                            "MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES",
                            "NUMPY_MADVISE_HUGEPAGE")}
    environ.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="malloc tuning is glibc's (mallopt)")
def test_a_worker_thread_reuses_freed_blocks_instead_of_fresh_mmaps():
    tuned = _python(WORKER_THREAD_ALLOCATIONS)
    plain = _python(WORKER_THREAD_ALLOCATIONS, DASKMAG_TUNE_PROCESS="0")
    assert tuned["tuned"] and not plain["tuned"]
    # untuned, the thread's arena cannot hold 96 MiB: a fresh mmap each time, faulted in anew
    assert not plain["in_heap"]
    assert plain["later"] >= 2 * plain["first"] > 0
    # tuned, the block comes from the one brk heap and its pages are reused
    assert tuned["in_heap"]
    assert tuned["later"] <= plain["later"] / 10


def test_blas_pools_get_one_thread_unless_the_user_chose():
    code = r"""
import json, os
from daskmag import _process
how = _process.limit_blas_threads()
import numpy as np
np.ones((64, 64)) @ np.ones((64, 64))  # a BLAS call: its pool is running now
print(json.dumps({"how": how, "threads": len(os.listdir("/proc/self/task")),
                  "openblas": os.environ.get("OPENBLAS_NUM_THREADS")}))
"""
    result = _python(code)
    assert result["how"] == "environment" and result["openblas"] == "1"
    if sys.platform.startswith("linux"):
        assert result["threads"] == 1  # no pool threads besides the main one
    assert _python(code, OPENBLAS_NUM_THREADS="3")["openblas"] == "3"  # the user's choice stays
    off = _python(code, DASKMAG_TUNE_PROCESS="off")
    assert off["how"] is None and off["openblas"] is None


#: NumPy first (a notebook, a script), then a run on a local threaded
#: cluster: the BLAS pool's threads seen from a task and after the cluster closes.
NUMPY_FIRST_THEN_A_CLUSTER = r"""
import json
import numpy as np
import threadpoolctl

def blas_threads():
    np.ones((64, 64)) @ np.ones((64, 64))
    return max(pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas")

from daskmag.cluster import dask_client
before = blas_threads()
with dask_client(workers=2, quiet=True, dashboard=False) as client:
    during = client.submit(blas_threads, pure=False).result()
print(json.dumps({"before": before, "during": during, "after": blas_threads()}))
"""


def test_a_cluster_in_a_process_with_numpy_loaded_limits_blas_while_it_runs():
    # the pool's threads would queue for OpenBLAS' one lock when two worker
    # threads multiply matrices at once (benchmarks/numpy_first.py)
    result = _python(NUMPY_FIRST_THEN_A_CLUSTER)
    if result["before"] == 1:
        pytest.skip("one core: NumPy's BLAS pool has one thread anyway")
    assert result["during"] == 1
    assert result["after"] == result["before"]  # the caller's NumPy gets its threads back
    off = _python(NUMPY_FIRST_THEN_A_CLUSTER, DASKMAG_TUNE_PROCESS="0")
    assert off["during"] == off["before"]


def test_gc_thresholds_tripled_once_and_the_switch_turns_everything_off():
    code = r"""
import gc, json
from daskmag import _process
before = gc.get_threshold()
first, second = _process.tune_gc(), _process.tune_gc()
print(json.dumps({"before": before, "after": gc.get_threshold(), "changed": [first, second],
                  "malloc": _process.tune_malloc()}))
"""
    result = _python(code)
    assert result["changed"] == [True, False]
    assert result["after"] == [3 * g for g in result["before"]]
    off = _python(code, DASKMAG_TUNE_PROCESS="0")
    assert off["changed"] == [False, False] and off["after"] == off["before"] and off["malloc"] is False


def test_the_command_line_tunes_the_process_before_numpy_loads():
    code = r"""
import json, sys
import daskmag.cli
loaded_at_import = "numpy" in sys.modules
from daskmag import _process
try:
    daskmag.cli.main(["info", "no-such-file.mp4"])
except SystemExit:
    pass
print(json.dumps({"numpy_at_import": loaded_at_import, "state": _process.state()}))
"""
    result = _python(code)
    assert result["numpy_at_import"] is False
    assert result["state"]["blas"] == "environment"
    assert result["state"]["malloc"] is GLIBC
    assert result["state"]["small_pages"] is True


def test_numpy_backs_large_arrays_with_small_pages_after_tuning_unless_turned_off():
    code = r"""
import json
from daskmag import _process
_process.tune_process()
import numpy as np
print(json.dumps({"hugepage": bool(np._core.multiarray._get_madvise_hugepage())}))
"""
    assert _python(code)["hugepage"] is False
    assert _python(code, DASKMAG_TUNE_PROCESS="0", NUMPY_MADVISE_HUGEPAGE="1")["hugepage"] is True


def test_the_package_loads_its_public_names_on_first_use():
    import daskmag

    for name in daskmag.__all__:
        assert getattr(daskmag, name) is not None
    assert daskmag.open_video is __import__("daskmag.io", fromlist=["open_video"]).open_video
    assert set(daskmag.__all__) <= set(dir(daskmag))
    with pytest.raises(AttributeError, match="no_such_name"):
        daskmag.no_such_name


def test_magnify_starts_without_the_measure_package_or_scipy_signal(tmp_path):
    """Start-up: ``magnify`` with the default FIR loads neither (about 1 CPU-s of imports)."""
    from tests.conftest import write_grey_ffv1

    frames = np.random.default_rng(0).integers(0, 256, (40, 48, 64), dtype=np.uint8)
    clip = write_grey_ffv1(tmp_path / "in.mkv", frames, "gray")
    code = rf"""
import json, sys
import daskmag.cli
code = daskmag.cli.main(["magnify", {str(clip)!r}, "-o", {str(tmp_path / "out.mkv")!r}, "--alpha", "5",
                         "--low", "3", "--high", "7", "--workers", "1", "--no-progress"])
print(json.dumps({{"code": code, "loaded": sorted(m for m in sys.modules
                  if m.startswith(("scipy.signal", "daskmag.measure.")) and m != "daskmag.measure.cli")}}))
"""
    result = _python(code)
    assert result == {"code": 0, "loaded": []}
    assert (tmp_path / "out.mkv").exists()


#: A command's end through exit_now: an atexit hook, block-buffered stdout,
#: and (with THREAD) a non-daemon thread that is still running.
EXIT_NOW = r"""
import atexit, sys, threading, time
from daskmag import _process
atexit.register(lambda: print("hook ran"))
print("buffered line")  # stdout is a pipe: block-buffered until flushed
if THREAD:
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
code = _process.exit_now(3)
print("returned", code)
sys.exit(code)
"""


def _exit_now(thread: bool, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("DASKMAG_TUNE_PROCESS", "PYTHONUNBUFFERED")}
    environ.update(env)
    result = subprocess.run([sys.executable, "-c", EXIT_NOW.replace("THREAD", str(thread))], capture_output=True,
                            text=True, env=environ, timeout=60)
    return result.returncode, result.stdout.splitlines()


def test_exit_now_skips_teardown_but_runs_the_hooks_and_flushes_the_output():
    code, lines = _exit_now(thread=False)
    assert code == 3
    assert lines == ["buffered line", "hook ran"]  # nothing after exit_now ran: it did not return


def test_exit_now_leaves_it_to_python_where_a_thread_still_runs_or_tuning_is_off():
    code, lines = _exit_now(thread=True)
    assert code == 3 and lines[:2] == ["buffered line", "returned 3"]
    assert sorted(lines[2:]) == ["hook ran", "thread finished"]
    code, lines = _exit_now(thread=False, DASKMAG_TUNE_PROCESS="0")
    assert (code, lines) == (3, ["buffered line", "returned 3", "hook ran"])
