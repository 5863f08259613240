"""The projections as stored: current rows of the bitemporal tables (optionally one range of
customer ids), the event index, reference tables, conflicts and offsets."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, select

from projections import schema
from projections.customer_state import ROW_KINDS
from projections.verify.model import ProjectionState, _text

def read_rows(conn: Connection, low: str | None = None, high: str | None = None) -> dict[str, Counter[Any]]:
    """The current rows of every bitemporal table, of the customers with `low <= customer_id <
    high` in byte order (None: unbounded; bounds need PostgreSQL)."""
    rows: dict[str, Counter[Any]] = {}
    for table, cls, _ in ROW_KINDS:
        fields = cls.__struct_fields__
        query = select(*(table.c[name] for name in fields)).where(table.c.superseded_at.is_(None))
        if low is not None:
            query = query.where(table.c.customer_id.collate("C") >= low)
        if high is not None:
            query = query.where(table.c.customer_id.collate("C") < high)
        if "event_ids" in fields:  # stored as a JSON list, a tuple in the engine's rows
            at = fields.index("event_ids")
            values = (cls(*row[:at], tuple(row[at]), *row[at + 1:]) for row in conn.execute(query))
        else:
            values = (cls(*row) for row in conn.execute(query))
        rows[str(table.name)] = Counter(values)
    return rows


def read_reference(conn: Connection) -> ProjectionState:
    """The stored event index, reference tables, conflicts and offsets."""
    state = ProjectionState()
    columns = {
        "events": ("event_id", "partition", "offset"),
        "fx_rates": ("event_id", "base", "quote", "effective_date", "rate"),
        "acquisition_costs": ("event_id", "period", "channel", "amount", "currency"),
        "customer_attributes": ("event_id", "key", "customer_id", "value"),
        "event_conflicts": ("partition", "offset", "event_id"),
    }
    for name, cols in columns.items():
        table = schema.metadata.tables[name]
        state.reference[name] = {_text(r) for r in conn.execute(select(*(table.c[c] for c in cols)))}
    offsets = schema.projection_offsets
    state.offsets = dict(conn.execute(select(offsets.c.partition, offsets.c.next_offset)).all())  # type: ignore[arg-type]
    return state


def read_state(conn: Connection) -> ProjectionState:
    """The current projections as stored (one consistent snapshot when `conn`'s transaction is
    REPEATABLE READ or SQLite's)."""
    state = read_reference(conn)
    state.rows = read_rows(conn)
    return state
