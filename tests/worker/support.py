"""Helpers for the worker tests: topics, publishing, worker subprocesses, expected projections.

The worker always runs as a real `mrr worker` subprocess against the real broker and PostgreSQL.
The expected state is computed from scratch: the whole topic read back with `read_raw`, decoded
exactly as the worker decodes, applied by one `Projector` into a fresh SQLite store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import select

from ledger.events import EventBase
from ledger.kafka.reader import KafkaLedgerReader
from ledger.kafka.topics import ensure_topics
from ledger.kafka.writer import KafkaLedgerWriter
from projections import schema, totals
from projections.engine import MrrSettings
from projections.migrate import upgrade
from projections.projector import Projector
from projections.store import ProjectionStore, sqlite_url
from streams.worker.pipeline import decode_batch
from tests.stack.base import spawn, tail

REPO = Path(__file__).resolve().parents[2]
MRR = str(Path(sys.executable).with_name("mrr"))
PARTITIONS = 4


async def new_topic(bootstrap: str, partitions: int = PARTITIONS) -> str:
    topic = "ledger-" + uuid.uuid4().hex[:10]
    await ensure_topics(bootstrap, topic, partitions=partitions)
    return topic


async def publish(bootstrap: str, topic: str, events: Sequence[EventBase], chunk: int = 5000,
                  **stamp: Any) -> None:
    """Append `events` through the real `KafkaLedgerWriter`, `chunk` per `append_many`."""
    async with KafkaLedgerWriter(bootstrap, topic) as writer:
        for i in range(0, len(events), chunk):
            await writer.append_many(events[i : i + chunk], **stamp)


async def publish_arrivals(bootstrap: str, topic: str, arrivals: Sequence[tuple[dt.datetime, EventBase]]) -> None:
    """Append demo events each with `recorded_at` = its arrival, exactly the bytes and keys
    `KafkaLedgerWriter` writes, but pipelined (one writer call per arrival instant is slow)."""
    import msgspec
    from aiokafka import AIOKafkaProducer

    from ledger.events import encode_event
    from ledger.kafka.writer import key_of

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        pending = []
        for arrival, event in arrivals:
            stamped = msgspec.structs.replace(event, recorded_at=arrival.astimezone(dt.UTC))
            pending.append(await producer.send(topic, value=encode_event(stamped), key=key_of(event),
                                               timestamp_ms=int(arrival.timestamp() * 1000)))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def publish_raw(bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]) -> None:
    """Write raw (key, value) messages, as a foreign producer could."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def migrated(url: str) -> str:
    """`url` (a fresh database) upgraded to the Alembic head, as an asyncpg URL."""
    await upgrade(url)
    return url


@dataclass
class Worker:
    """One `mrr worker` subprocess."""

    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def tail(self) -> str:
        return tail(self.log, 60)


def start_worker(tmp_path: Path, bootstrap: str, database_url: str, topic: str, *,
                 name: str = "w", group: str | None = None, extra_env: dict[str, str] | None = None,
                 args: Sequence[str] = ()) -> Worker:
    log = tmp_path / f"worker-{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env.update(MRR_KAFKA_BOOTSTRAP=bootstrap, MRR_DATABASE_URL=database_url, MRR_LEDGER_TOPIC=topic,
               MRR_WORKER_GROUP=group or f"g-{topic}", MRR_DATA_DIR=str(tmp_path / "data"),
               PYTHONUNBUFFERED="1", **(extra_env or {}))
    proc = spawn([MRR, "worker", *args], log, cwd=tmp_path, env=env)
    return Worker(proc, log)


async def stored_offsets(database_url: str) -> dict[int, int]:
    store = ProjectionStore.from_url(database_url)
    try:
        return await store.offsets()
    finally:
        await store.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    async with KafkaLedgerReader(bootstrap, topic) as reader:
        return await reader.end_offsets()


