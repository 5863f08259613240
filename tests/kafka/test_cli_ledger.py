"""`mrr ledger tail|get|customer` against the real broker (and PostgreSQL's event index), plus the
embedded ledger. Positions are checked against what the writer reported, not re-derived."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import queue
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.embedded import EmbeddedLedger
from ledger.kafka.reader import KafkaLedgerReader, partition_for_key
from ledger.kafka.writer import KafkaLedgerWriter
from ledger.ports import AppendResult
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.store import ProjectionStore
from streams.cli.main import cli
from streams.worker.pipeline import decode_batch
from tests.ledger.contract import event
from tests.ledger.factory import fx, started, with_
from tests.worker.support import MRR, migrated, new_topic, publish_raw

T0 = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


def run(tmp_path: Path, *args: str, **env: str) -> Any:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    environ = {"MRR_KAFKA_BOOTSTRAP": "", "MRR_DATABASE_URL": "", "MRR_LEDGER_TOPIC": "",
               "MRR_DATA_DIR": str(tmp_path / "data"), "MRR_CONFIG": str(tmp_path / "absent.toml"),
               **env}
    return runner.invoke(cli, ["ledger", *args], env=environ)


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def positions(rows: list[dict[str, Any]]) -> list[tuple[int, int, str | None]]:
    return [(r["partition"], r["offset"], r.get("event_id")) for r in rows]


def subscription(event_id: str, customer: str, amount: int = 10000) -> Any:
    raw = started(event_id, customer_id=customer, subscription_id=f"sub-{customer}")
    return event(with_(raw, "terms.items.0.unit_amount", amount))


async def append_one_by_one(bootstrap: str, topic: str, events: list[Any]) -> list[AppendResult]:
    """Each event in its own append, one second apart: recorded_at orders them across partitions."""
    async with KafkaLedgerWriter(bootstrap, topic) as writer:
        return [(await writer.append_many([e], now=T0 + dt.timedelta(seconds=i)))[0]
                for i, e in enumerate(events)]


def record_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every `read_raw(partition, from_offset, limit)` the command makes."""
    calls: list[tuple[int, int, int]] = []
    original = KafkaLedgerReader.read_raw

    async def spy(self: KafkaLedgerReader, partition: int, from_offset: int, limit: int) -> Any:
        calls.append((partition, from_offset, limit))
        return await original(self, partition, from_offset, limit)

    monkeypatch.setattr(KafkaLedgerReader, "read_raw", spy)
    return calls


@pytest.fixture
def busy_topic(kafka_bootstrap: str) -> tuple[str, list[AppendResult], list[Any]]:
    """12 events of 5 customers over 3 partitions, then one undecodable record keyed cus-1."""
    events = [subscription(f"evt-{i:02d}", f"cus-{i % 5}") for i in range(12)]
    topic = asyncio.run(new_topic(kafka_bootstrap, partitions=3))
    results = asyncio.run(append_one_by_one(kafka_bootstrap, topic, events))
    asyncio.run(publish_raw(kafka_bootstrap, topic, [(b"cus-1", b"this is not json")]))
    return topic, results, events


def test_tail_shows_the_last_n_in_recorded_order_with_positions(
    tmp_path: Path, kafka_bootstrap: str, busy_topic: tuple[str, list[AppendResult], list[Any]]
) -> None:
    topic, results, _ = busy_topic
    assert len({r.partition for r in results}) > 1, "the events should span partitions"
    env = {"MRR_KAFKA_BOOTSTRAP": kafka_bootstrap, "MRR_LEDGER_TOPIC": topic}
    result = run(tmp_path, "tail", "-n", "5", "--json", **env)
    assert result.exit_code == 0, result.output + result.stderr
    rows = lines(result.stdout)
    # The raw record is stamped with the wall clock, later than every event's recorded_at (2024).
    want = [(r.partition, r.offset, r.event_id) for r in results[-4:]]
    assert positions(rows)[:4] == want
    assert rows[1]["recorded_at"] == "2024-06-01T12:00:09Z" and rows[1]["type"] == "subscription.started"
    assert rows[1]["terms"]["items"][0]["unit_amount"] == 10000
    poison = rows[4]
    assert poison["key"] == "cus-1" and poison["value"] == "this is not json"
    assert poison["undecodable"] and "event_id" not in poison

    table = run(tmp_path, "tail", "-n", "3", **env)
    assert table.exit_code == 0, table.output + table.stderr
    body = table.stdout.splitlines()
    assert body[0].split() == ["partition", "offset", "recorded_at", "occurred_at", "type",
                               "customer_id", "event_id"]
    for line, r in zip(body[1:3], results[-2:]):
        assert line.split()[:2] == [str(r.partition), str(r.offset)] and line.split()[-1] == r.event_id
    assert "undecodable" in body[3] and "cus-1" in body[3]


