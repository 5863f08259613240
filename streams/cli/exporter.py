"""`mrr exporter`: serve the business gauges of the projections to Prometheus.

Exactly one process should export the business gauges (DESIGN.md decision 7): they are read from
the projections, so every exporter would show the same numbers and Prometheus sums of them would
double. Workers export only their own operational metrics (`mrr worker --metrics-port`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Coroutine

import click

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from projections.metrics import SnapshotRefresher
    from streams.config import Config

DEFAULT_PORT = 9108

log = logging.getLogger(__name__)

_EPILOG = """\b
Reads the configured projections: SQLite in --data-dir (the embedded default;
`mrr ingest` keeps it projected) or PostgreSQL at MRR_DATABASE_URL (kept current
by `mrr worker`). It never writes. Metric names: docs/metrics.md.
"""


@click.command("exporter", epilog=_EPILOG)
@click.option("--port", "metrics_port", type=click.IntRange(1, 65535), default=None,
              help=f"TCP port of /metrics [MRR_METRICS_PORT, {DEFAULT_PORT}].")
@click.option("--host", "metrics_host", default=None, help="Interface to listen on [MRR_METRICS_HOST, 0.0.0.0].")
@click.option("--refresh-seconds", "metrics_refresh_seconds", type=click.FloatRange(min=0.1), default=None,
              help="Seconds between reads of the projections [MRR_METRICS_REFRESH_SECONDS, 15].")
@click.option("--top-n", "metrics_top_n", type=click.IntRange(min=1), default=None,
              help="Plans/intervals/currencies exported by name; the rest is `other` [MRR_METRICS_TOP_N, 20].")
@click.option("--data-dir", default=None, help="Embedded ledger and SQLite projections [MRR_DATA_DIR].")
@click.option("--database-url", default=None, help="Projection database URL [MRR_DATABASE_URL].")
@click.option("--reporting-currency", default=None, metavar="ISO4217", help="Reporting currency [USD].")
def command(**flags: object) -> None:
    """Serve MRR, ARR, customers, ARPA, movements, churn rates, NRR and MRR by segment as
    Prometheus gauges on http://HOST:PORT/metrics, re-read from the projections in the background."""
    from streams.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's plugin chatter
    try:
        config = load_config(flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        asyncio.run(serve(config))
    except (RuntimeError, OSError) as exc:
        click.echo(f"mrr exporter: {exc}", err=True)
        raise SystemExit(2) from None


async def serve(config: Config) -> None:
    """Open the store, serve /metrics and refresh until SIGTERM/SIGINT."""
    from prometheus_client import start_http_server

    async with business_metrics(config) as (registry, refresher):
        port = config.metrics_port or DEFAULT_PORT
        server, thread = start_http_server(port, addr=config.metrics_host, registry=registry)
        log.info("mrr exporter: serving business gauges on %s:%d/metrics", config.metrics_host, port)
        try:
            await _run_until_signalled(refresher.run())
        finally:
            server.shutdown()
            thread.join(5)


@asynccontextmanager
async def business_metrics(config: Config) -> AsyncIterator[tuple[CollectorRegistry, SnapshotRefresher]]:
    """The configured projection store, checked against the MRR settings, with a registry holding
    a `BusinessCollector` and the `SnapshotRefresher` that keeps it current (run `refresher.run()`
    as long as the registry is served). Shared by `mrr exporter` and `mrr serve --metrics`; the
    store is closed on exit. Raises RuntimeError when the projections have other settings."""
    from prometheus_client import CollectorRegistry

    from projections.metrics import BusinessCollector, SnapshotRefresher
    from projections.projector import settings_json, settings_match
    from streams.bootstrap import open_store

    store = await open_store(config)
    try:
        stored = await store.stored_settings()
        settings = config.mrr_settings()
        if stored is not None and not settings_match(stored, settings):
            raise RuntimeError(f"projections were computed with {stored}, not {settings_json(settings)}")
        collector = BusinessCollector()
        registry = CollectorRegistry()
        registry.register(collector)
        yield registry, SnapshotRefresher(store, collector, config.reporting_currency,
                                          interval=config.metrics_refresh_seconds,
                                          top=config.metrics_top_n)
    finally:
        await store.close()


async def _run_until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run the coroutine `work` until it ends or SIGTERM/SIGINT arrives."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("mrr exporter: stopping")
