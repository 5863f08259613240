"""`KafkaLedgerWriter`: appends events to the ledger topic with an idempotent aiokafka producer.

- `enable_idempotence=True`, `acks="all"`: a retried send is written once and only after every
  in-sync replica has it; per partition, events land in the order they were sent.
- Key = `customer_id`, so all of a customer's events share one partition and keep their order.
  Reference events have no customer (`fx.rate_published`, `acquisition.cost_recorded`): their key
  is the event type, so each kind of reference data is ordered in one partition too.
- Value = `encode_event` (canonical JSON) with `recorded_at` stamped here, in UTC; a stamp never
  goes below the last one this writer issued, so one writer's `recorded_at` never decreases.
- No deduplication by `event_id`: Kafka has no unique index, so a re-sent event is stored again
  and reported `accepted`. The projector ignores an `event_id` it has already applied
  (docs/kafka.md explains the choice).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import msgspec

from ledger.events import EventBase, customer_of, encode_event, event_type
from ledger.kafka.client import KafkaClient, idempotent_producer_options
from ledger.ports import AppendResult

log = logging.getLogger(__name__)


def key_of(event: EventBase) -> bytes:
    """The partitioning key: the customer id, or the event type for reference events."""
    return (customer_of(event) or event_type(event)).encode()


class KafkaLedgerWriter(KafkaClient):
    """`LedgerWriter` on a Kafka topic. Use `async with` or call `start()` / `close()`."""

    def __init__(self, bootstrap: str, topic: str, **producer_options: object) -> None:
        super().__init__()
        self.topic = topic
        self._options = {**idempotent_producer_options(bootstrap), "linger_ms": 5, **producer_options}
        self._last_stamp: dt.datetime | None = None

    def _create(self) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(**self._options)

    async def append_many(
        self, events: Sequence[EventBase], *, now: dt.datetime | None = None
    ) -> list[AppendResult]:
        """Send the events in order and wait until Kafka acknowledged all of them.

        Every event is `accepted` with its partition and offset. If a send fails the error is
        raised; earlier events of the batch may already be stored, and re-sending the whole
        batch is safe (the projector skips event_ids it has applied)."""
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        await self.start()
        stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        if self._last_stamp is not None and stamp < self._last_stamp:
            stamp = self._last_stamp
        self._last_stamp = stamp
        sent = []
        for event in events:
            body = encode_event(msgspec.structs.replace(event, recorded_at=stamp))
            sent.append(
                await self._kafka.send(
                    self.topic,
                    value=body,
                    key=key_of(event),
                    timestamp_ms=int(stamp.timestamp() * 1000),
                )
            )
        metadata = await asyncio.gather(*sent)
        return [
            AppendResult(event.event_id, "accepted", meta.partition, meta.offset)
            for event, meta in zip(events, metadata)
        ]

    async def close(self, timeout: float = 10.0) -> None:
        """Flush and stop the producer (idempotent), giving up after `timeout` seconds.

        With the broker unreachable the flush would wait forever; messages still unsent then
        were never acknowledged, so no caller was told they were accepted."""
        producer = self._detach()
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), timeout)
        except TimeoutError:
            log.warning("Kafka producer did not flush within %.0f s (broker unreachable?); "
                        "unacknowledged messages abandoned", timeout)
