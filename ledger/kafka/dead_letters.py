"""`DeadLetterWriter`: sends poison messages of the ledger to its dead-letter topic.

The dead letter keeps the original key and value byte for byte; headers say why and where it
came from: `mrr.reason` (`path: why`), `mrr.source.topic`, `mrr.source.partition`,
`mrr.source.offset`, `mrr.source.timestamp_ms`. Delivery is at least once: a worker that crashes
between sending a dead letter and committing its batch sends it again after the restart, so a
dead-letter consumer should deduplicate by source topic, partition and offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.kafka.client import KafkaClient, idempotent_producer_options
from ledger.kafka.messages import RawRecord


@dataclass(frozen=True)
class DeadLetter:
    """A poison `RawRecord` and the reason it was refused."""

    record: RawRecord
    reason: str


def dead_letter_headers(source_topic: str, letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The Kafka headers of one dead letter."""
    record = letter.record
    return [
        ("mrr.reason", letter.reason.encode()),
        ("mrr.source.topic", source_topic.encode()),
        ("mrr.source.partition", str(record.partition).encode()),
        ("mrr.source.offset", str(record.offset).encode()),
        ("mrr.source.timestamp_ms", str(record.timestamp_ms).encode()),
    ]


class DeadLetterWriter(KafkaClient):
    """Writes dead letters to `topic` (idempotent producer, `acks=all`)."""

    def __init__(self, bootstrap: str, topic: str, source_topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.source_topic = source_topic
        self._bootstrap = bootstrap

    def _create(self) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(
            **idempotent_producer_options(self._bootstrap), max_request_size=4 * 1024 * 1024
        )

    async def send_many(self, letters: Sequence[DeadLetter]) -> None:
        """Send the dead letters and wait until Kafka acknowledged every one (raises if not)."""
        if not letters:
            return
        await self.start()
        sent = [
            await self._kafka.send(
                self.topic,
                key=letter.record.key,
                value=letter.record.value,
                headers=dead_letter_headers(self.source_topic, letter),
            )
            for letter in letters
        ]
        await asyncio.gather(*sent)
