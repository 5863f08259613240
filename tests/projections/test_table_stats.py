"""The projector analyzes tables it doubled (`projections.table_stats`), on the real server.

Without it, statements planned while the projection was empty keep their plans while the tables
grow by thousands of rows a second (autovacuum analyzes at most once a minute)."""

from __future__ import annotations

from sqlalchemy import text

from projections.engine import MrrSettings
from projections.projector import Projector
from projections.table_stats import TableStats
from tests.projections.test_bulk_postgres import demo_records, schema_store


async def reltuples(store, table: str) -> float:
    return await store.read(lambda c: c.execute(text(
        "SELECT c.reltuples FROM pg_class c WHERE c.relname = :t "
        "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"),
        {"t": table}).scalar_one())


async def apply(projector: Projector, records) -> None:
    await projector.apply_batch(records, {})
    await projector.table_stats.settled()  # the analysis runs in the background


async def test_tables_are_analyzed_when_they_doubled(postgres_url):
    store = await schema_store(postgres_url, "table_stats_test", portable=False)
    try:
        projector = Projector(store, MrrSettings())
        projector.table_stats = TableStats(min_rows=50)
        records = demo_records(customers=40, months=6)
        assert await reltuples(store, "events") < 0  # never analyzed
        await apply(projector, records[:30])
        assert await reltuples(store, "events") < 0 and projector.table_stats.analyzed == 0
        await apply(projector, records[30:60])  # 60 events: due
        assert await reltuples(store, "events") == 60
        assert projector.table_stats.due() == []
        await apply(projector, records[60:100])  # 40 more: not doubled yet
        assert await reltuples(store, "events") == 60
        await apply(projector, records[100:130])  # 70 since: doubled
        assert await reltuples(store, "events") == 130
    finally:
        await store.close()


async def test_sqlite_is_left_alone(store):
    projector = Projector(store, MrrSettings())
    projector.table_stats = TableStats(min_rows=1)
    await projector.apply_batch(demo_records(customers=5, months=2)[:20], {})
    assert projector.table_stats.analyzed == 0
