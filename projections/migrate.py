"""Alembic migrations of the projection schema, run programmatically on an async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from projections.schema import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at projections/migrations, bound to `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def _run(url: str, fn: Any, *args: Any, engine_options: dict[str, Any] | None = None) -> Any:
    engine = create_async_engine(url, **(engine_options or {}))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn, *args)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> str | None:
    """Upgrade the database at `url` to `revision` in one transaction; return the new revision."""
    await _run(url, _upgrade, revision)
    return await _run(url, _current)


async def current_revision(url: str, engine_options: dict[str, Any] | None = None) -> str | None:
    """The revision the database at `url` is at (None: never migrated)."""
    return await _run(url, _current, engine_options=engine_options)


async def schema_drift(url: str) -> list[Any]:
    """Differences between the migrated database and `projections.schema` (empty: in step)."""
    return await _run(url, _drift)


class SchemaRevisionError(RuntimeError):
    """The projection database is not at the revision this code was written for."""


def head_revision() -> str | None:
    """The newest revision of `projections/migrations` (what `mrr db upgrade` goes to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def require_head(url: str, engine_options: dict[str, Any] | None = None) -> str | None:
    """Return the head revision if the database at `url` is at it; else raise
    `SchemaRevisionError` naming both revisions and `mrr db upgrade`.

    The PostgreSQL schema belongs to Alembic: code that reads or writes projections calls this
    first instead of creating tables, so it never runs against an older (or newer) schema."""
    head = head_revision()
    current = await current_revision(url, engine_options)
    if current != head:
        raise SchemaRevisionError(
            f"projection schema at revision {current or 'none (never migrated)'}, code expects "
            f"{head}: run `mrr db upgrade`"
        )
    return head
