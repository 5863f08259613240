"""The replay's verification of a load (`projections.verify.loaded`) on a real PostgreSQL: the
ledger spilled in four buckets, computed, checked and COPYed by the replay's own code (two
forked jobs), then the loaded schema checked in SQL: it passes, and each kind of damage to the
loaded rows is named."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from projections import side_schema
from projections.engine import MrrSettings
from projections.rebuild import ledger_rows
from projections.verify.loaded import check_loaded
from streams.ledger_spill import spill_ledger
from streams.replay_shards import load_buckets
from tests.projections.test_rebuild import demo_records
from tests.replay.test_spill import HORIZON, batches

pytestmark = pytest.mark.postgres

SCHEMA = "mrr_load_check"


async def test_the_load_check_passes_and_names_what_a_damaged_load_changed(fresh_database, tmp_path):
    records, ends = demo_records(customers=60, months=10)
    spilled = await spill_ledger(batches(records), tmp_path, ends, buckets=4, horizon=HORIZON)
    engine = create_async_engine(fresh_database)
    try:
        async with engine.begin() as conn:
            await side_schema.start_job(conn, SCHEMA, {"stage": "reading"})
            await side_schema.create_tables(conn, SCHEMA)
        loaded = await load_buckets(spilled, fresh_database, SCHEMA, MrrSettings(), jobs=2)
        copied, checks = loaded.copied, loaded.checks
        assert len(checks) == 4
        shared = ledger_rows(ends, MrrSettings(), [])
        async with engine.begin() as conn:
            await side_schema.complete_load(conn, SCHEMA, shared, None)
        copied.update({name: len(rows) for name, rows in shared.items()})

        async def check():
            async with engine.connect() as conn:
                return await check_loaded(conn, SCHEMA, loaded.figures, ends, checks, copied)

        healthy = await check()
        assert healthy.ok, healthy.differences[:3]
        assert healthy.events == len(records) and healthy.customers == 60

        async def damage(sql: str) -> tuple:
            async with engine.begin() as conn:
                return (await conn.execute(text(sql.replace("S.", f"{SCHEMA}.")))).one()

        month, kind = await damage(
            "UPDATE S.movements SET amount = amount + 100 WHERE id = (SELECT min(id) FROM S.movements "
            "WHERE superseded_at IS NULL) RETURNING to_char(effective_at AT TIME ZONE 'UTC', 'YYYY-MM'), type")
        result = await check()
        assert [(b.month, b.type, b.actual - b.expected) for b in result.bridge] == [(month, kind, 100)]
        await damage(f"UPDATE S.bridge_totals SET amount = amount + 7 WHERE day = (SELECT min(day) FROM "
                     f"S.bridge_totals WHERE measure = '{kind}') AND measure = '{kind}' RETURNING day")
        result = await check()
        assert {(b.month, b.type, b.actual - b.expected) for b in result.bridge} >= {(month, kind, 100)}
        assert [(b.type, b.actual - b.expected) for b in result.bridge if "totals" in b.type] == \
            [(f"{kind} (bridge_totals)", 7)]

        (customer,) = await damage(
            "DELETE FROM S.customer_mrr WHERE id = (SELECT min(id) FROM S.customer_mrr "
            "WHERE superseded_at IS NULL AND valid_to IS NULL) RETURNING customer_id")
        (partition,) = await damage(
            'UPDATE S.events SET "offset" = "offset" + 1000000 WHERE event_id = (SELECT min(event_id) '
            "FROM S.events) RETURNING partition")
        await damage(f"UPDATE S.projection_offsets SET next_offset = next_offset - 1 WHERE partition = {partition} "
                     "RETURNING partition")
        result = await check()
        found = {(d.table, d.customer_id, d.row.split(":")[0]) for d in result.differences}
        current = sum(check.current_rows["customer_mrr"] for check in checks)
        assert found == {
            ("customer_mrr", None, "loaded {} rows ({} current), copied {} ({} current expected)".format(
                copied["customer_mrr"] - 1, current - 1, copied["customer_mrr"], current)),
            ("customer_mrr", customer, "MRR now"),
            ("events", None, f"partition {partition}"),
            ("projection_offsets", None, f"partition {partition}"),
        }, result.differences
    finally:
        async with engine.begin() as conn:
            await side_schema.drop(conn, SCHEMA)
        await engine.dispose()
