"""The embedded SQLite ledger: the shared contract plus what only SQLite can show."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import ledger.embedded as embedded
from ledger.embedded import EmbeddedLedger
from tests.ledger.contract import T0, LedgerContract, event, read_all
from tests.ledger.factory import started


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    async with EmbeddedLedger(tmp_path / "data" / "ledger.sqlite") as store:
        yield store


class TestEmbeddedLedgerContract(LedgerContract):
    pass


async def test_single_partition_zero_with_offsets_from_zero(ledger: EmbeddedLedger) -> None:
    assert await ledger.partitions() == [0]
    assert await ledger.end_offsets() == {0: 0}
    results = await ledger.append_many([event(started(f"e{i}")) for i in range(3)], now=T0)
    assert [(r.partition, r.offset) for r in results] == [(0, 0), (0, 1), (0, 2)]
    assert await ledger.end_offsets() == {0: 3}


async def test_other_partitions_do_not_exist(ledger: EmbeddedLedger) -> None:
    with pytest.raises(ValueError, match="only partition 0"):
        await ledger.read(1, 0, 10)


async def test_naive_now_is_refused(ledger: EmbeddedLedger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.append_many([event(started())], now=T0.replace(tzinfo=None))


async def test_rows_cannot_be_updated_or_deleted(ledger: EmbeddedLedger) -> None:
    await ledger.append_many([event(started("a"))], now=T0)
    with sqlite3.connect(ledger.path) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
            db.execute("UPDATE ledger SET customer_id = 'someone-else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
            db.execute("DELETE FROM ledger")
        with pytest.raises(sqlite3.IntegrityError, match="contiguous"):
            db.execute("INSERT INTO ledger VALUES (5, 'x', NULL, 't', '', '9', x'00')")
        with pytest.raises(sqlite3.IntegrityError, match="must not decrease"):
            db.execute("INSERT INTO ledger VALUES (1, 'x', NULL, 't', '', '2000', x'00')")
    assert [r.event.event_id for r in await read_all(ledger)] == ["a"]


async def test_columns_mirror_the_event(ledger: EmbeddedLedger) -> None:
    await ledger.append_many([event(started("a", occurred_at="2024-03-01T09:00:00+09:00"))], now=T0)
    with sqlite3.connect(ledger.path) as db:
        row = db.execute(
            'SELECT "offset", event_id, customer_id, type, occurred_at, recorded_at FROM ledger'
        ).fetchone()
    assert row == (
        0,
        "a",
        "cus-1",
        "subscription.started",
        "2024-03-01T00:00:00.000000Z",
        "2024-06-01T12:00:00.000000Z",
    )


async def test_a_batch_is_one_transaction(
    ledger: EmbeddedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = embedded.encode_event

    def failing(e):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk on fire")
        return real(e)

    monkeypatch.setattr(embedded, "encode_event", failing)
    with pytest.raises(OSError):
        await ledger.append_many([event(started("a")), event(started("b"))], now=T0)
    assert await ledger.end_offsets() == {0: 0}
    monkeypatch.undo()
    assert [r.status for r in await ledger.append_many([event(started("a"))], now=T0)] == [
        "accepted"
    ]


async def test_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    async with EmbeddedLedger(path) as first:
        await first.append_many([event(started("a"))], now=T0)
    async with EmbeddedLedger(path) as second:
        [dup] = await second.append_many([event(started("a"))], now=T0)
        assert (dup.status, dup.offset) == ("duplicate", 0)
        [record] = await second.read(0, 0, 10)
        assert record.event.recorded_at == T0


async def test_two_writers_on_one_file_keep_offsets_contiguous(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    async with EmbeddedLedger(path) as one, EmbeddedLedger(path) as two:
        await asyncio.gather(
            *(
                w.append_many([event(started(f"{name}{i}")) for i in range(20)])
                for name, w in (("one", one), ("two", two))
                for _ in range(5)
            )
        )
        records = await one.read(0, 0, 1000)
    assert [r.offset for r in records] == list(range(40))
    stamps = [r.event.recorded_at for r in records]
    assert stamps == sorted(stamps)
