"""`KafkaLedgerReader`: reads the ledger topic by partition and offset (no consumer group).

Uses aiokafka `assign` + `seek` + `getmany` on a group-less consumer, so reading commits nothing
and never joins a rebalance: the replay job and the projector's gap filler read exact ranges.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ledger.kafka.client import KafkaClient
from ledger.kafka.messages import RawRecord
from ledger.ports import LedgerRecord
from ledger.upcast import decode_stored

_POLL_MS = 500


def partition_for_key(key: bytes, partitions: Sequence[int]) -> int:
    """The partition a keyed record lands in: what aiokafka's `DefaultPartitioner` (and the Java
    client) computes, murmur2 of the key made positive, modulo the partition count, as an index
    into the sorted partition numbers. `mrr ledger customer` reads only that partition."""
    from aiokafka.partitioner import murmur2

    ordered = sorted(partitions)
    if not ordered:
        raise ValueError("a topic has at least one partition")
    return ordered[(murmur2(key) & 0x7FFFFFFF) % len(ordered)]


class KafkaLedgerReader(KafkaClient):
    """`LedgerReader` on a Kafka topic. Use `async with` or call `start()` / `close()`."""

    def __init__(self, bootstrap: str, topic: str, **consumer_options: object) -> None:
        super().__init__()
        self.topic = topic
        self._options = {
            "bootstrap_servers": bootstrap,
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            **consumer_options,
        }
        self._lock = asyncio.Lock()  # one consumer, one assignment at a time

    def _create(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(**self._options)

    async def partitions(self) -> list[int]:
        """The topic's partition numbers, sorted; raises LookupError if the topic is missing."""
        await self.start()
        # `consumer.topics()` fetches fresh metadata but returns only names, and
        # `partitions_for_topic` reads a cache that knows only subscribed/assigned topics.
        cluster = await self._kafka._client.fetch_all_metadata()
        found = cluster.partitions_for_topic(self.topic)
        if not found:
            raise LookupError(f"topic {self.topic!r} does not exist (run `mrr topics create`)")
        return sorted(found)

    async def end_offsets(self) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""
        from aiokafka import TopicPartition

        tps = [TopicPartition(self.topic, p) for p in await self.partitions()]
        ends = await self._kafka.end_offsets(tps)
        return {tp.partition: ends[tp] for tp in tps}

    async def read(self, partition: int, from_offset: int, limit: int) -> list[LedgerRecord]:
        """Up to `limit` records of `partition` from `from_offset` on, in offset order, decoded
        (old schema versions upcast). Returns fewer only when the end of the partition (as of the
        call) is reached. A message that is not an event raises (use `read_raw` to see it)."""
        return [
            LedgerRecord(partition, raw.offset, decode_stored(raw.value or b""))
            for raw in await self.read_raw(partition, from_offset, limit)
        ]

    async def read_raw(self, partition: int, from_offset: int, limit: int) -> list[RawRecord]:
        """Like `read`, but the messages as Kafka stored them (the worker's gap filler decodes
        them itself and sends poison messages to the dead-letter topic)."""
        from aiokafka import TopicPartition

        await self.start()
        tp = TopicPartition(self.topic, partition)
        async with self._lock:
            end = (await self._kafka.end_offsets([tp]))[tp]
            if from_offset >= end or limit <= 0:
                return []
            self._kafka.assign([tp])
            self._kafka.seek(tp, from_offset)
            records: list[RawRecord] = []
            while len(records) < limit and await self._kafka.position(tp) < end:
                batch = await self._kafka.getmany(
                    tp, timeout_ms=_POLL_MS, max_records=limit - len(records)
                )
                records.extend(
                    RawRecord(partition, m.offset, m.key, m.value, m.timestamp)
                    for m in batch.get(tp, [])
                    if m.offset >= from_offset
                )
            return records[:limit]
