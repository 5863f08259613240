"""Bulk inserts, updates and keyed reads on one `Connection`: set-based SQL on PostgreSQL,
portable SQLAlchemy Core elsewhere.

The projector's batch writes thousands of rows per table and transaction. The portable path is
an executemany (`insert(table)` / `update … WHERE id = :row_id`) and `IN (…)` reads in chunks of
`CHUNK` ids; it serves SQLite, where a statement is a function call and executemany is already
the fastest way in. On PostgreSQL (decision 5: set-based SQL) every call here is ONE statement
whose parameters are one array per column:

- inserts: `INSERT INTO t (cols) SELECT … FROM unnest(CAST(:p0 AS type[]), …) WITH ORDINALITY
  … ORDER BY ordinality`, so serial ids follow the row order exactly as with executemany;
- superseding: `UPDATE t SET superseded_at = v.at FROM unnest(:ids, :ats) AS v(id, at)
  WHERE t.id = v.id`;
- reads: `column = ANY(:ids)` with one array parameter instead of chunked `IN` lists (500
  bind parameters each; once PostgreSQL switches such a prepared statement to its generic plan
  on a seq scan it rebuilds the 500-element ARRAY for every row it scans).

Values go through each column's own bind processing first (`UtcDateTime` normalises to UTC and
refuses naive datetimes, JSON columns serialise with the dialect's serializer), so the arrays
carry exactly what the executemany would have sent and the stored rows are identical.

Why `unnest` and not asyncpg's `copy_records_to_table` (binary COPY on the same connection and
transaction, reachable through `conn.connection.driver_connection` and `sqlalchemy.util.await_`):
both were measured on the projector benchmark (`python -m bench projector`, 30,000 demo events,
batches of 5,000 records, 2 cores, PostgreSQL 15): all inserts of the run took 1.7-1.8 s either
way (3.5 s with executemany). At a few thousand rows per table and batch the server's index
maintenance dominates and the wire format hardly matters. So `unnest` it is: a plain statement
that goes through SQLAlchemy (its lazily begun transaction, events, error translation, the
prepared-statement cache), needs no driver internals and no second code path for the driver's
own type codecs.

Set the engine execution option `PORTABLE` (`{bulk.PORTABLE: True}`) to force the
portable path on PostgreSQL (benchmarks and the equivalence test compare both).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import Connection, Result, Table, any_, bindparam, func, insert, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable

CHUNK = 500
"""Ids per `IN (…)` list on the portable path (well under SQLite's bind-parameter limit)."""

PORTABLE = "mrr_portable_bulk"
"""Execution option: true forces the portable path on PostgreSQL too."""


def set_based(conn: Connection) -> bool:
    """Whether this connection takes the PostgreSQL set-based path."""
    return conn.dialect.name == "postgresql" and not conn.get_execution_options().get(PORTABLE)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT for `table`, which offers `on_conflict_do_nothing/update`
    (PostgreSQL and SQLite)."""
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return (postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def select_in(
    conn: Connection,
    column: ColumnElement[Any],
    values: Sequence[Any],
    build: Callable[[ColumnElement[bool]], Executable],
) -> Iterator[Result[Any]]:
    """Results of `build(column IN values)`: one `= ANY(:values)` query on PostgreSQL, one query
    per chunk of `CHUNK` values elsewhere. Row order is whatever `build` orders by, per result;
    callers must not rely on an order across chunks beyond what grouping by `column` gives."""
    if not values:
        return
    if set_based(conn):
        array = bindparam("values_", list(values), type_=ARRAY(column.type))
        yield conn.execute(build(column == any_(array)))
        return
    for chunk in chunks(values):
        yield conn.execute(build(column.in_(chunk)))


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, all columns of `table`) in their order."""
    if not rows:
        return
    if not set_based(conn):
        conn.execute(insert(table), list(rows))
        return
    _insert_unnest(conn, table, rows, "")


def upsert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert `rows`, or where a row with the same `key` exists set its other columns."""
    if not rows:
        return
    others = [name for name in rows[0] if name != key]
    if not set_based(conn):
        statement = dialect_insert(conn, table)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[table.c[key]], set_={n: statement.excluded[n] for n in others}), list(rows))
        return
    prep = conn.dialect.identifier_preparer
    updates = ", ".join(f"{prep.quote(n)} = EXCLUDED.{prep.quote(n)}" for n in others)
    _insert_unnest(conn, table, rows, f" ON CONFLICT ({prep.quote(key)}) DO UPDATE SET {updates}")


def add_to_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str],
                added: Sequence[str], latest: Sequence[str]) -> None:
    """Insert `rows`, or where a row with the same `keys` exists add the `added` columns to it and
    keep the larger value of the `latest` columns. Rows are written in the order given (one
    statement on PostgreSQL), so writers that sort them lock shared rows in one order."""
    if not rows:
        return
    if not set_based(conn):
        statement = dialect_insert(conn, table)
        larger = func.greatest if conn.dialect.name == "postgresql" else func.max
        conn.execute(statement.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_={
            **{n: table.c[n] + statement.excluded[n] for n in added},
            **{n: larger(table.c[n], statement.excluded[n]) for n in latest}}), list(rows))
        return
    prep = conn.dialect.identifier_preparer
    target = prep.quote(table.name)
    updates = [f"{prep.quote(n)} = {target}.{prep.quote(n)} + EXCLUDED.{prep.quote(n)}" for n in added] + [
        f"{prep.quote(n)} = GREATEST({target}.{prep.quote(n)}, EXCLUDED.{prep.quote(n)})" for n in latest]
    conflict = ", ".join(prep.quote(k) for k in keys)
    _insert_unnest(conn, table, rows, f" ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(updates)}")


def _insert_unnest(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], suffix: str) -> None:
    names = list(rows[0])
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise ValueError(f"{table.name}: no column(s) {', '.join(unknown)}")
    columns = [table.c[n] for n in names]
    prep = conn.dialect.identifier_preparer
    arrays = [
        f"CAST(:p{i} AS {c.type.compile(dialect=conn.dialect)}[])" for i, c in enumerate(columns)
    ]
    aliases = [f"c{i}" for i in range(len(columns))]
    sql = (
        f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) "
        f"SELECT {', '.join('v.' + a for a in aliases)} "
        f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS v({', '.join(aliases)}, n) "
        f"ORDER BY v.n{suffix}"
    )
    params = {f"p{i}": _column_values(conn, c, [row[c.name] for row in rows])
              for i, c in enumerate(columns)}
    conn.execute(text(sql), params)


def allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` new ids for `table.id`, ascending, so rows can be inserted with known ids.

    PostgreSQL draws them from the column's sequence; SQLite continues after the largest id,
    which is safe because a SQLite write transaction excludes every other writer."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        # one array value, not `count` result rows: decoding rows costs more than drawing ids
        ids = conn.execute(
            text("SELECT array_agg(nextval(pg_get_serial_sequence(:table, 'id'))) "
                 "FROM generate_series(1, :n)"),
            {"table": table.name, "n": count},
        ).scalar_one()
        return sorted(ids)
    top = conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table.name}")).scalar_one()
    return list(range(top + 1, top + 1 + count))


def supersede_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Set `superseded_at = row["at"]` on the row with `id = row["row_id"]`, for every row (other
    keys of `rows` are ignored)."""
    if not rows:
        return
    if not set_based(conn):
        conn.execute(
            update(table).where(table.c.id == bindparam("row_id")).values(superseded_at=bindparam("at")),
            [{"row_id": row["row_id"], "at": row["at"]} for row in rows],
        )
        return
    latest = {row["row_id"]: row["at"] for row in rows}  # executemany semantics: the last one wins
    id_type = table.c.id.type.compile(dialect=conn.dialect)
    at_type = table.c.superseded_at.type.compile(dialect=conn.dialect)
    prep = conn.dialect.identifier_preparer
    sql = (
        f"UPDATE {prep.format_table(table)} AS t SET superseded_at = v.at "
        f"FROM unnest(CAST(:ids AS {id_type}[]), CAST(:ats AS {at_type}[])) AS v(id, at) "
        f"WHERE t.id = v.id"
    )
    conn.execute(text(sql), {
        "ids": _column_values(conn, table.c.id, list(latest)),
        "ats": _column_values(conn, table.c.superseded_at, list(latest.values())),
    })


def _column_values(conn: Connection, column: Any, values: list[Any]) -> list[Any]:
    """`values` as the driver would receive them for `column` (the type's bind processing)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return values if process is None else [process(v) for v in values]
