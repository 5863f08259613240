"""Alembic migrations against a real PostgreSQL: `mrr db upgrade` builds exactly the code's schema."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from alembic.script import ScriptDirectory

from projections.migrate import alembic_config, current_revision, schema_drift, upgrade
from streams.cli.main import cli

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_upgrade_from_nothing_matches_the_code_schema(fresh_database: str) -> None:
    assert await current_revision(fresh_database) is None
    assert await upgrade(fresh_database) == HEAD
    assert await schema_drift(fresh_database) == []
    assert await upgrade(fresh_database) == HEAD  # idempotent


async def _drop_a_column(url: str) -> None:
    await upgrade(url)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE movements DROP COLUMN mrr_before"))
    await engine.dispose()


def test_check_reports_drift_and_exits_1(fresh_database: str) -> None:
    asyncio.run(_drop_a_column(fresh_database))
    result = CliRunner().invoke(cli, ["db", "check", "--database-url", fresh_database, "--json"])
    assert result.exit_code == 1
    assert "mrr_before" in " ".join(json.loads(result.output)["differences"])


def test_cli_upgrade(fresh_database: str) -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", fresh_database])
    assert result.exit_code == 0, result.output
    assert f"revision {HEAD}" in result.output
    ok = CliRunner().invoke(cli, ["db", "check", "--database-url", fresh_database])
    assert ok.exit_code == 0 and "schema matches the code" in ok.output


async def test_upgrade_from_the_first_revision_keeps_the_projections(fresh_database: str) -> None:
    assert await upgrade(fresh_database, "0001") == "0001"
    engine = create_async_engine(fresh_database)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO projection_offsets (partition, next_offset) VALUES (3, 42)"))
    assert await upgrade(fresh_database) == HEAD
    async with engine.connect() as conn:
        offsets = (await conn.execute(text("SELECT partition, next_offset FROM projection_offsets"))).all()
    await engine.dispose()
    assert offsets == [(3, 42)]
    assert await schema_drift(fresh_database) == []


GRAFANA_VIEWS = {"currency_minor_units", "grafana_reporting_currency", "grafana_cohort_retention",
                 "grafana_monthly_bridge"}
GRAFANA_FUNCTIONS = {"mrr_reporting_currency", "mrr_cohort_retention", "mrr_monthly_bridge"}


REVISION_0004 = {("add_table", "bridge_totals"), ("add_index", "ix_customer_mrr_valid_to"),
                 ("add_index", "ix_subscription_mrr_valid_to")}


def _names(drift: list) -> set[tuple[str, str]]:
    return {(kind, obj.name) for kind, obj, *_ in drift}


async def _grafana_objects(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            views = (await conn.execute(text(
                "SELECT viewname FROM pg_views WHERE schemaname = current_schema()"))).scalars().all()
            functions = (await conn.execute(text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema()"))).scalars().all()
    finally:
        await engine.dispose()
    return set(views) | set(functions)


async def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
    finally:
        await engine.dispose()


async def test_grafana_views_come_and_go_with_revision_0003(fresh_database: str) -> None:
    """0003 adds only views and functions (for Grafana): `mrr db check` compares tables, so at
    0002 the schema differs from the code only by what 0004 adds, and a downgrade removes them all."""
    grafana = GRAFANA_VIEWS | GRAFANA_FUNCTIONS
    assert await upgrade(fresh_database) == HEAD
    assert grafana <= await _grafana_objects(fresh_database)
    assert await schema_drift(fresh_database) == []
    await _downgrade(fresh_database, "0002")
    assert await current_revision(fresh_database) == "0002"
    assert not grafana & await _grafana_objects(fresh_database)
    assert _names(await schema_drift(fresh_database)) == REVISION_0004
    assert await upgrade(fresh_database) == HEAD
    assert grafana <= await _grafana_objects(fresh_database)


async def test_revision_0004_fills_the_bridge_totals_from_the_projected_rows(fresh_database: str) -> None:
    """Projections written before 0004 get the totals the projector would have kept."""
    from projections import totals
    from projections.engine import MrrSettings
    from projections.projector import Projector
    from projections.store import ProjectionStore
    from tests.projections.test_bulk_postgres import demo_records

    assert await upgrade(fresh_database) == HEAD
    store = ProjectionStore.from_url(fresh_database)
    read_totals = "SELECT t::text FROM bridge_totals t ORDER BY 1"
    try:
        projector = Projector(store, MrrSettings())
        records = demo_records(customers=40, months=10)
        for i in range(0, len(records), 300):
            await projector.apply_batch(records[i:i + 300], {})
        kept = await store.read(lambda c: c.exec_driver_sql(read_totals).scalars().all())
        await _downgrade(fresh_database, "0003")
        assert _names(await schema_drift(fresh_database)) == REVISION_0004
        assert await upgrade(fresh_database) == HEAD
        assert await store.read(lambda c: c.exec_driver_sql(read_totals).scalars().all()) == kept
        assert len(kept) > 50 and await store.read(totals.check) == []
        assert await store.read(lambda c: c.exec_driver_sql(
            "SELECT value FROM projection_meta WHERE key = 'schema_version'").scalar_one()) == "3"
    finally:
        await store.close()
