"""daskmag's counters on the Dask scheduler's Prometheus endpoint (``/metrics``).

The scheduler's dashboard server already serves ``/metrics`` from
``prometheus_client``'s default registry (the scheduler's own gauges: tasks,
workers, memory).  :class:`BatchMetrics` is a scheduler plugin that a batch
registers on its scheduler (a separately started ``dask scheduler``, one a
cluster manager started, or a local cluster): it adds a collector to that
registry, and the batch's client sends it its counts as files and blocks
finish (:func:`publish`).  An operator's Prometheus scrapes the scheduler as
it does for Dask, and a Grafana panel plots, per batch (the label ``batch``,
the output folder)::

    daskmag_batch_files{batch="/data/out",state="done|skipped|failed|running|pending|total"}
    daskmag_batch_frames{batch="/data/out",state="done|total"}

Gauges, not counters: a batch that is run again starts from its report
(skipped files count at once), so the values can go down between runs.
"""

from __future__ import annotations

import weakref

from distributed.diagnostics.plugin import SchedulerPlugin

#: Metric name prefix.
NAMESPACE = "daskmag"
#: File states counted by ``daskmag_batch_files``.
FILE_STATES = ("total", "pending", "running", "done", "skipped", "failed")
#: Frame counts of ``daskmag_batch_frames``.
FRAME_STATES = ("total", "done")

_PLUGINS: weakref.WeakSet = weakref.WeakSet()
_COLLECTOR = None


class _Collector:
    """A prometheus_client collector over every live :class:`BatchMetrics` of this process."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        files = GaugeMetricFamily(f"{NAMESPACE}_batch_files", "Input files of a daskmag batch, by state",
                                  labels=["batch", "state"])
        frames = GaugeMetricFamily(f"{NAMESPACE}_batch_frames",
                                   "Output frames of a daskmag batch: done (written) and total",
                                   labels=["batch", "state"])
        for plugin in list(_PLUGINS):
            for batch, values in plugin.batches.items():
                for state in FILE_STATES:
                    files.add_metric([batch, state], values.get(f"files_{state}", 0))
                for state in FRAME_STATES:
                    frames.add_metric([batch, state], values.get(f"frames_{state}", 0))
        yield files
        yield frames

    def describe(self):
        return []  # collected lazily: no fixed set of samples to check at registration


def _register_collector():
    global _COLLECTOR
    if _COLLECTOR is None:
        import prometheus_client

        _COLLECTOR = _Collector()
        prometheus_client.REGISTRY.register(_COLLECTOR)


class BatchMetrics(SchedulerPlugin):
    """Scheduler plugin holding the counts of the batches run on this scheduler.

    ``batches`` maps a batch's name (its output folder) to its counts:
    ``files_<state>`` for :data:`FILE_STATES` and ``frames_<state>`` for
    :data:`FRAME_STATES`.  Registered by :func:`install`; updated by
    :func:`publish`.  Needs ``prometheus_client`` on the scheduler (as Dask's
    own ``/metrics`` does); without it the counts are kept but not served.
    """

    name = "daskmag-metrics"
    idempotent = True

    def __init__(self):
        self.batches: dict[str, dict] = {}

    async def start(self, scheduler):
        self.scheduler = scheduler
        _PLUGINS.add(self)
        try:
            _register_collector()
        except ImportError:  # no prometheus_client: /metrics is not served either
            pass

    async def close(self):
        _PLUGINS.discard(self)

    def update(self, batch: str, values: dict):
        self.batches.setdefault(batch, {}).update(values)


def _update_on_scheduler(batch: str, values: dict, dask_scheduler=None):
    plugin = dask_scheduler.plugins.get(BatchMetrics.name)
    if plugin is None:
        return False
    plugin.update(batch, values)
    return True


def _values_on_scheduler(dask_scheduler=None):
    plugin = dask_scheduler.plugins.get(BatchMetrics.name)
    return {} if plugin is None else dict(plugin.batches)


def install(client) -> bool:
    """Register :class:`BatchMetrics` on ``client``'s scheduler (once; idempotent).

    Returns whether it worked (a scheduler without daskmag installed cannot
    load the plugin; the batch then runs without metrics).
    """
    try:
        client.register_plugin(BatchMetrics())
    except Exception:  # noqa: BLE001 - metrics are an extra, never a reason to stop a batch
        return False
    return True


def publish(client, batch: str, values: dict) -> bool:
    """Send a batch's counts (``files_done=3, frames_done=840, ...``) to the scheduler's plugin."""
    try:
        return bool(client.run_on_scheduler(_update_on_scheduler, batch, dict(values)))
    except Exception:  # noqa: BLE001 - as install
        return False


def scheduler_values(client) -> dict:
    """The counts the scheduler holds, by batch (for tests and ``daskmag status``-like tools)."""
    return client.run_on_scheduler(_values_on_scheduler)


def parse_metrics(text: str) -> dict:
    """daskmag's samples from a ``/metrics`` page: ``{(name, batch, state): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(f"{NAMESPACE}_"):
            continue
        for sample in family.samples:
            out[(sample.name, sample.labels.get("batch"), sample.labels.get("state"))] = sample.value
    return out
