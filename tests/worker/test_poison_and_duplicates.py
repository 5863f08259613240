"""Poison messages go to the dead-letter topic with reasons; duplicates apply once; conflicts are
recorded, never overwrite (real broker, real PostgreSQL, `mrr worker` subprocess)."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from sqlalchemy import func, select

from ledger.events import encode_event
from ledger.validation import MAX_BODY_BYTES
from projections import schema
from projections.store import ProjectionStore
from tests.engine.builders import canceled, item, started, updated
from tests.worker.support import (
    expected_store,
    migrated,
    new_topic,
    publish,
    publish_raw,
    read_dead_letters,
    snapshot,
    start_worker,
    wait_caught_up,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


async def run_worker_until_caught_up(kafka_bootstrap, url, topic, tmp_path) -> None:
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic)
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])
    finally:
        assert worker.terminate() == 0, worker.tail()


async def test_poison_messages_go_to_the_dead_letter_topic_and_good_ones_are_projected(
    kafka_bootstrap, fresh_database, tmp_path
):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    good = [started("2024-01-01", customer="cp", items=[item(1000)]),
            updated("2024-02-01", customer="cp", items=[item(3000)]),
            canceled("2024-04-01", customer="cp")]
    stamped = [encode_event(msgspec.structs.replace(e, recorded_at=NOW)) for e in good]
    wrong_schema = msgspec.json.encode({"type": "subscription.started", "event_id": "bad-1",
                                        "occurred_at": "2024-01-05T00:00:00Z", "customer_id": "cp"})
    oversized = b'{"type":"subscription.started","pad":"' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    await publish_raw(kafka_bootstrap, topic, [
        (b"cp", stamped[0]), (b"cp", b"{not json"), (b"cp", stamped[1]), (b"cp", wrong_schema),
        (b"cp", oversized), (b"cp", None), (b"cp", stamped[2]),
    ])
    await run_worker_until_caught_up(kafka_bootstrap, url, topic, tmp_path)

    letters = await read_dead_letters(kafka_bootstrap, topic)
    reasons = sorted(h["mrr.reason"].decode() for _, h in letters)
    assert len(letters) == 4, reasons
    assert any(r.startswith("body: ") and "JSON" in r for r in reasons), reasons
    assert any("subscription_id" in r or "terms" in r for r in reasons), reasons
    assert any(f"larger than the {MAX_BODY_BYTES}-byte limit" in r for r in reasons), reasons
    assert any("empty message" in r for r in reasons), reasons
    for value, headers in letters:  # the original bytes and where they came from
        assert headers["mrr.source.topic"].decode() == topic
        assert int(headers["mrr.source.offset"]) in {1, 3, 4, 5}
    assert {v for v, _ in letters} == {b"{not json", wrong_schema, oversized, None}

    expected = await expected_store(kafka_bootstrap, topic, tmp_path / "expected.sqlite")
    got = await snapshot(url)
    assert got == await snapshot(expected)
    await expected.close()
    assert [e[0] for e in got["events"]] == sorted(e.event_id for e in good)
    assert got["offsets"] == {0: 7} or sum(got["offsets"].values()) == 7


async def test_duplicates_apply_once_and_conflicts_are_recorded(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    first = started("2024-01-01", customer="cd", items=[item(1000)])
    other_body = msgspec.structs.replace(updated("2024-01-01", customer="cd", items=[item(9000)]),
                                         event_id=first.event_id)
    await publish(kafka_bootstrap, topic, [first], now=NOW)
    await publish(kafka_bootstrap, topic, [first], now=NOW + dt.timedelta(hours=1))  # a re-send
    await publish(kafka_bootstrap, topic, [other_body], now=NOW + dt.timedelta(hours=2))
    await run_worker_until_caught_up(kafka_bootstrap, url, topic, tmp_path)

    store = ProjectionStore.from_url(url)

    def read(conn):
        mrr = conn.execute(select(schema.customer_mrr.c.mrr)
                           .where(schema.customer_mrr.c.superseded_at.is_(None))).scalars().all()
        n_events = conn.execute(select(func.count()).select_from(schema.events)).scalar_one()
        conflicts = conn.execute(select(schema.event_conflicts.c.event_id,
                                        schema.event_conflicts.c["offset"])).all()
        return mrr, n_events, conflicts

    mrr, n_events, conflicts = await store.read(read)
    await store.close()
    assert mrr == [1000]  # the first copy wins
    assert n_events == 1
    assert conflicts == [(first.event_id, 2)]
