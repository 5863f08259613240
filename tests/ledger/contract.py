"""The ledger contract, written once and run against every backend (embedded now, Kafka later).

A backend's test module subclasses `LedgerContract` and provides an async `ledger` fixture that
yields an empty ledger implementing both LedgerWriter and LedgerReader.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from ledger.events import EventBase
from ledger.ports import LedgerRecord
from ledger.validation import decode_event
from tests.ledger.factory import NOW, fx, invoice_paid, started, with_

T0 = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


def event(raw: dict[str, Any]) -> EventBase:
    return decode_event(raw, now=NOW)


async def read_all(ledger: Any) -> list[LedgerRecord]:
    records: list[LedgerRecord] = []
    for partition, end in (await ledger.end_offsets()).items():
        offset = 0
        while offset < end:
            batch = await ledger.read(partition, offset, 1000)
            records += batch
            offset = batch[-1].offset + 1
    return records


def unstamped(e: EventBase) -> EventBase:
    return msgspec.structs.replace(e, recorded_at=None)


class LedgerContract:
    async def test_append_then_read_back_in_order(self, ledger: Any) -> None:
        events = [event(started(f"e{i}", customer_id="cus-1")) for i in range(5)]
        results = await ledger.append_many(events, now=T0)
        assert [r.status for r in results] == ["accepted"] * 5
        assert all(r.partition is not None and r.offset is not None for r in results)
        records = await read_all(ledger)
        assert [unstamped(r.event) for r in records] == events
        assert [(r.partition, r.offset) for r in records] == [
            (r.partition, r.offset) for r in results
        ]

    async def test_recorded_at_is_stamped_by_the_ledger(self, ledger: Any) -> None:
        await ledger.append_many([event(started("a", recorded_at="2001-01-01T00:00:00Z"))], now=T0)
        before = dt.datetime.now(dt.UTC)
        await ledger.append_many([event(started("b"))])
        after = dt.datetime.now(dt.UTC)
        a, b = await read_all(ledger)
        assert a.event.recorded_at == T0
        assert b.event.recorded_at is not None and before <= b.event.recorded_at <= after

    async def test_recorded_at_never_decreases_with_offset(self, ledger: Any) -> None:
        await ledger.append_many([event(started("a"))], now=T0)
        await ledger.append_many([event(started("b"))], now=T0 - dt.timedelta(hours=1))
        a, b = await read_all(ledger)
        assert a.event.recorded_at == T0 and b.event.recorded_at == T0

    async def test_now_in_another_offset_is_stored_in_utc(self, ledger: Any) -> None:
        tokyo = dt.timezone(dt.timedelta(hours=9))
        await ledger.append_many([event(started("a"))], now=T0.astimezone(tokyo))
        [a] = await read_all(ledger)
        assert a.event.recorded_at == T0 and a.event.recorded_at.utcoffset() == dt.timedelta(0)

    async def test_same_event_again_is_a_duplicate_no_op(self, ledger: Any) -> None:
        [first] = await ledger.append_many([event(started("a"))], now=T0)
        ends = await ledger.end_offsets()
        again = event(started("a", recorded_at="2030-01-01T00:00:00Z"))
        [dup] = await ledger.append_many([again], now=T0 + dt.timedelta(days=1))
        assert (dup.status, dup.partition, dup.offset) == (
            "duplicate",
            first.partition,
            first.offset,
        )
        assert await ledger.end_offsets() == ends
        [record] = await read_all(ledger)
        assert record.event.recorded_at == T0  # the original, untouched

    async def test_equal_values_written_differently_are_duplicates(self, ledger: Any) -> None:
        await ledger.append_many([event(fx("f", rate="1.085"))], now=T0)
        [dup] = await ledger.append_many(
            [event(fx("f", rate=1.0850, occurred_at="2024-03-01T01:00:00+01:00"))], now=T0
        )
        assert dup.status == "duplicate"

    async def test_duplicates_inside_one_batch(self, ledger: Any) -> None:
        results = await ledger.append_many([event(started("a")), event(started("a"))], now=T0)
        assert [r.status for r in results] == ["accepted", "duplicate"]
        assert results[1].offset == results[0].offset
        assert len(await read_all(ledger)) == 1

    async def test_same_id_other_body_is_a_conflict_and_not_written(self, ledger: Any) -> None:
        await ledger.append_many([event(started("a"))], now=T0)
        changed = event(with_(started("a"), "terms.items.0.quantity", 2))
        results = await ledger.append_many(
            [event(started("b")), changed, event(started("c"))], now=T0
        )
        assert [r.status for r in results] == ["accepted", "conflict", "accepted"]
        conflict = results[1]
        assert (conflict.partition, conflict.offset) == (None, None)
        assert (
            conflict.reason is not None
            and "different body" in conflict.reason
            and "terms" in conflict.reason
        )
        records = await read_all(ledger)
        assert [r.event.event_id for r in records] == ["a", "b", "c"]
        assert records[0].event.terms.items[0].quantity == 1

    async def test_other_type_same_id_is_a_conflict(self, ledger: Any) -> None:
        await ledger.append_many([event(started("a"))], now=T0)
        [result] = await ledger.append_many([event(invoice_paid("a"))], now=T0)
        assert result.status == "conflict" and "type" in (result.reason or "")

    async def test_read_from_offset_with_limit(self, ledger: Any) -> None:
        await ledger.append_many([event(started(f"e{i}")) for i in range(10)], now=T0)
        [partition] = [p for p, end in (await ledger.end_offsets()).items() if end]
        page = await ledger.read(partition, 3, 4)
        assert [r.offset for r in page] == [3, 4, 5, 6]
        assert [r.event.event_id for r in page] == ["e3", "e4", "e5", "e6"]
        assert await ledger.read(partition, 10, 5) == []

    async def test_reference_events_have_no_customer(self, ledger: Any) -> None:
        results = await ledger.append_many([event(fx("f"))], now=T0)
        assert results[0].status == "accepted"
        [record] = await read_all(ledger)
        assert record.event == msgspec.structs.replace(event(fx("f")), recorded_at=T0)

    async def test_partitions_cover_end_offsets(self, ledger: Any) -> None:
        assert set(await ledger.partitions()) == set(await ledger.end_offsets())