def test_tail_follow_prints_new_events_until_ctrl_c(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = asyncio.run(new_topic(kafka_bootstrap, partitions=2))
    asyncio.run(append_one_by_one(kafka_bootstrap, topic, [subscription("old", "cus-a")]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env.update(MRR_KAFKA_BOOTSTRAP=kafka_bootstrap, MRR_LEDGER_TOPIC=topic,
               MRR_CONFIG=str(tmp_path / "absent.toml"))
    proc = subprocess.Popen([MRR, "ledger", "tail", "-n", "1", "--follow", "--json"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    received: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [received.put(line) for line in proc.stdout], daemon=True).start()
    try:
        assert json.loads(received.get(timeout=60))["event_id"] == "old"
        new = asyncio.run(append_one_by_one(kafka_bootstrap, topic,
                                            [subscription("new-1", "cus-b"), subscription("new-2", "cus-c")]))
        followed = [json.loads(received.get(timeout=30)) for _ in new]
        assert positions(followed) == [(r.partition, r.offset, r.event_id) for r in new]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_get_scans_the_topic_and_prints_every_copy(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = asyncio.run(new_topic(kafka_bootstrap, partitions=3))
    events = [subscription("evt-x", "cus-1"), subscription("other", "cus-2"),
              subscription("evt-x", "cus-1"), subscription("evt-x", "cus-1", amount=20000)]
    results = asyncio.run(append_one_by_one(kafka_bootstrap, topic, events))
    env = {"MRR_KAFKA_BOOTSTRAP": kafka_bootstrap, "MRR_LEDGER_TOPIC": topic}

    result = run(tmp_path, "get", "evt-x", "--json", **env)
    assert result.exit_code == 0, result.output + result.stderr
    assert "scanning every partition" in result.stderr and "MRR_DATABASE_URL unset" in result.stderr
    copies = lines(result.stdout)
    assert positions(copies) == [(r.partition, r.offset, "evt-x") for i, r in enumerate(results) if i != 1]
    assert [c["terms"]["items"][0]["unit_amount"] for c in copies] == [10000, 10000, 20000]

    human = run(tmp_path, "get", "evt-x", **env)
    assert human.exit_code == 0, human.output + human.stderr
    first = results[0]
    assert f"event evt-x  partition {first.partition}  offset {first.offset}  recorded_at 2024-06-01 12:00:00Z" in human.stdout
    assert "[copy 2 of 3: duplicate (same body)]" in human.stdout
    assert "[copy 3 of 3: conflict, differs in terms]" in human.stdout
    assert '"unit_amount": 20000' in human.stdout


def test_get_of_a_missing_id_exits_1(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = asyncio.run(new_topic(kafka_bootstrap, partitions=2))
    asyncio.run(append_one_by_one(kafka_bootstrap, topic, [subscription("evt-1", "cus-1")]))
    result = run(tmp_path, "get", "evt-404", "--json", MRR_KAFKA_BOOTSTRAP=kafka_bootstrap,
                 MRR_LEDGER_TOPIC=topic)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"event 'evt-404' not found in the Kafka topic '{topic}'" in result.stderr


def test_a_missing_topic_exits_2(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run(tmp_path, "tail", "--topic", f"absent-{uuid.uuid4().hex[:8]}",
                 MRR_KAFKA_BOOTSTRAP=kafka_bootstrap)
    assert result.exit_code == 2
    assert "does not exist (run `mrr topics create`)" in result.stderr


async def project_topic(bootstrap: str, topic: str, url: str) -> None:
    """What `mrr worker` does to the event index, done in-process by the real Projector."""
    store = ProjectionStore.from_url(url)
    projector = Projector(store, MrrSettings())
    try:
        async with KafkaLedgerReader(bootstrap, topic) as reader:
            for partition, end in (await reader.end_offsets()).items():
                raws = await reader.read_raw(partition, 0, end) if end else []
                records, _ = decode_batch(raws, horizon=dt.timedelta(days=366))
                await projector.apply_batch(records, {partition: end}, starts={partition: 0})
    finally:
        await store.close()


def test_get_reads_only_the_positions_in_the_event_index(
    tmp_path: Path, kafka_bootstrap: str, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = asyncio.run(new_topic(kafka_bootstrap, partitions=3))
    unmigrated = run(tmp_path, "get", "evt-3", MRR_KAFKA_BOOTSTRAP=kafka_bootstrap,
                     MRR_LEDGER_TOPIC=topic, MRR_DATABASE_URL=fresh_database)
    assert unmigrated.exit_code == 2 and "event index" in unmigrated.stderr, unmigrated.stderr
    url = asyncio.run(migrated(fresh_database))
    events = [subscription(f"evt-{i}", f"cus-{i % 4}") for i in range(8)]
    events.append(subscription("evt-3", "cus-3", amount=30000))  # a conflict: in event_conflicts
    results = asyncio.run(append_one_by_one(kafka_bootstrap, topic, events))
    asyncio.run(project_topic(kafka_bootstrap, topic, url))
    late = asyncio.run(append_one_by_one(kafka_bootstrap, topic, [subscription("late", "cus-9")]))[0]
    env = {"MRR_KAFKA_BOOTSTRAP": kafka_bootstrap, "MRR_LEDGER_TOPIC": topic, "MRR_DATABASE_URL": url}

    reads = record_reads(monkeypatch)
    result = run(tmp_path, "get", "evt-3", "--json", **env)
    assert result.exit_code == 0, result.output + result.stderr
    assert "event index" in result.stderr and "scanning" not in result.stderr
    want = [(results[3].partition, results[3].offset), (results[8].partition, results[8].offset)]
    assert [(p, o) for p, o, _ in positions(lines(result.stdout))] == want
    assert reads == [(p, o, 1) for p, o in want]  # those two records, nothing else

    # Not applied yet, so not in the index: not found there, found by --scan.
    missing = run(tmp_path, "get", "late", **env)
    assert missing.exit_code == 1 and "not found" in missing.stderr
    scanned = run(tmp_path, "get", "late", "--scan", "--json", **env)
    assert scanned.exit_code == 0, scanned.output + scanned.stderr
    assert positions(lines(scanned.stdout)) == [(late.partition, late.offset, "late")]


def test_customer_reads_only_its_partition_in_ledger_order(
    tmp_path: Path, kafka_bootstrap: str, busy_topic: tuple[str, list[AppendResult], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, results, _ = busy_topic
    mine = [r for r in results if r.event_id in {"evt-01", "evt-06", "evt-11"}]  # cus-1
    partition = mine[0].partition
    assert {r.partition for r in mine} == {partition}
    assert any(r.partition == partition and r not in mine for r in results), \
        "another customer should share the partition, so the key filter matters"

    reads = record_reads(monkeypatch)
    result = run(tmp_path, "customer", "cus-1", "--json", MRR_KAFKA_BOOTSTRAP=kafka_bootstrap,
                 MRR_LEDGER_TOPIC=topic)
    assert result.exit_code == 0, result.output + result.stderr
    rows = lines(result.stdout)
    assert positions(rows)[:3] == [(r.partition, r.offset, r.event_id) for r in mine]
    assert len(rows) == 4 and rows[3]["key"] == "cus-1" and rows[3]["undecodable"]
    assert rows[3]["offset"] > rows[2]["offset"]
    assert {p for p, _, _ in reads} == {partition}
    assert f"reading partition {partition} of 3" in result.stderr

    none = run(tmp_path, "customer", "cus-nobody", MRR_KAFKA_BOOTSTRAP=kafka_bootstrap,
               MRR_LEDGER_TOPIC=topic)
    assert none.exit_code == 1 and "no record keyed 'cus-nobody'" in none.stderr


def test_partition_for_key_is_where_the_writer_puts_each_customer(kafka_bootstrap: str) -> None:
    topic = asyncio.run(new_topic(kafka_bootstrap, partitions=7))

    async def append() -> list[AppendResult]:
        async with KafkaLedgerWriter(kafka_bootstrap, topic) as writer:
            return await writer.append_many(
                [subscription(f"e-{i}", f"customer-{i}") for i in range(60)], now=T0)

    results = asyncio.run(append())
    assert len({r.partition for r in results}) == 7
    for i, r in enumerate(results):
        assert partition_for_key(f"customer-{i}".encode(), range(7)) == r.partition


def test_embedded_ledger(tmp_path: Path) -> None:
    assert run(tmp_path, "tail").exit_code == 2  # no ledger yet: not created by looking

    async def fill() -> list[AppendResult]:
        async with EmbeddedLedger(tmp_path / "data" / "ledger.sqlite") as ledger:
            events = [subscription(f"evt-{i}", f"cus-{i % 2}") for i in range(5)]
            return await ledger.append_many([*events, event(fx())], now=T0)

    results = asyncio.run(fill())
    tail = run(tmp_path, "tail", "-n", "2", "--json")
    assert tail.exit_code == 0, tail.output + tail.stderr
    assert positions(lines(tail.stdout)) == [(0, 4, "evt-4"), (0, 5, "fx-1")]

    got = run(tmp_path, "get", "evt-3", "--json")
    assert got.exit_code == 0, got.output + got.stderr
    (row,) = lines(got.stdout)
    assert (row["partition"], row["offset"], row["customer_id"]) == (0, results[3].offset, "cus-1")
    assert row["recorded_at"] == "2024-06-01T12:00:00Z"

    customer = run(tmp_path, "customer", "cus-1", "--json")
    assert positions(lines(customer.stdout)) == [(0, 1, "evt-1"), (0, 3, "evt-3")]
    reference = run(tmp_path, "customer", "fx.rate_published", "--json")
    assert positions(lines(reference.stdout)) == [(0, 5, "fx-1")]
    assert run(tmp_path, "get", "evt-404").exit_code == 1
