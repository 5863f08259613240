"""Server-free checks: the top-N bucketing, the float boundary and the worker's metric hooks."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

from ledger.ports import LedgerRecord
from projections.metrics.segments import OTHER, top_n
from projections.metrics.units import major
from projections.projector import BatchResult
from streams.worker.metrics import WorkerMetrics
from streams.worker.pipeline import PipelineStats


def test_top_n_keeps_the_largest_and_sums_the_rest() -> None:
    assert top_n({"a": 5, "b": 3, "c": 1, "d": 1, "z": 0}, 2) == {"a": 5, "b": 3, OTHER: 2}
    assert top_n({"a": 5, "b": 3}, 2) == {"a": 5, "b": 3}
    assert top_n({"other": 9, "a": 1, "b": 1}, 1) == {OTHER: 11}  # a real `other` plan merges


def test_major_units_are_the_reports_decimal_strings() -> None:
    assert major(16667, "USD") == 166.67
    assert major(Decimal("16666.5"), "USD") == 166.67  # averages round half up, as reports do
    assert major(1000, "JPY") == 1000.0
    assert major(None, "USD") is None


def test_worker_metrics_follow_the_pipeline_stats() -> None:
    metrics = WorkerMetrics()
    stats = PipelineStats()
    reader_ends = {0: 10, 1: 7}
    pipeline = SimpleNamespace(stats=stats, reader=SimpleNamespace(end_offsets=None),
                               projector=SimpleNamespace(positions={0: 4, 1: 7}))

    async def end_offsets() -> dict[int, int]:
        return reader_ends

    pipeline.reader.end_offsets = end_offsets

    async def run() -> None:
        metrics.attach(pipeline)  # type: ignore[arg-type]
        await metrics.refresh_lag(pipeline)  # type: ignore[arg-type]
        metrics.detach()

    asyncio.run(run())
    value = metrics.registry.get_sample_value
    assert value("mrr_worker_consumer_lag_records", {"partition": "0"}) == 6
    assert value("mrr_worker_consumer_lag_records", {"partition": "1"}) == 0
    recorded = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
    event = SimpleNamespace(recorded_at=recorded)
    records = [LedgerRecord(0, offset, event) for offset in (2, 3, 4)]  # type: ignore[arg-type]
    stats.consumed += 3
    assert value("mrr_worker_restated_customers_total") == 0
    stats.add(BatchResult(applied=2, skipped=1, restated=2), records, 0.2, {0: 3})
    assert value("mrr_worker_events_consumed_total") == 3
    assert value("mrr_worker_restated_customers_total") == 2
    assert value("mrr_worker_events_applied_total") == 2
    assert value("mrr_worker_batches_total") == 1
    assert value("mrr_worker_skipped_records_total") == 1
    assert value("mrr_worker_batch_size_events_sum") == 3
    assert value("mrr_worker_event_time_lag_seconds_count") == 2  # offset 2 was already applied
    assert 29 < value("mrr_worker_event_time_lag_seconds_sum") / 2 < 60
    assert value("mrr_worker_last_commit_timestamp_seconds") > 0
    pipeline.projector.positions = {1: 7}  # partition 0 revoked
    asyncio.run(metrics.refresh_lag(pipeline))  # type: ignore[arg-type]
    assert value("mrr_worker_consumer_lag_records", {"partition": "0"}) is None
