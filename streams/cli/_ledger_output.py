"""What `mrr ingest` and `mrr import-periods` share about the ledger they write to.

On the embedded ledger the commands project right away. On Kafka they only append: the
`mrr worker` projects, and the writer cannot tell a re-sent event from a new one (docs/kafka.md),
so duplicates are reported as unknown (`n/a`, JSON null) rather than as zero.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

WORKER_PROJECTS = "updated by mrr worker"
"""The `projections` summary on Kafka: ingest does not project, the worker does."""


def kafka_note(config: Any) -> str:
    """The stderr line that says where events went and what `accepted` means on Kafka."""
    return (f"ledger: Kafka topic {config.ledger_topic!r}; a re-sent event_id is stored again and "
            "counted as accepted (the worker applies each event_id once)")


def ledger_fields(config: Any) -> dict[str, Any]:
    """JSON fields naming the ledger written to."""
    if config.kafka_bootstrap:
        return {"ledger": "kafka", "topic": config.ledger_topic}
    return {"ledger": "embedded"}


def fail_kafka(command: str, config: Any, exc: Exception) -> NoReturn:
    """Exit for an error raised while using the Kafka ledger, or re-raise one that is not Kafka's.

    Exit 2 when Kafka could not be used at all (unreachable, ledger topic missing): nothing was
    written. Exit 1 when a write failed: part of the input may be stored, and re-running it is
    safe because the worker applies each event_id once."""
    from aiokafka.errors import KafkaError

    from ledger.kafka.topics import KafkaSetupError

    if isinstance(exc, KafkaSetupError):
        click.echo(f"mrr {command}: {exc}", err=True)
        raise SystemExit(2) from None
    if isinstance(exc, (KafkaError, OSError, TimeoutError)):
        click.echo(f"mrr {command}: writing to Kafka at {config.kafka_bootstrap} failed: {exc!r}. "
                   "Part of the input may be stored; re-running it is safe (the worker applies "
                   "each event_id once).", err=True)
        raise SystemExit(1) from None
    raise exc
