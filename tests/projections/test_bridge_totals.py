"""The bridge totals (`projections.totals`) stay equal to the rows they sum, and a bridge read from
them equals one added up from the rows, on SQLite and on the real PostgreSQL (set-based writes)."""

from __future__ import annotations

import datetime as dt
from typing import AsyncIterator

import pytest
from sqlalchemy import Connection, delete, select

from projections import schema, totals
from projections.engine import MrrSettings
from projections.periods import iter_periods, period_of
from projections.projector import Projector
from projections.queries import Scope, bridge
from projections.queries.bridge_sums import from_totals
from projections.store import ProjectionStore, sqlite_url
from tests.projections.test_bulk_postgres import demo_records, schema_store

UTC = dt.timezone.utc


def _same_bridges(conn: Connection, instants: list[dt.datetime], known_at: dt.datetime) -> int:
    """Compare bridges from totals and from rows for several period kinds and `as_of` instants;
    returns how many were answered from the totals."""
    answered = 0
    first = conn.execute(select(schema.customer_mrr.c.valid_from).order_by("valid_from").limit(1)).scalar_one()
    for as_of in instants:
        scope = Scope(as_of=as_of, known_at=known_at)
        for kind in ("month", "quarter", "week", "day"):
            start = max(first, as_of - dt.timedelta(days=60 if kind == "day" else 900))
            periods = list(iter_periods(period_of(kind, start), period_of(kind, as_of)))
            ends = [scope.end_of(p) for p in periods]
            answered += from_totals(conn, periods, ends, scope) is not None
            assert bridge(conn, periods, scope) == bridge(conn, periods, scope, totals=False), (kind, as_of)
    return answered


def _instants(conn: Connection) -> list[dt.datetime]:
    """Now, and past instants at and around midnights within the data."""
    last = conn.execute(select(schema.movements.c.effective_at).order_by(schema.movements.c.effective_at.desc())
                        .limit(1)).scalar_one()
    day = dt.datetime(last.year, last.month, 1, tzinfo=UTC) - dt.timedelta(days=40)
    return [dt.datetime.now(UTC), day, day + dt.timedelta(microseconds=1), day + dt.timedelta(hours=13, minutes=7),
            day - dt.timedelta(microseconds=1)]


async def _project_and_compare(store: ProjectionStore) -> None:
    records = demo_records(customers=60, months=14)
    projector = Projector(store, MrrSettings())
    for i in range(0, len(records), 150):
        await projector.apply_batch(records[i:i + 150], {})
        if i % 600 == 0:
            assert await store.read(totals.check) == []
    assert await store.read(totals.check) == []

    def compare(conn: Connection) -> None:
        changed = conn.execute(select(schema.bridge_totals.c.changed_at).order_by(
            schema.bridge_totals.c.changed_at.desc()).limit(1)).scalar_one()
        now = dt.datetime.now(UTC)
        assert _same_bridges(conn, _instants(conn), now) == 5 * 4  # every one answered from the totals
        # known earlier than the totals' last change: the rows answer, and they still agree
        assert _same_bridges(conn, _instants(conn)[1:3], changed - dt.timedelta(days=200)) == 0

    await store.read(compare)


async def test_sqlite_totals_follow_the_projector_and_answer_bridges(tmp_path):
    store = ProjectionStore.from_url(sqlite_url(tmp_path / "p.sqlite"))
    await store.create_all()
    try:
        await _project_and_compare(store)
    finally:
        await store.close()


@pytest.fixture
async def pg_store(postgres_url) -> AsyncIterator[ProjectionStore]:
    store = await schema_store(postgres_url, "totals_test", portable=False)
    yield store
    await store.close()
    admin = ProjectionStore.from_url(postgres_url)
    await admin.transaction(lambda c: c.exec_driver_sql('DROP SCHEMA "totals_test" CASCADE'))
    await admin.close()


async def test_postgres_totals_follow_the_projector_and_answer_bridges(pg_store):
    await _project_and_compare(pg_store)


async def test_an_older_sqlite_store_gets_its_totals_filled(tmp_path):
    store = ProjectionStore.from_url(sqlite_url(tmp_path / "p.sqlite"))
    await store.create_all()
    try:
        projector = Projector(store, MrrSettings())
        await projector.apply_batch(demo_records(customers=20, months=6), {})
        want = await store.read(lambda c: c.execute(select(schema.bridge_totals)).all())
        await store.transaction(lambda c: c.execute(delete(schema.bridge_totals)))  # as before the totals
        await store.create_all()
        assert await store.read(lambda c: c.execute(select(schema.bridge_totals)).all()) == want
        assert len(want) > 20
    finally:
        await store.close()


def test_differences_name_the_day_and_measure():
    at = dt.datetime(2024, 5, 1, tzinfo=UTC)
    lines = totals.differences([(dt.date(2024, 3, 1), "mrr", 100, 1, at)],
                               [(dt.date(2024, 3, 1), "mrr", 90, 1, at), ("2024-03-02", "churn", -5, 1, at)])
    assert lines == ["2024-03-01 mrr: stored 100 over 1 rows (changed 2024-05-01T00:00:00+00:00), the rows give "
                     "90 over 1 rows (changed 2024-05-01T00:00:00+00:00)",
                     "2024-03-02 churn: stored nothing, the rows give -5 over 1 rows (changed "
                     "2024-05-01T00:00:00+00:00)"]
