"""Where the work runs: local threads, local processes, an existing scheduler."""

import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import BAND
from daskmag.cluster import dask_client, keep_freed_memory, worker_setup_state, worker_threads
from daskmag.errors import UserError
from daskmag.io import open_video, probe


def test_local_threads_and_processes():
    with dask_client(2, quiet=True) as client:
        assert worker_threads(client) == 2
        assert len(client.scheduler_info()["workers"]) == 1
    with dask_client(2, processes=True, quiet=True) as client:
        assert worker_threads(client) == 2
        assert len(client.scheduler_info()["workers"]) == 2


def test_malloc_setting_applies_on_linux():
    if sys.platform.startswith("linux"):
        assert keep_freed_memory()


def test_unreachable_scheduler_is_a_user_error():
    with pytest.raises(UserError, match="cannot reach"):
        with dask_client(scheduler="tcp://127.0.0.1:9", timeout="2s"):
            pass


def _start(*args):
    # started in another folder than the client's: relative paths must not leak to workers
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd="/")


def test_magnify_on_a_separately_started_scheduler_and_workers(tmp_path, clip_file):
    """`dask scheduler` + two `dask worker` processes on 127.0.0.1, used through --scheduler."""
    port = 18000 + (int(time.time() * 1000) % 2000)
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                       "--dashboard-address", ":0")
    workers = [
        _start("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard")
        for _ in range(2)
    ]
    try:
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "out.mkv"
        (tmp_path / "in.mkv").symlink_to(clip_file)
        result = subprocess.run(  # relative input and output, as users type them
            [sys.executable, "-m", "daskmag", "magnify", "in.mkv", "-o", "out.mkv", "-a", "10",
             "--low", str(BAND[0]), "--high", str(BAND[1]), "--scheduler", address, "--time-chunk", "40"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert probe(out).n_frames == 120
        reference = tmp_path / "ref.mkv"
        subprocess.run([sys.executable, "-m", "daskmag", "magnify", str(clip_file), "-o", str(reference),
                        "-a", "10", "--low", str(BAND[0]), "--high", str(BAND[1])], check=True,
                       capture_output=True, timeout=300)
        a, b = open_video(out).frames.compute(), open_video(reference).frames.compute()
        assert np.abs(a.astype(int) - b).max() <= 1
        # the client registered the worker setup on the remote workers too
        with Client(address, timeout="30s") as client:
            states = client.run(worker_setup_state)
        assert len(states) == 2
        for state in states.values():
            assert state["malloc"] is sys.platform.startswith("linux")
            assert state["workers"]
        assert len({state["pid"] for state in states.values()}) == 2
    finally:
        for process in workers + [scheduler]:
            process.terminate()
        for process in workers + [scheduler]:
            process.wait(timeout=30)


def test_a_worker_that_joins_later_is_set_up_too():
    """The setup is a registered plugin, not a one-off call: a new worker gets it on arrival."""
    from daskmag.cluster import WorkerSetup

    with dask_client(1, processes=True, quiet=True) as client:
        plugins = client.run(lambda dask_worker: list(dask_worker.plugins))
        assert all(WorkerSetup.name in names for names in plugins.values())
        cluster_scheduler = client.scheduler.address
        before = set(client.scheduler_info()["workers"])
        process = _start("distributed.cli.dask_worker", cluster_scheduler, "--nthreads", "1", "--no-dashboard")
        try:
            client.wait_for_workers(2, timeout=60)
            new = (set(client.scheduler_info()["workers"]) - before).pop()
            deadline = time.time() + 30
            while time.time() < deadline:
                state = client.run(worker_setup_state, workers=[new])[new]
                if state["workers"]:
                    break
                time.sleep(0.2)
            assert state["workers"] == [new]
            assert state["malloc"] is sys.platform.startswith("linux")
        finally:
            process.terminate()
            process.wait(timeout=30)


def _status_page(client) -> int:
    """HTTP status of the scheduler's dashboard page (its HTTP server stays: /metrics, /health)."""
    import urllib.error
    import urllib.request

    port = client.scheduler_info()["services"]["dashboard"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_dashboard_can_be_left_off(capsys):
    with dask_client(1, dashboard=False) as client:
        assert _status_page(client) == 404
        assert client.submit(sum, [1, 2]).result() == 3
    assert "dashboard:" not in capsys.readouterr().err
    with dask_client(1) as client:
        assert _status_page(client) == 200
    assert "dashboard: http" in capsys.readouterr().err



def _profiling(dask_worker) -> bool:
    """Whether the worker runs distributed's statistical profiler (a periodic stack walk)."""
    return "profile" in dask_worker.periodic_callbacks


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_workers_profile_only_for_the_dashboard(processes):
    """The profiler only feeds the dashboard's profile page: without a dashboard it is off."""
    with dask_client(1, processes=processes, dashboard=False, quiet=True) as client:
        assert list(client.run(_profiling).values()) == [False]
    with dask_client(1, processes=processes, quiet=True) as client:
        assert list(client.run(_profiling).values()) == [True]


def _saturation(dask_scheduler) -> float:
    return dask_scheduler.WORKER_SATURATION


def test_the_local_scheduler_queues_fewer_small_tasks_unless_the_user_chose():
    """distributed queues "root-ish" tasks past 1.1 per thread; daskmag's local
    scheduler allows WORKER_SATURATION, and keeps a value the user set."""
    import dask

    from daskmag.cluster import WORKER_SATURATION

    with dask_client(1, dashboard=False, quiet=True) as client:
        assert client.run_on_scheduler(_saturation) == WORKER_SATURATION
    with dask.config.set({"distributed.scheduler.worker-saturation": 2.5}):
        with dask_client(1, dashboard=False, quiet=True) as client:
            assert client.run_on_scheduler(_saturation) == 2.5
