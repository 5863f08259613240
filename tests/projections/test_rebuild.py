"""`projections.rebuild` (the replay's in-memory projection) and `projections.verify` (the
independent from-scratch check), on SQLite: no server needed."""

from __future__ import annotations

import datetime as dt
import zlib

import msgspec
import pytest
from sqlalchemy import insert, select, text

from ledger.demo import generate_business
from ledger.ports import LedgerRecord
from projections import schema, totals
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.rebuild import BITEMPORAL, deduplicate, rebuild, rebuild_shard, shard
from projections.store import ProjectionStore, sqlite_url
from projections.verify import compare, expected_state, read_state
from projections.verify.rebuilt import check_rebuilt

PARTITIONS = 3


def demo_records(customers: int = 80, months: int = 14, seed: int = 9) -> tuple[list[LedgerRecord], dict[int, int]]:
    """A demo business as ledger records in arrival order, spread over partitions by customer."""
    ends: dict[int, int] = {}
    records = []
    for arrival, event in generate_business(seed=seed, customers=customers, months=months):
        event = msgspec.structs.replace(event, recorded_at=arrival)
        key = getattr(event, "customer_id", None) or "reference"
        partition = zlib.crc32(key.encode()) % PARTITIONS
        offset = ends.get(partition, 0)
        ends[partition] = offset + 1
        records.append(LedgerRecord(partition, offset, event))
    return records, ends


