"""`mrr serve`: run the HTTP ingest API (`ledger.api`) with uvicorn on the configured ledger."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from litestar import Litestar

    from ledger.api import ApiSettings
    from streams.config import Config

_EPILOG = """\b
Examples:
  MRR_API_TOKENS=s3cret mrr serve
  MRR_API_TOKENS=tok-a,tok-b mrr serve --host 0.0.0.0 --port 9000
  MRR_KAFKA_BOOTSTRAP=kafka:9092 MRR_API_TOKENS=s3cret mrr serve
  mrr serve --insecure-no-auth          # local experiments only
  curl -H 'Authorization: Bearer s3cret' -d @event.json localhost:8080/v1/events

\b
Endpoints (docs/api.md):
  POST /v1/events      one event or a JSON array of up to 1,000 (bearer token)
  POST /v1/webhooks/stripe  Stripe webhooks (signed with MRR_STRIPE_WEBHOOK_SECRET)
  GET  /healthz        the process is up
  GET  /readyz         the ledger is reachable (else 503)
  GET  /metrics        with --metrics: the business gauges of `mrr exporter`
  GET  /schema         OpenAPI (JSON at /schema/openapi.json)

\b
Exit status:
  2  usage or configuration error: no token configured (and no
     --insecure-no-auth), Kafka unreachable, ledger topic missing
"""


@click.command("serve", epilog=_EPILOG)
@click.option("--host", default=None, help="Interface to listen on [MRR_API_HOST, 127.0.0.1].")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="TCP port [MRR_API_PORT, 8080].")
@click.option("--data-dir", default=None, help="Directory of the embedded ledger [MRR_DATA_DIR].")
@click.option("--insecure-no-auth", is_flag=True,
              help="Serve /v1/* without a bearer token. For local use only: anyone who can "
                   "reach the port can write to the ledger.")
@click.option("--metrics/--no-metrics", "api_metrics", default=None,
              help="Also serve the business gauges of `mrr exporter` at GET /metrics (no token), "
                   "read from the configured projections [MRR_API_METRICS, off]. Enable it in "
                   "exactly one process: either here or `mrr exporter`, never both.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def command(host: str | None, port: int | None, data_dir: str | None, insecure_no_auth: bool,
            api_metrics: bool | None, log_level: str) -> None:
    """Serve the HTTP ingest API: billing systems POST events, the ledger stores them.

    Every event is validated like `mrr ingest` does; the answer lists each one as accepted,
    duplicate or rejected (with the field path and the reason). A batch is all-or-nothing
    unless the request says ?partial=true.

    \b
    Ledger (see `streams/config.py`):
      embedded  (default) <data_dir>/ledger.sqlite; duplicates and conflicts
                are detected. Nothing is projected here: `mrr report`
                projects pending events when it runs.
      Kafka     when MRR_KAFKA_BOOTSTRAP is set: appended to MRR_LEDGER_TOPIC,
                which must exist (`mrr topics create`). A re-sent event is
                stored again and answered `accepted`; `mrr worker` applies each
                event_id once. When the producer cannot take a batch within
                MRR_API_APPEND_TIMEOUT_SECONDS the answer is 429 + Retry-After.

    \b
    Security:
      /v1/* needs `Authorization: Bearer <token>` with a token of
      MRR_API_TOKENS (comma-separated; or api_tokens in mrr.toml). Without
      any token the command refuses to start unless --insecure-no-auth.
      Bodies above MRR_API_MAX_BODY_BYTES (default 8 MiB) get 413.
    """
    import uvicorn

    from ledger.api import InsecureConfigurationError
    from streams.config import load_config

    try:
        config = load_config({"api_host": host, "api_port": port, "data_dir": data_dir,
                              "api_metrics": api_metrics})
        settings = api_settings(config, insecure_no_auth=insecure_no_auth)
        settings.check()
    except InsecureConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if config.kafka_bootstrap:
        _require_topic(config)
    if config.api_metrics:
        import logging

        logging.getLogger("alembic").setLevel(logging.WARNING)  # the store's schema check chatter
    if insecure_no_auth:
        click.echo("mrr serve: WARNING: --insecure-no-auth: /v1/* accepts requests without a "
                   "token", err=True)
    uvicorn.run(build_app(config, settings), host=config.api_host, port=config.api_port,
                log_level=log_level)


def api_settings(config: "Config", *, insecure_no_auth: bool = False) -> "ApiSettings":
    """The API's settings from the `mrr` configuration."""
    import datetime as dt

    from ledger.api import ApiSettings

    return ApiSettings(
        tokens=tuple(config.api_token_list()),
        insecure_no_auth=insecure_no_auth,
        max_body_bytes=config.api_max_body_bytes,
        horizon=dt.timedelta(days=config.future_horizon_days),
        # Only the Kafka producer can be "full"; an embedded append finishes in its thread anyway.
        append_timeout_seconds=config.api_append_timeout_seconds if config.kafka_bootstrap else None,
        stripe_webhook_secret=config.stripe_webhook_secret,
    )


def build_app(config: "Config", settings: "ApiSettings") -> "Litestar":
    """The ingest API on the ledger `config` names: Kafka when `kafka_bootstrap` is set, else
    the embedded ledger in `data_dir`, each with its readiness check; plus `GET /metrics` when
    `api_metrics` is set."""
    from functools import partial

    from ledger.api import create_app
    from ledger.kafka.topics import require_topic
    from streams import bootstrap

    if config.api_metrics:
        route, lifespan = business_metrics_route(config)
        create_app = partial(create_app, extra_routes=[route], extra_lifespans=[lifespan])

    if config.kafka_bootstrap:
        bootstrap_servers, topic = config.kafka_bootstrap, config.ledger_topic

        async def kafka_writer() -> Any:
            return await bootstrap.open_kafka_writer(config)

        async def topic_exists() -> None:
            await require_topic(bootstrap_servers, topic)

        return create_app(kafka_writer, settings, readiness=topic_exists)

    async def embedded_writer() -> Any:
        return await asyncio.to_thread(bootstrap.open_embedded_ledger, config)

    async def ledger_opens() -> None:
        ledger = await asyncio.to_thread(bootstrap.open_embedded_ledger, config)
        try:
            await ledger.end_offsets()
        finally:
            await ledger.close()

    return create_app(embedded_writer, settings, readiness=ledger_opens)


def business_metrics_route(config: "Config") -> tuple[Any, Any]:
    """`GET /metrics` (unauthenticated, like /healthz) rendering the business gauges, and the
    lifespan hook that opens the projections and refreshes them in the background: the
    collector, refresher and store checks of `mrr exporter` (`exporter.business_metrics`)."""
    from contextlib import asynccontextmanager, suppress

    from ledger.api.metrics_route import metrics
    from streams.cli.exporter import business_metrics

    @asynccontextmanager
    async def refreshed(app: "Litestar") -> Any:
        async with business_metrics(config) as (registry, refresher):
            app.state.metrics_registry = registry
            task = asyncio.ensure_future(refresher.run())
            try:
                yield
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task

    return metrics, refreshed


def _require_topic(config: "Config") -> None:
    from ledger.kafka.topics import KafkaSetupError, require_topic

    assert config.kafka_bootstrap
    try:
        asyncio.run(require_topic(config.kafka_bootstrap, config.ledger_topic))
    except KafkaSetupError as exc:
        click.echo(f"mrr serve: {exc}", err=True)
        raise SystemExit(2) from None
