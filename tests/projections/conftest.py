"""Fixtures for projection tests: a fresh SQLite projection store per test, row and record builders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from sqlalchemy import delete, insert

from ledger.events import EventBase
from ledger.ports import LedgerRecord
from projections import schema, totals
from projections.store import ProjectionStore, sqlite_url

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    """`2024-03-01` or `2024-03-01T10:00` as a UTC instant."""
    if "T" not in text:
        text += "T00:00"
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
async def store(tmp_path):
    store = ProjectionStore.from_url(sqlite_url(tmp_path / "projections.sqlite"))
    await store.create_all()
    yield store
    await store.close()


async def put(store: ProjectionStore, table: str, *rows: dict[str, Any]) -> None:
    """Insert hand-built rows; bitemporal ones default to recorded 2000-01-01, never superseded.
    The bridge totals are filled again from all rows."""
    t = schema.metadata.tables[table]
    full = []
    for row in rows:
        row = dict(row)
        if "superseded_at" in t.c:
            row.setdefault("recorded_at", at("2000-01-01"))
            row.setdefault("superseded_at", None)
        if "valid_to" in t.c:
            row.setdefault("valid_to", None)
        if "event_ids" in t.c:
            row.setdefault("event_ids", [])
        full.append(row)

    def go(conn):
        conn.execute(insert(t), full)
        conn.execute(delete(schema.bridge_totals))  # the totals a replay's load would fill
        conn.execute(totals.fill(schema.metadata.tables, "sqlite"))

    await store.transaction(go)


def interval(customer: str, start: str, end: str | None, mrr: int, **kw: Any) -> dict[str, Any]:
    return {"customer_id": customer, "valid_from": at(start), "valid_to": at(end) if end else None,
            "mrr": mrr, **kw}


def movement(customer: str, when: str, kind: str, before: int, after: int, **kw: Any) -> dict[str, Any]:
    return {"customer_id": customer, "effective_at": at(when), "type": kind, "amount": after - before,
            "mrr_before": before, "mrr_after": after, **kw}


def record(offset: int, event: EventBase, recorded: str, partition: int = 0) -> LedgerRecord:
    """A ledger record of `event` recorded at `recorded`."""
    return LedgerRecord(partition, offset, msgspec.structs.replace(event, recorded_at=at(recorded)))
