"""The projection store: an async SQLAlchemy engine over the projection schema.

Projector and queries are written as plain synchronous SQLAlchemy Core against a `Connection`
and run inside the async engine with `run_sync`, so the same code serves SQLite (aiosqlite) and
PostgreSQL (asyncpg) and stays easy to test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy import Connection, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from projections import schema, totals
from projections.engine.fx import FxTable

T = TypeVar("T")


def sqlite_url(path: str | Path) -> str:
    """The aiosqlite URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{Path(path)}"


_WRITE = "mrr_write"
"""Execution option marking a write transaction (SQLite: BEGIN IMMEDIATE)."""


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is deferred and skips DDL; take over transaction control.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (reports) never block the projector
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front, so two processes catching up at once queue behind
    # each other (the second then finds the records applied and skips them) instead of failing
    # on a stale snapshot. Readers begin deferred and never wait for a writer (WAL).
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


class ProjectionStore:
    """Owns the engine; `transaction` for the projector, `read` for queries."""

    def __init__(self, engine: AsyncEngine, engine_options: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.engine_options = dict(engine_options or {})
        """The options it was created with (`from_url`): another process can open the same."""

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> "ProjectionStore":
        """A store for a SQLAlchemy async URL (`sqlite+aiosqlite:///…`, `postgresql+asyncpg://…`)."""
        engine = create_async_engine(url, **engine_options)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return cls(engine, engine_options)

    @property
    def url(self) -> str:
        """The database URL, password included (to open the same store elsewhere)."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def create_all(self) -> None:
        """Create the tables that do not exist yet (Alembic takes over for Postgres), and fill
        the bridge totals of a store written before they existed."""

        def create(conn: Connection) -> None:
            schema.metadata.create_all(conn)
            totals.fill_if_missing(conn)

        await self.transaction(create)

    async def reset(self) -> None:
        """Drop and recreate every projection table (a full rebuild follows)."""

        def rebuild(conn: Connection) -> None:
            schema.metadata.drop_all(conn)
            schema.metadata.create_all(conn)

        await self.transaction(rebuild)

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` in one write transaction: committed if it returns, else
        rolled back."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                return await conn.run_sync(fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only `fn(connection, *args)` on one connection (one consistent snapshot)."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                return await conn.run_sync(fn, *args)

    async def offsets(self) -> dict[int, int]:
        """The stored next offset of every partition."""
        return await self.read(read_offsets)

    async def stored_settings(self) -> str | None:
        """The settings JSON the projections were built with, if any."""
        return await self.read(read_meta, "settings")

    async def close(self) -> None:
        await self.engine.dispose()


def asyncpg_dsn(url: str) -> str:
    """A libpq/asyncpg DSN for a SQLAlchemy PostgreSQL URL (`postgresql+asyncpg://…`)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def schema_options(schema_name: str | None) -> dict[str, Any]:
    """`create_async_engine` options that put a PostgreSQL session on schema `schema_name`
    (its `search_path`); none when `schema_name` is None."""
    if not schema_name:
        return {}
    return {"connect_args": {"server_settings": {"search_path": schema_name}}}


def read_offsets(conn: Connection) -> dict[int, int]:
    rows = conn.execute(select(schema.projection_offsets.c.partition, schema.projection_offsets.c.next_offset))
    return {partition: offset for partition, offset in rows}


def read_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(
        select(schema.projection_meta.c.value).where(schema.projection_meta.c.key == key)
    ).scalar_one_or_none()


def load_fx_table(conn: Connection, known_at: dt.datetime | None = None) -> FxTable:
    """An FxTable of the stored rates (recorded up to `known_at`), applied in recorded order."""
    rates, events = schema.fx_rates, schema.events
    query = (
        select(rates.c.base, rates.c.quote, rates.c.effective_date, rates.c.rate)
        .join(events, events.c.event_id == rates.c.event_id)
        .order_by(events.c.recorded_at, events.c.partition, events.c.offset)
    )
    if known_at is not None:
        query = query.where(rates.c.recorded_at <= known_at)
    table = FxTable()
    for base, quote, day, rate in conn.execute(query):
        table.add(base, quote, day, rate)
    return table
