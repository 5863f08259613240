"""PostgreSQL schemas beside the live projections: bulk-load a rebuilt projection into one, and
swap it in atomically.

The live projections are the tables in the connection's current schema (the first existing one
on `search_path`, normally `public`). A replay loads into another schema (`REPLAY_SCHEMA`) with
binary `COPY`, builds the indexes after loading (cheaper than maintaining them row by row),
sets the id sequences past the loaded ids and analyzes the tables. `swap_in` then moves the live
tables out and the loaded ones in, in one transaction:

- it first takes the projector's advisory lock exclusively (`projections.projector.FX_LOCK_KEY`),
  which every projector transaction takes first, so the swap waits for an open batch to commit
  and holds the next one back, without a lock-order deadlock;
- `ALTER TABLE … SET SCHEMA` changes each table's namespace, which invalidates every cached plan
  that refers to it; PostgreSQL re-resolves names on the next execution, so the worker's and
  the exporter's prepared statements find the new tables by themselves.

A live worker then finds stored offsets it did not write (`FencingError`), forgets its positions
and carries on from the swapped-in offsets (skipping what the replay covered, reading from Kafka
what it did not), so nothing is lost or counted twice.

A schema's job table (`replay_job`: key, JSON value) records what is being built, so an
interrupted replay can be resumed or discarded; `alembic_version` is copied so that
`mrr report` can read a side schema (`MRR_DATABASE_SCHEMA`) at the head revision.
"""

from __future__ import annotations

import datetime as dt
import json
from operator import itemgetter
from typing import Any, Mapping

import msgspec
from sqlalchemy import JSON, Constraint, MetaData, Table, UniqueConstraint, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from projections import schema, totals
from projections.projector import FX_LOCK_KEY

REPLAY_SCHEMA = "mrr_replay"
"""Where `mrr replay` builds the projections it swaps in."""
JOB_TABLE = "replay_job"
MAINTENANCE_WORK_MEM = "256MB"
_PG = postgresql.dialect()


def _quote(name: str) -> str:
    return _PG.identifier_preparer.quote(name)


def tables_in(name: str) -> list[Table]:
    """The projection tables, placed in schema `name` (dependency order)."""
    copy = MetaData()
    return [table.to_metadata(copy, schema=name) for table in schema.metadata.sorted_tables]


async def current_schema(conn: AsyncConnection) -> str:
    """The schema the live projections are in (first existing schema on `search_path`)."""
    return (await conn.execute(text("SELECT current_schema()"))).scalar_one()


async def exists(conn: AsyncConnection, name: str) -> bool:
    query = text("SELECT 1 FROM pg_namespace WHERE nspname = :name")
    return (await conn.execute(query, {"name": name})).first() is not None


