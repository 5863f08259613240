"""`mrr worker`: run the live projector (Kafka ledger -> PostgreSQL projections)."""

from __future__ import annotations

import asyncio
import logging

import click

EX_SOFTWARE = 70

_EPILOG = """\b
Needs MRR_KAFKA_BOOTSTRAP and MRR_DATABASE_URL (or mrr.toml), the topics
(`mrr topics create`) and the schema (`mrr db upgrade`). Start as many
workers with the same --group as you like: they split the ledger's
partitions. See docs/operations.md.

\b
Exit status:
  0   stopped by SIGTERM/SIGINT (the open batch is abandoned, not half-written)
  2   usage or configuration error
  70  a batch could not be applied after its retries (the worker never skips one)
"""


@click.command("worker", epilog=_EPILOG)
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers [MRR_KAFKA_BOOTSTRAP].")
@click.option("--database-url", default=None, help="PostgreSQL projections [MRR_DATABASE_URL].")
@click.option("--topic", "ledger_topic", default=None, help="Ledger topic [MRR_LEDGER_TOPIC, mrr.ledger].")
@click.option("--group", "worker_group", default=None,
              help="Consumer group and Faust app id [MRR_WORKER_GROUP, mrr-projector].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Most records per transaction [MRR_BATCH_SIZE, 5000].")
@click.option("--batch-wait", "batch_wait_seconds", type=click.FloatRange(min=0.001), default=None,
              help="Seconds to wait for a fuller batch [MRR_BATCH_WAIT_SECONDS, 0.1].")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve this worker's Prometheus metrics on this port [MRR_METRICS_PORT, off].")
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def command(loglevel: str, **flags: object) -> None:
    """Consume the ledger topic and keep the PostgreSQL projections current, exactly once in effect.

    Each batch of ledger records is applied in one PostgreSQL transaction that also stores the
    next offset per partition; messages that are not valid events go to the dead-letter topic
    `<ledger>.dlq` with the reason in headers. A batch that fails is retried (PostgreSQL
    unreachable: with backoff for up to MRR_DATABASE_RETRY_SECONDS), then the worker stops with
    exit status 70 instead of skipping it.
    """
    from ledger.kafka.topics import KafkaSetupError
    from streams.config import load_config

    try:
        config = load_config(flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if not config.kafka_bootstrap or not config.database_url:
        raise click.UsageError(
            "mrr worker projects the Kafka ledger into PostgreSQL: set MRR_KAFKA_BOOTSTRAP and "
            "MRR_DATABASE_URL (the embedded default needs no worker: reports project on demand)"
        )
    from sqlalchemy.exc import DBAPIError

    try:
        asyncio.run(_preflight(config))
    except (KafkaSetupError, RuntimeError, DBAPIError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"mrr worker: {reason}", err=True)
        raise SystemExit(2) from None
    raise SystemExit(run_worker(config, loglevel))


async def _preflight(config: object) -> None:
    """Fail fast, before Faust starts, on a missing topic or an unmigrated schema."""
    from ledger.kafka.topics import require_topic
    from projections.migrate import require_head
    from streams.bootstrap import engine_options, projections_url

    await require_topic(config.kafka_bootstrap, config.ledger_topic)  # type: ignore[attr-defined]
    await require_head(projections_url(config), engine_options(config))  # type: ignore[arg-type]


def run_worker(config: object, loglevel: str) -> int:
    """Run the Faust worker until it stops; return the process exit status."""
    import faust

    from streams.worker.app import WorkerRuntime, create_app

    from streams.gc_settings import tune_gc

    tune_gc()
    runtime = WorkerRuntime(config)  # type: ignore[arg-type]
    if config.metrics_port:  # type: ignore[attr-defined]
        from streams.worker.metrics import WorkerMetrics

        runtime.metrics = WorkerMetrics()
        try:
            runtime.metrics.serve(config.metrics_host, config.metrics_port)  # type: ignore[attr-defined]
        except OSError as exc:
            click.echo(f"mrr worker: metrics port {config.metrics_port}: {exc}", err=True)  # type: ignore[attr-defined]
            return 2
    app = create_app(runtime)
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    runtime.stop = lambda: asyncio.ensure_future(worker.stop())
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    if runtime.fatal is not None:
        logging.getLogger(__name__).critical("mrr worker stopped: %s", runtime.fatal)
        return EX_SOFTWARE
    return code