def every_row(conn) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, history included, without surrogate ids."""
    out = {}
    for table in schema.metadata.sorted_tables:
        cols = [c for c in table.c if c.name != "id"]
        out[table.name] = sorted(tuple(str(v) for v in row) for row in conn.execute(select(*cols)))
    return out


async def new_store(path) -> ProjectionStore:
    store = ProjectionStore.from_url(sqlite_url(path))
    await store.create_all()
    return store


async def load(store: ProjectionStore, rebuilt) -> None:
    def go(conn):
        for name, rows in rebuilt.tables.items():
            if rows:
                conn.execute(insert(schema.metadata.tables[name]), rows)
        conn.execute(totals.fill(schema.metadata.tables, "sqlite"))  # as the replay's load does

    await store.transaction(go)


@pytest.mark.parametrize("shards", [1, 2, 5])
async def test_rebuild_equals_the_projector_applying_the_ledger_in_recorded_order(tmp_path, shards):
    records, ends = demo_records()
    live = await new_store(tmp_path / "live.sqlite")
    replayed = await new_store(tmp_path / "replayed.sqlite")
    try:
        projector = Projector(live, MrrSettings())
        for i in range(0, len(records), 400):
            await projector.apply_batch(records[i:i + 400], {})
        rebuilt = rebuild(records, ends, MrrSettings(), shards=shards)
        assert rebuilt.applied == len(records) and rebuilt.duplicates == 0
        for name in ("customer_mrr", "subscription_mrr", "movements", "fx_impacts"):
            ids = [row["id"] for row in rebuilt.tables[name]]
            assert len(ids) == len(set(ids)), name  # shards never collide
        await load(replayed, rebuilt)
        want, got = await live.read(every_row), await replayed.read(every_row)
        assert sum(len(rows) for rows in want.values()) > 2 * len(records)
        for name in want:  # history included: recorded_at and superseded_at of every row
            assert got[name] == want[name], name
    finally:
        await live.close()
        await replayed.close()


def test_rebuild_applies_the_first_copy_and_records_a_conflicting_one():
    records, ends = demo_records(customers=5, months=3)
    first = records[1]
    same = LedgerRecord(first.partition, ends[first.partition], first.event)
    other = LedgerRecord(first.partition, ends[first.partition] + 1,
                         msgspec.structs.replace(first.event, occurred_at=first.event.occurred_at + dt.timedelta(seconds=1)))
    ends[first.partition] += 2
    rebuilt = rebuild([*records, same, other], ends, MrrSettings())
    assert (rebuilt.applied, rebuilt.duplicates, rebuilt.conflicts) == (len(records), 1, 1)
    assert [(c["partition"], c["offset"]) for c in rebuilt.tables["event_conflicts"]] == [(other.partition, other.offset)]
    assert {r["partition"]: r["next_offset"] for r in rebuilt.tables["projection_offsets"]} == ends


@pytest.fixture
async def projected(tmp_path):
    records, ends = demo_records(customers=40, months=10)
    store = await new_store(tmp_path / "p.sqlite")
    await Projector(store, MrrSettings()).apply_batch(records, {})
    yield store, records, ends
    await store.close()


async def check(store, records, ends):
    actual = await store.read(read_state)
    return compare(expected_state(records, ends, MrrSettings()), actual,
                   checked_at=dt.datetime.now(dt.UTC), customers=0)


async def test_verify_passes_on_a_healthy_projection(projected):
    result = await check(*projected)
    assert result.ok and result.difference_count == 0
    assert result.events == len(projected[1])


async def test_verify_names_the_customer_of_a_corrupted_interval(projected):
    store, records, ends = projected
    customer = await store.transaction(lambda c: c.execute(text(
        "UPDATE customer_mrr SET mrr = mrr + 7 WHERE id = (SELECT min(id) FROM customer_mrr "
        "WHERE superseded_at IS NULL) RETURNING customer_id")).scalar_one())
    result = await check(store, records, ends)
    assert [(d.table, d.kind, d.customer_id) for d in result.differences] == [
        ("customer_mrr", "missing", customer), ("customer_mrr", "unexpected", customer)]
    assert result.bridge == []  # intervals are not movements


async def test_verify_reports_the_month_of_a_corrupted_movement(projected):
    store, records, ends = projected
    month, kind = await store.transaction(lambda c: c.execute(text(
        "UPDATE movements SET amount = amount - 100 WHERE id = (SELECT min(id) FROM movements "
        "WHERE superseded_at IS NULL) RETURNING effective_at, type")).one())
    result = await check(store, records, ends)
    assert {d.table for d in result.differences} == {"movements"}
    [bridge] = result.bridge
    assert (bridge.month, bridge.type, bridge.actual - bridge.expected) == (str(month)[:7], kind, -100)


async def test_verify_reports_an_event_missing_from_the_index_and_a_wrong_offset(projected):
    store, records, ends = projected
    await store.transaction(lambda c: (
        c.execute(text("DELETE FROM events WHERE event_id = :id"), {"id": records[0].event.event_id}),
        c.execute(text("UPDATE projection_offsets SET next_offset = next_offset + 1 WHERE partition = 0"))))
    result = await check(store, records, ends)
    tables = {(d.table, d.kind) for d in result.differences}
    assert ("events", "missing") in tables and ("projection_offsets", "different") in tables


def test_customer_ranges_cover_every_id_once_in_byte_order():
    from projections.verify import customer_ranges, in_range

    customers = ["b", "a", "ä", "c10", "c9", "Z", "a"]
    for count in (1, 2, 3, 10):
        ranges = customer_ranges(customers, count)
        assert len(ranges) == min(count, 6) and ranges[0][0] is None and ranges[-1][1] is None
        for cid in [*customers, "", "zzz", "\uffff"]:
            assert sum(in_range(cid, low, high) for low, high in ranges) == 1, (cid, ranges)


def test_a_rebuilt_shard_is_checked_against_a_from_scratch_computation_before_loading():
    records, _ = demo_records(customers=40, months=10)
    parts = shard(deduplicate(records)[0], 2)
    for index, part in enumerate(parts):
        tables = rebuild_shard(part, MrrSettings(), index=index, count=len(parts))
        check = check_rebuilt(part, tables, MrrSettings())
        assert check.differences == [] and check.expected_totals == check.actual_totals
        current = {name: [row for row in tables[name] if row["superseded_at"] is None] for name in BITEMPORAL}
        assert check.current_rows == {name: len(rows) for name, rows in current.items()}
        assert check.mrr_now == {row["customer_id"]: row["mrr"] for row in current["customer_mrr"]
                                 if row["valid_to"] is None}
        assert check.mrr_now  # every shard has customers

    tables = rebuild_shard(parts[0], MrrSettings(), index=0, count=len(parts))
    damaged = next(row for row in tables["movements"] if row["superseded_at"] is None)
    damaged["amount"] += 100
    check = check_rebuilt(parts[0], tables, MrrSettings())
    customer = damaged["customer_id"]
    assert [(d.table, d.kind, d.customer_id) for d in check.differences] == [
        ("movements", "missing", customer), ("movements", "unexpected", customer)]
    month = f"{damaged['effective_at'].astimezone(dt.UTC):%Y-%m}"
    key = (month, damaged["type"])
    assert check.actual_totals[key] - check.expected_totals[key] == 100
