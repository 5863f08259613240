"""Operational metrics of one `mrr worker` process, served on `metrics_port` when it is set.

Each worker exports its own (Prometheus tells them apart by `instance`); no label is unbounded
(partition numbers are the only label). Sources:
- counters are read at scrape time from the pipeline's `PipelineStats` (one source of truth
  for the log summary and the metrics), so they need no hook of their own;
- histograms and the last-commit gauge are fed by `PipelineStats.add` through `on_batch`;
- consumer lag per partition (ledger end offset - stored next offset, for the partitions this
  worker has committed since its last assignment) is refreshed every `LAG_REFRESH_SECONDS` by a
  background task from the gap reader's `end_offsets` (one metadata + ListOffsets round trip),
  also while no batch arrives, so a stalled worker shows a growing lag.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ledger.ports import LedgerRecord
    from projections.projector import BatchResult
    from streams.worker.pipeline import PipelineStats, ProjectionPipeline

log = logging.getLogger(__name__)

LAG_REFRESH_SECONDS = 5.0

COUNTERS = {
    "consumed": ("mrr_worker_events_consumed", "Ledger messages received from the consumer (before decoding)."),
    "applied": ("mrr_worker_events_applied", "Events applied to the projections (committed)."),
    "batches": ("mrr_worker_batches", "Projector transactions committed."),
    "duplicates": ("mrr_worker_duplicate_events", "Events ignored because their event_id was already applied."),
    "conflicts": ("mrr_worker_conflicting_events", "Re-used event_ids with a different body (recorded, not applied)."),
    "skipped": ("mrr_worker_skipped_records", "Records below the stored offset (already applied) that were skipped."),
    "dead_letters": ("mrr_worker_dead_letters", "Messages sent to the dead-letter topic."),
    "gap_records": ("mrr_worker_gap_records", "Records read straight from Kafka to fill an offset gap."),
    "fenced": ("mrr_worker_fenced_batches", "Batches refused because another worker moved the stored offset."),
    "restated": ("mrr_worker_restated_customers",
                 "Customers whose already projected movements or FX impacts a batch changed (late or "
                 "backdated events, FX rates); counted once per batch."),
}

BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)


class _StatsCollector(Collector):
    """The `PipelineStats` totals as `_total` counters (zero before the first batch)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        stats = self.metrics.stats
        for field_name, (name, doc) in COUNTERS.items():
            family = CounterMetricFamily(name, doc)
            family.add_metric([], getattr(stats, field_name, 0) if stats is not None else 0)
            yield family

    def describe(self) -> list[Metric]:
        return []


class WorkerMetrics:
    """The registry of one worker process; `attach` it to the pipeline's stats."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.stats: PipelineStats | None = None
        self.registry.register(_StatsCollector(self))
        self.batch_size = Histogram("mrr_worker_batch_size_events", "Events per projector transaction.",
                                    buckets=BATCH_SIZE_BUCKETS, registry=self.registry)
        self.batch_duration = Histogram("mrr_worker_batch_duration_seconds",
                                        "Time to apply one batch (retries included).",
                                        buckets=DURATION_BUCKETS, registry=self.registry)
        self.event_lag = Histogram("mrr_worker_event_time_lag_seconds",
                                   "Commit time minus the event's recorded_at, per applied record.",
                                   buckets=LAG_BUCKETS, registry=self.registry)
        self.last_commit = Gauge("mrr_worker_last_commit_timestamp_seconds",
                                 "Unix time of this worker's last committed batch.", registry=self.registry)
        self.consumer_lag = Gauge("mrr_worker_consumer_lag_records",
                                  "Ledger end offset minus the stored next offset, per partition this worker holds.",
                                  ["partition"], registry=self.registry)
        self._lag_partitions: set[int] = set()
        self._lag_task: asyncio.Task[None] | None = None

    def attach(self, pipeline: ProjectionPipeline) -> None:
        """Export `pipeline.stats`, get called by it after every committed batch, and refresh the
        consumer lag in the background (call from the event loop; `detach` stops it)."""
        self.stats = pipeline.stats
        pipeline.stats.observer = self
        self.detach()
        self._lag_task = asyncio.ensure_future(self._refresh_lag_forever(pipeline))

    def detach(self) -> None:
        """Stop the consumer lag refresh (before the pipeline's reader closes)."""
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None

    async def _refresh_lag_forever(self, pipeline: ProjectionPipeline) -> None:
        while True:
            await self.refresh_lag(pipeline)
            await asyncio.sleep(LAG_REFRESH_SECONDS)

    def on_batch(self, result: BatchResult, records: Sequence[LedgerRecord], seconds: float,
                 positions: Mapping[int, int]) -> None:
        """Observe one committed batch; `positions` are the stored offsets before it (records
        below them were already applied and are not observed for lag)."""
        now = time.time()
        self.last_commit.set(now)
        self.batch_size.observe(len(records))
        self.batch_duration.observe(seconds)
        committed = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        for record in records:
            if record.offset >= positions.get(record.partition, 0) and record.event.recorded_at is not None:
                self.event_lag.observe(max(0.0, (committed - record.event.recorded_at).total_seconds()))

    async def refresh_lag(self, pipeline: ProjectionPipeline) -> None:
        """Update the per-partition consumer lag now; never raises (a metric must not stop the
        projector)."""
        try:
            ends = await pipeline.reader.end_offsets()
        except Exception as exc:  # noqa: BLE001 - reader closing, broker away: try again later
            log.debug("consumer lag not refreshed: %s", exc)
            return
        positions = pipeline.projector.positions
        held = set(positions) & set(ends)
        for partition in self._lag_partitions - held:  # revoked since: drop the series
            self.consumer_lag.remove(str(partition))
        for partition in held:
            self.consumer_lag.labels(str(partition)).set(max(0, ends[partition] - positions[partition]))
        self._lag_partitions = held

    def serve(self, host: str, port: int) -> Any:
        """Serve /metrics on a daemon thread; returns the HTTP server (call `shutdown()`)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("worker metrics on %s:%d/metrics", host, port)
        return server
