"""daskmag's counters on the scheduler's Prometheus endpoint, scraped over HTTP."""

from __future__ import annotations

import logging
import urllib.request

import pytest

from daskmag.metrics import BatchMetrics, install, parse_metrics, publish, scheduler_values

pytest.importorskip("prometheus_client", reason="prometheus_client is not installed")


@pytest.fixture
def cluster_with_dashboard():
    """A real in-process cluster whose scheduler serves its dashboard (and /metrics) on a free port."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0",
                      silence_logs=logging.ERROR) as cluster:
        with Client(cluster) as client:
            yield client


def scrape(client) -> str:
    url = f"http://127.0.0.1:{client.cluster.scheduler.http_server.port}/metrics"
    return urllib.request.urlopen(url, timeout=10).read().decode()


def test_counts_published_by_a_batch_are_scraped(cluster_with_dashboard):
    client = cluster_with_dashboard
    assert install(client)
    assert install(client)  # idempotent: a second batch on the same scheduler
    values = {"files_total": 6, "files_done": 2, "files_failed": 1, "files_running": 1, "files_pending": 2,
              "files_skipped": 0, "frames_total": 500, "frames_done": 230}
    assert publish(client, "/data/out", values)
    assert publish(client, "/data/other", {"files_total": 1, "frames_total": 10})
    metrics = parse_metrics(scrape(client))
    for state in ("total", "done", "failed", "running", "pending", "skipped"):
        assert metrics[("daskmag_batch_files", "/data/out", state)] == values[f"files_{state}"]
    assert metrics[("daskmag_batch_frames", "/data/out", "done")] == 230
    assert metrics[("daskmag_batch_frames", "/data/out", "total")] == 500
    assert metrics[("daskmag_batch_files", "/data/other", "total")] == 1
    # an update replaces the values; Dask's own metrics are still there
    publish(client, "/data/out", {"files_done": 3, "frames_done": 330})
    text = scrape(client)
    assert parse_metrics(text)[("daskmag_batch_frames", "/data/out", "done")] == 330
    assert "dask_scheduler_workers" in text
    assert scheduler_values(client)["/data/out"]["files_done"] == 3


def test_publish_without_the_plugin_is_harmless(cluster_with_dashboard):
    client = cluster_with_dashboard
    assert not publish(client, "/data/out", {"files_done": 1})
    assert BatchMetrics.name not in client.cluster.scheduler.plugins
