"""`mrr topics create`: create (or check) the ledger topic and its dead-letter topic on Kafka."""

from __future__ import annotations

import asyncio

import click

_EPILOG = """\b
Examples:
  mrr topics create --bootstrap localhost:9092
  MRR_KAFKA_BOOTSTRAP=kafka:9092 mrr topics create --partitions 24 --replication-factor 3

\b
Exit status:
  0  both topics exist with ledger settings (created now or before)
  1  an existing topic would lose events (compacted or finite retention), or Kafka failed
  2  usage or configuration error (e.g. no Kafka configured)
"""


@click.group("topics")
def command() -> None:
    """Administer the Kafka topics of the ledger."""


@command.command("create", epilog=_EPILOG)
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers [MRR_KAFKA_BOOTSTRAP].")
@click.option("--topic", default=None, help="Ledger topic name [MRR_LEDGER_TOPIC, mrr.ledger].")
@click.option(
    "--partitions",
    default=12,
    show_default=True,
    type=click.IntRange(min=1),
    help="Partitions of a new topic; fixed for good once created.",
)
@click.option(
    "--replication-factor", default=1, show_default=True, type=click.IntRange(min=1)
)
@click.option(
    "--min-insync-replicas",
    default=None,
    type=click.IntRange(min=1),
    help="Set when the replication factor is above 1 [default: factor - 1, at most 2].",
)
def create(
    bootstrap: str | None,
    topic: str | None,
    partitions: int,
    replication_factor: int,
    min_insync_replicas: int | None,
) -> None:
    """Create the ledger topic and `<topic>.dlq` if missing, then check both.

    New topics get cleanup.policy=delete, retention.ms=-1 and retention.bytes=-1 (the ledger is
    the system of record: Kafka must never delete or compact an event). An existing topic is
    left as it is, partition count included, but refused if it is compacted or has a finite
    retention. Safe to run again.
    """
    from ledger.kafka.topics import TopicSettingsError, ensure_topics
    from streams.config import load_config

    try:
        config = load_config({"kafka_bootstrap": bootstrap, "ledger_topic": topic})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if not config.kafka_bootstrap:
        raise click.UsageError("no Kafka configured: pass --bootstrap or set MRR_KAFKA_BOOTSTRAP")
    try:
        statuses = asyncio.run(
            ensure_topics(
                config.kafka_bootstrap,
                config.ledger_topic,
                partitions=partitions,
                replication_factor=replication_factor,
                min_insync_replicas=min_insync_replicas,
            )
        )
    except TopicSettingsError as exc:
        click.echo(f"mrr topics create: {exc}", err=True)
        raise SystemExit(1) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - any Kafka failure: say what and stop
        click.echo(f"mrr topics create: Kafka at {config.kafka_bootstrap}: {exc!r}", err=True)
        raise SystemExit(1) from None
    for status in statuses:
        verb = "created" if status.created else "exists, checked"
        settings = ", ".join(
            f"{key}={status.configs[key]}"
            for key in ("cleanup.policy", "retention.ms", "retention.bytes", "min.insync.replicas")
            if key in status.configs
        )
        click.echo(f"{status.name}: {verb}; {status.partitions} partitions; {settings}")
