"""Keep PostgreSQL's planner statistics up with tables the projector grows quickly.

Why: the projector's statements are prepared once per connection, and PostgreSQL plans a prepared
statement for its table sizes and statistics at the time. A projection that starts empty (a new
deployment, a benchmark, a rebuild into a fresh schema) grows by thousands of rows a second, but
autovacuum analyzes a table at most once per `autovacuum_naptime` (a minute by default), so for
that first stretch the plans are made for empty tables: loading a few customers' current rows
became a sequential scan (or a walk of every current row through another index), measured at
12 ms on average and 38 ms at worst per statement after 40,000 events, and the projector got
slower as the tables grew. Analyzing when a table has doubled since its last analysis costs a
few milliseconds per doubling (a logarithmic number of times in all) and invalidates those plans.

`TableStats.after_commit` starts `ANALYZE` in its own short transaction on another connection of
the pool after a batch committed, never inside a batch (its lock would queue other workers'
batches), and does not wait for it (an analysis of a large table takes a few hundred
milliseconds the next batch need not wait for). Failures are logged and ignored: statistics are
an optimisation, never a reason to stop projecting. SQLite is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Mapping

from sqlalchemy import Connection, text

from projections import schema
from projections.store import ProjectionStore

log = logging.getLogger(__name__)

MIN_ROWS = 1_000
"""A table is analyzed once at least this many rows, and at least as many as it held at its
last analysis, were inserted since."""


class TableStats:
    """Counts the rows the projector inserts per table and analyzes tables that doubled."""

    def __init__(self, min_rows: int = MIN_ROWS) -> None:
        self.min_rows = min_rows
        self._known: dict[str, float] | None = None
        """Per table, the row count at its last analysis (PostgreSQL's `reltuples`, or ours)."""
        self._inserted: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.analyzed = 0
        """How many tables were analyzed so far."""

    def due(self) -> list[str]:
        """Tables whose inserted rows reached the threshold (`min_rows`, or the size at the
        last analysis if larger: the table doubled)."""
        known = self._known or {}
        return sorted(name for name, count in self._inserted.items()
                      if count >= max(self.min_rows, known.get(name, 0.0)))

    def count(self, inserted: Mapping[str, int]) -> None:
        """Add one committed batch's inserted rows per table name."""
        for name, rows in inserted.items():
            if rows:
                self._inserted[name] = self._inserted.get(name, 0) + rows

    async def after_commit(self, store: ProjectionStore, inserted: Mapping[str, int]) -> None:
        """Count a committed batch's inserts; analyze the tables that are due in the background
        (its own connection, so the next batch does not wait), one analysis at a time."""
        if store.dialect != "postgresql":
            return
        self.count(inserted)
        if self._task is not None and not self._task.done():
            return  # still analyzing: what is due now is analyzed next time
        if self._known is None:
            try:
                self._known = await store.read(_reltuples)
            except Exception as exc:  # noqa: BLE001 - an optimisation: say so and go on
                log.warning("could not read table statistics: %s", exc)
                self._known = {}
        due = self.due()
        if due:
            self._task = asyncio.create_task(self._analyze(store, due))

    async def settled(self) -> None:
        """Wait for a running analysis (tests, shutdown)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _analyze(self, store: ProjectionStore, due: list[str]) -> None:
        started = time.monotonic()
        try:
            await store.transaction(_analyze, due)
        except Exception as exc:  # noqa: BLE001 - an optimisation: say so and go on
            log.warning("ANALYZE %s failed (planner statistics may lag): %s", ", ".join(due), exc)
            return
        known = self._known if self._known is not None else {}
        for name in due:
            known[name] = known.get(name, 0.0) + self._inserted.pop(name, 0)
        self.analyzed += len(due)
        log.info("analyzed %s in %.2f s (planner statistics for tables that doubled since their "
                 "last analysis)", ", ".join(due), time.monotonic() - started)


def _reltuples(conn: Connection) -> dict[str, float]:
    """PostgreSQL's row estimate of every projection table in the current schema (0 if never
    analyzed)."""
    names = list(schema.metadata.tables)
    rows = conn.execute(text(
        "SELECT c.relname, greatest(c.reltuples, 0) FROM pg_class c "
        "WHERE c.relname = ANY(:names) AND c.relkind = 'r' "
        "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"),
        {"names": names}).all()
    return {name: float(tuples) for name, tuples in rows}


def _analyze(conn: Connection, names: list[str]) -> None:
    prep = conn.dialect.identifier_preparer
    conn.exec_driver_sql("ANALYZE " + ", ".join(prep.quote(name) for name in names))
