"""`scan_topic`: read every partition of the ledger topic from offset 0 up to given end offsets,
as fast as aiokafka delivers: all partitions assigned at once, large `getmany` batches, no
consumer group (nothing is committed; no rebalance). The replay job and `mrr verify` use it.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Mapping

from ledger.kafka.messages import RawRecord

MAX_RECORDS = 50_000
"""Most records per `getmany` (a few MB of JSON)."""

CONSUMER_OPTIONS: dict[str, Any] = {
    "group_id": None,
    "enable_auto_commit": False,
    "isolation_level": "read_committed",
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
}
"""Fetch large chunks: a scan is throughput-bound, not latency-bound."""


async def scan_topic(bootstrap: str, topic: str, ends: Mapping[int, int], *,
                     max_records: int = MAX_RECORDS) -> AsyncIterator[list[RawRecord]]:
    """Yield the topic's messages in batches, every partition from offset 0 up to (not
    including) `ends[p]`; per partition in offset order, partitions interleaved."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    pending = {TopicPartition(topic, p): end for p, end in ends.items() if end > 0}
    if not pending:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **CONSUMER_OPTIONS)
    await consumer.start()
    try:
        consumer.assign(list(pending))
        for tp in pending:
            consumer.seek(tp, 0)
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=max_records)
            batch: list[RawRecord] = []
            for tp, messages in fetched.items():
                end = pending.get(tp)
                if end is None:
                    continue
                batch.extend(RawRecord(tp.partition, m.offset, m.key, m.value, m.timestamp)
                             for m in messages if m.offset < end)
                if messages and messages[-1].offset + 1 >= end:
                    del pending[tp]
                    consumer.pause(tp)
            for tp in list(pending):  # a partition whose tail is transaction markers or gaps
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
            if batch:
                yield batch
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition of `topic`, the offset the next record will get (LookupError: no topic)."""
    from ledger.kafka.reader import KafkaLedgerReader

    async with KafkaLedgerReader(bootstrap, topic) as reader:
        return await reader.end_offsets()