async def wait_caught_up(bootstrap: str, topic: str, database_url: str, workers: Sequence[Worker],
                         timeout: float = 120) -> None:
    """Wait until the stored offsets reach the end of every partition (workers must stay up)."""
    ends = await end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout
    while True:
        for worker in workers:
            assert worker.alive(), f"worker exited with {worker.proc.returncode}:\n{worker.tail()}"
        offsets = await stored_offsets(database_url)
        if all(offsets.get(p, 0) >= end for p, end in ends.items()):
            return
        if time.monotonic() > deadline:
            logs = "\n".join(w.tail() for w in workers)
            raise AssertionError(f"not caught up: stored {offsets}, ends {ends}\n{logs}")
        await asyncio.sleep(0.3)


async def expected_store(bootstrap: str, topic: str, path: Path, settings: MrrSettings = MrrSettings()) -> ProjectionStore:
    """The projections computed from scratch from the whole topic, in a fresh SQLite store."""
    store = ProjectionStore.from_url(sqlite_url(path))
    await store.create_all()
    projector = Projector(store, settings)
    async with KafkaLedgerReader(bootstrap, topic) as reader:
        for partition, end in (await reader.end_offsets()).items():
            position = 0
            while position < end:
                raws = await reader.read_raw(partition, position, 20_000)
                records, _ = decode_batch(raws, horizon=dt.timedelta(days=366))
                await projector.apply_batch(records, {partition: raws[-1].offset + 1},
                                            starts={partition: position})
                position = raws[-1].offset + 1
    return store


async def snapshot(store_or_url: ProjectionStore | str) -> dict[str, Any]:
    """Everything that must be identical: current rows of every bitemporal table (no ids or
    recorded times), the event index, reference tables, conflicts, offsets and the bridge totals
    (and whether they equal the rows)."""
    store = ProjectionStore.from_url(store_or_url) if isinstance(store_or_url, str) else store_or_url

    def read(conn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table in schema.BITEMPORAL_TABLES:
            cols = [c for c in table.c if c.name not in ("id", "recorded_at", "superseded_at")]
            rows = conn.execute(select(*cols).where(table.c.superseded_at.is_(None))).all()
            out[table.name] = sorted(tuple(str(v) for v in r) for r in rows)
        ev = schema.events
        out["events"] = sorted(conn.execute(select(ev.c.event_id, ev.c.partition, ev.c["offset"], ev.c.body)).all())
        for table in (schema.fx_rates, schema.acquisition_costs, schema.customer_attributes, schema.event_conflicts):
            out[table.name] = sorted(tuple(str(v) for v in r) for r in conn.execute(select(table)).all())
        out["offsets"] = dict(conn.execute(select(schema.projection_offsets)).all())
        t = schema.bridge_totals  # what the current rows add up to (not when they were recorded)
        out["bridge_totals"] = sorted(conn.execute(select(t.c.day, t.c.measure, t.c.amount, t.c.row_count).where(
            (t.c.amount != 0) | (t.c.row_count != 0))).all())
        out["bridge_totals_differences"] = totals.check(conn)  # [] where the totals equal the rows
        return out

    try:
        return await store.read(read)
    finally:
        if isinstance(store_or_url, str):
            await store.close()


async def assert_equals_from_scratch(bootstrap: str, topic: str, url: str, tmp_path: Path) -> dict[str, Any]:
    """Assert that the projections at `url` equal a from-scratch computation of the whole topic
    (`snapshot` of both, key by key); return the projections' snapshot."""
    expected = await expected_store(bootstrap, topic, tmp_path / "expected.sqlite")
    try:
        want = await snapshot(expected)
    finally:
        await expected.close()
    got = await snapshot(url)
    for key in want:
        assert got[key] == want[key], f"{key} differs"
    return got


async def read_dead_letters(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every message of `<topic>.dlq`: (value, headers)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    dlq = topic + ".dlq"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(dlq, p) for p in (consumer.partitions_for_topic(dlq) or range(PARTITIONS))]
        ends = await consumer.end_offsets(parts)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out = []
        async def pending() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in parts])

        while await pending():
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out.extend((m.value, dict(m.headers)) for m in messages)
        return out
    finally:
        await consumer.stop()
