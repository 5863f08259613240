"""The Faust app of `mrr worker`: one agent consuming the ledger topic in batches.

Faust is the transport and scheduler only (DESIGN.md decision 5): no Faust tables, messages kept
as raw bytes (the pipeline decodes them and dead-letters poison), agent concurrency 1, batches
from `stream.take_events` so each message's partition and offset are known. Faust acks and
commits a batch even when the handler failed; that is why PostgreSQL owns the offsets and the
pipeline fills gaps from Kafka.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import faust

from ledger.kafka.dead_letters import DeadLetterWriter
from ledger.kafka.messages import RawRecord
from ledger.kafka.reader import KafkaLedgerReader
from ledger.kafka.topics import dlq_name
from projections.projector import Projector
from streams.config import Config
from streams.worker.pipeline import ProjectionPipeline
from streams.worker.retry import ProjectionHalted, RetryPolicy

if TYPE_CHECKING:
    from streams.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

SUMMARY_EVERY_SECONDS = 10.0


@dataclass
class WorkerRuntime:
    """What the agent shares with the command that runs the worker."""

    config: Config
    stop: Callable[[], None] = lambda: None
    """Set by the command: stops the Faust worker (used after a fatal error)."""
    fatal: BaseException | None = None
    pipeline: ProjectionPipeline | None = None
    resources: list[Any] = field(default_factory=list)
    metrics: WorkerMetrics | None = None
    """Set by the command when `metrics_port` is set: the agent attaches the pipeline to it."""


def broker_urls(bootstrap: str) -> list[str]:
    """Faust broker URLs for a comma-separated bootstrap list."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


async def open_pipeline(runtime: WorkerRuntime) -> ProjectionPipeline:
    """Open the store (schema at the Alembic head), gap reader and dead-letter writer."""
    from streams.bootstrap import ensure_settings, open_store

    config = runtime.config
    store = await open_store(config)
    runtime.resources.append(store)
    await ensure_settings(store, config)
    reader = KafkaLedgerReader(config.kafka_bootstrap, config.ledger_topic)
    runtime.resources.append(reader)
    dead_letters = DeadLetterWriter(config.kafka_bootstrap, dlq_name(config.ledger_topic), config.ledger_topic)
    runtime.resources.append(dead_letters)
    await dead_letters.start()
    return ProjectionPipeline(
        Projector(store, config.mrr_settings(), cache_size=config.customer_cache_size),
        reader,
        dead_letters,
        horizon=dt.timedelta(days=config.future_horizon_days),
        batch_size=config.batch_size,
        retry=RetryPolicy(config.database_retry_seconds, config.apply_retries),
    )


async def close_pipeline(runtime: WorkerRuntime) -> None:
    """Close what `open_pipeline` opened, newest first; errors are logged, not raised."""
    if runtime.pipeline is not None:
        await runtime.pipeline.projector.table_stats.settled()  # an ANALYZE still running
    while runtime.resources:
        resource = runtime.resources.pop()
        try:
            await resource.close()
        except Exception:  # noqa: BLE001 - shutting down: report and go on closing the rest
            log.exception("closing %r failed", resource)


def to_raw(event: Any) -> RawRecord:
    """A Faust event's message as a `RawRecord` (Faust keeps timestamps in seconds)."""
    message = event.message
    return RawRecord(message.partition, message.offset, message.key, message.value,
                     int(round((message.timestamp or 0) * 1000)))


def faust_datadir(config: Config) -> str:
    """Faust's directory, created under the data directory (Faust's default is `<app id>-data`
    in the working directory; with in-memory tables it stays empty)."""
    path = config.data_path / "faust"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def app_settings(config: Config) -> dict[str, Any]:
    """The Faust settings of the worker's app (`bench/faust_ceiling.py` measures a no-op agent
    with the very same ones)."""
    return dict(
        broker=broker_urls(config.kafka_bootstrap or ""),
        store="memory://",
        datadir=faust_datadir(config),
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,  # topics come from `mrr topics create`, never from the worker
        topic_disable_leader=True,
        stream_buffer_maxsize=max(4096, config.batch_size * 2),
        broker_max_poll_records=config.batch_size,
        worker_redirect_stdouts=False,
        broker_session_timeout=config.worker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, config.worker_session_timeout_seconds / 3),
    )


def raw_topic(app: faust.App, name: str) -> Any:
    """`name` as a Faust topic of raw bytes (the pipeline decodes and dead-letters itself)."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def create_app(runtime: WorkerRuntime) -> faust.App:
    """The Faust app of `runtime.config` with its projector agent."""
    config = runtime.config
    app = faust.App(config.worker_group, **app_settings(config))
    topic = raw_topic(app, config.ledger_topic)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **_: Any) -> None:
        _forget(runtime, revoked)

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **_: Any) -> None:
        _forget(runtime, assigned)

    @app.agent(topic, concurrency=1, name="projector")
    async def project(stream: Any) -> None:
        try:
            runtime.pipeline = pipeline = await open_pipeline(runtime)
            summary = _Summary(pipeline)
            if runtime.metrics is not None:
                runtime.metrics.attach(pipeline)
            async for events in stream.take_events(config.batch_size, within=config.batch_wait_seconds):
                await pipeline.process([to_raw(e) for e in events])
                summary.maybe_log()
        except asyncio.CancelledError:
            log.info("projector stopping: the open batch is abandoned (rolled back); it is "
                     "re-read from the stored offsets on the next start")
            raise
        except Exception as exc:  # noqa: BLE001 - fatal by design: stop the worker loudly
            runtime.fatal = exc
            level = "cannot continue" if isinstance(exc, ProjectionHalted) else "crashed"
            log.critical("projector %s, stopping the worker: %s", level, exc, exc_info=exc)
            runtime.stop()
        finally:
            if runtime.metrics is not None:
                runtime.metrics.detach()
            await close_pipeline(runtime)

    return app


def _forget(runtime: WorkerRuntime, partitions: Any) -> None:
    pipeline = runtime.pipeline
    ours = [tp.partition for tp in partitions if tp.topic == runtime.config.ledger_topic]
    if pipeline is not None and ours:
        pipeline.projector.forget_positions(ours)
        log.info("rebalance: partitions %s; their stored offsets will be read again", sorted(ours))


class _Summary:
    """Logs the pipeline's totals every `SUMMARY_EVERY_SECONDS`."""

    def __init__(self, pipeline: ProjectionPipeline) -> None:
        import time

        self._clock = time.monotonic
        self.pipeline = pipeline
        self.last = self._clock()
        self.last_applied = 0

    def maybe_log(self) -> None:
        now = self._clock()
        if now - self.last < SUMMARY_EVERY_SECONDS:
            return
        s = self.pipeline.stats
        rate = (s.applied - self.last_applied) / (now - self.last)
        log.info("projected %d events (%.0f/s) in %d batches; duplicates %d, conflicts %d, "
                 "dead letters %d, gap records %d, fenced %d, restated customers %d", s.applied, rate,
                 s.batches, s.duplicates, s.conflicts, s.dead_letters, s.gap_records, s.fenced, s.restated)
        self.last, self.last_applied = now, s.applied