async def read_job(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    """The job record of schema `name` (key -> decoded JSON), None if there is no such schema."""
    if not await exists(conn, name):
        return None
    rows = await conn.execute(text(f"SELECT key, value FROM {_quote(name)}.{JOB_TABLE}"))
    return {key: json.loads(value) for key, value in rows}


async def start_job(conn: AsyncConnection, name: str, job: dict[str, Any]) -> None:
    """Create schema `name` with its job table holding `job` (the schema must not exist)."""
    await conn.execute(text(f"CREATE SCHEMA {_quote(name)}"))
    await conn.execute(text(f"CREATE TABLE {_quote(name)}.{JOB_TABLE} "
                            f"(key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"))
    await set_job(conn, name, job)


async def set_job(conn: AsyncConnection, name: str, values: dict[str, Any]) -> None:
    """Upsert job keys (e.g. `stage`)."""
    for key, value in values.items():
        await conn.execute(
            text(f"INSERT INTO {_quote(name)}.{JOB_TABLE} (key, value) VALUES (:key, :value) "
                 "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"),
            {"key": key, "value": json.dumps(value)})


async def drop(conn: AsyncConnection, name: str) -> None:
    """Drop schema `name` and everything in it (no-op when missing)."""
    await conn.execute(text(f"DROP SCHEMA IF EXISTS {_quote(name)} CASCADE"))


async def drop_tables(conn: AsyncConnection, name: str) -> None:
    """Drop the projection tables of schema `name`, keeping its job table."""
    for table in reversed(tables_in(name)):
        await conn.execute(text(f"DROP TABLE IF EXISTS {_quote(name)}.{_quote(table.name)}"))
    await conn.execute(text(f"DROP TABLE IF EXISTS {_quote(name)}.alembic_version"))


async def create_tables(conn: AsyncConnection, name: str) -> None:
    """Create the projection tables in schema `name`, without their secondary indexes and
    without their primary-key and unique constraints: a COPY into a table with a B-tree on a
    random key (event ids) costs about twice as much as the COPY plus building the index from
    sorted data afterwards (`finish_load` adds them back)."""
    tables = tables_in(name)
    for table in tables:
        await conn.execute(CreateTable(table))
    keys = await conn.execute(text(
        "SELECT c.relname, k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "WHERE k.connamespace = CAST(:schema AS regnamespace) AND k.contype IN ('p', 'u') "
        "AND c.relname = ANY(:tables)"), {"schema": name, "tables": [t.name for t in tables]})
    for table_name, constraint in keys.all():
        await conn.execute(text(f"ALTER TABLE {_quote(name)}.{_quote(table_name)} DROP CONSTRAINT {_quote(constraint)}"))


async def copy_rows(driver_connection: Any, name: str, rows: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Binary COPY of `rows` (table name -> row dicts) into schema `name`, on an asyncpg
    connection (in the caller's transaction, if any). Returns rows copied per table."""
    copied: dict[str, int] = {}
    for table in tables_in(name):
        batch = rows.get(table.name, [])
        if batch:
            await driver_connection.copy_records_to_table(
                table.name, schema_name=name, columns=[c.name for c in table.c], records=_records(table, batch))
        copied[table.name] = len(batch)
    return copied


async def complete_load(conn: AsyncConnection, name: str, rows: Mapping[str, list[dict[str, Any]]],
                        revision: str | None) -> None:
    """After the buckets' COPY: COPY `rows` (those of no bucket), fill the bridge totals from the
    loaded rows (`projections.totals`), then `finish_load`."""
    await copy_rows(await driver_connection(conn), name, rows)
    await conn.execute(totals.fill({t.name: t for t in tables_in(name)}, "postgresql"))
    await finish_load(conn, name, revision)


async def finish_load(conn: AsyncConnection, name: str, revision: str | None) -> None:
    """After the COPY: add the keys and build the indexes, set the id sequences past the loaded ids, record the
    Alembic revision and analyze every table of schema `name`."""
    # Index builds sort in memory up to this much (default 64 MB: external sorts on disk).
    await conn.execute(text(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"))
    tables = tables_in(name)
    for table in tables:
        for constraint in _keys(table):
            await conn.execute(AddConstraint(constraint))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            await conn.execute(CreateIndex(index))
        if "id" in table.c:  # the bitemporal tables' serial ids
            await conn.execute(text(
                "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                f"coalesce((SELECT max(id) FROM {_quote(name)}.{_quote(table.name)}), 0) + 1, false)"),
                {"table": f"{name}.{table.name}"})
    await conn.execute(text(f"CREATE TABLE {_quote(name)}.alembic_version "
                            "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    if revision is not None:
        await conn.execute(text(f"INSERT INTO {_quote(name)}.alembic_version VALUES (:v)"), {"v": revision})
    for table in tables:
        await conn.execute(text(f"ANALYZE {_quote(name)}.{_quote(table.name)}"))


def _keys(table: Table) -> list[Constraint]:
    """The primary-key and unique constraints of `table` (what `create_tables` leaves out)."""
    unique = sorted((c for c in table.constraints if isinstance(c, UniqueConstraint)), key=lambda c: str(c.name))
    return ([table.primary_key] if table.primary_key.columns else []) + unique


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy one (same session and transaction)."""
    return (await conn.get_raw_connection()).driver_connection


def _records(table: Table, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples in column order, with JSON columns as text (what binary COPY expects).
    Instants must be timezone-aware (the engine's and the events' always are; checked on the
    first row, as `UtcDateTime` would refuse a naive one)."""
    names = [c.name for c in table.c]
    json_at = [i for i, c in enumerate(table.c) if isinstance(c.type, JSON)]
    for name in names:
        value = rows[0][name] if rows else None
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            raise ValueError(f"{table.name}.{name}: naive datetime {value!r}")
    pick = itemgetter(*names)
    if not json_at:
        return [pick(row) for row in rows]
    encode = msgspec.json.encode
    out = []
    for row in rows:
        values = list(pick(row))
        for i in json_at:
            values[i] = encode(values[i]).decode()
        out.append(tuple(values))
    return out


async def swap_in(conn: AsyncConnection, name: str, *, lock_timeout_seconds: float = 30.0) -> str:
    """Make the projection tables of schema `name` the live ones and drop the old live tables
    and schema `name`, atomically (call inside a transaction). Returns the live schema's name."""
    live = await current_schema(conn)
    retired = f"mrr_retired_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    await conn.execute(text(f"SET LOCAL lock_timeout = '{int(lock_timeout_seconds * 1000)}ms'"))
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FX_LOCK_KEY})
    await conn.execute(text(f"CREATE SCHEMA {_quote(retired)}"))
    for table in tables_in(live):
        await conn.execute(text(f"ALTER TABLE IF EXISTS {_quote(live)}.{_quote(table.name)} "
                                f"SET SCHEMA {_quote(retired)}"))
    for table in tables_in(name):
        await conn.execute(text(f"ALTER TABLE {_quote(name)}.{_quote(table.name)} SET SCHEMA {_quote(live)}"))
    await drop(conn, retired)
    await drop(conn, name)
    return live
