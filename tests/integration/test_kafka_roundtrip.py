"""Proof: the real broker takes 10,000 keyed, idempotent, acks=all messages and a consumer group
reads every one back, each key's messages in the order they were sent."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.kafka

MESSAGES = 10_000
KEYS = 200
PARTITIONS = 6


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def test_ten_thousand_keyed_messages_round_trip_in_key_order(kafka_bootstrap: str) -> None:
    topic = f"proof-roundtrip-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, topic, PARTITIONS)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=f"customer-{i % KEYS}".encode(), value=str(i).encode())
            for i in range(MESSAGES)
        ]
        metadata = await asyncio.gather(*sends)
    finally:
        await producer.stop()
    assert {m.partition for m in metadata} == set(range(PARTITIONS))

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                                group_id=f"proof-{topic}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    seen: dict[bytes, list[int]] = defaultdict(list)
    partition_of: dict[bytes, set[int]] = defaultdict(set)
    try:
        async with asyncio.timeout(60):
            while sum(map(len, seen.values())) < MESSAGES:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        seen[record.key].append(int(record.value))
                        partition_of[record.key].add(tp.partition)
                await consumer.commit()
    finally:
        await consumer.stop()

    assert sum(map(len, seen.values())) == MESSAGES
    assert len(seen) == KEYS
    for key, values in seen.items():
        k = int(key.decode().split("-")[1])
        assert values == list(range(k, MESSAGES, KEYS)), f"{key!r} out of order or incomplete"
        assert len(partition_of[key]) == 1, f"{key!r} spread over partitions"
