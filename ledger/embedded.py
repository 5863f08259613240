"""The embedded ledger: an append-only SQLite log with one partition (0), offsets 0, 1, 2, ….

It implements both `LedgerWriter` and `LedgerReader`, so everything that runs on Kafka also runs on
a laptop with nothing but Python. Rows are never updated or deleted (triggers refuse it), offsets
are contiguous and `recorded_at` never decreases with the offset (a trigger checks both). SQLite
calls run in a worker thread (`asyncio.to_thread`) on one connection, serialized by a lock; writes
take the database write lock up front (`BEGIN IMMEDIATE`) so another process appending to the same
file cannot interleave offsets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec

from ledger.events import EventBase, customer_of, encode_event, event_type
from ledger.ports import AppendResult, LedgerRecord
from ledger.upcast import decode_stored

PARTITION = 0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    "offset"    INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    customer_id TEXT,
    type        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_customer ON ledger (customer_id, "offset");
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS ledger_append_order BEFORE INSERT ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger offsets must be contiguous')
    WHERE NEW."offset" IS NOT (SELECT COALESCE(MAX("offset") + 1, 0) FROM ledger);
    SELECT RAISE(ABORT, 'ledger recorded_at must not decrease')
    WHERE NEW.recorded_at < (SELECT recorded_at FROM ledger WHERE "offset" = NEW."offset" - 1);
END;
"""


class EmbeddedLedger:
    """Append-only SQLite ledger at `path` (created with its parent directory if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")  # the ledger is the system of record
        self._db.executescript(_SCHEMA)

    async def __aenter__(self) -> EmbeddedLedger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- LedgerWriter ---------------------------------------------------------------------------

    async def append_many(
        self, events: Sequence[EventBase], *, now: dt.datetime | None = None
    ) -> list[AppendResult]:
        """Append in order, in one transaction. A re-sent event (same `event_id`, same content
        ignoring `recorded_at`) is a `duplicate` with its original offset; same id with other
        content is a `conflict`, written nowhere. `recorded_at` is `now` (default: the clock) in
        UTC, raised to the last recorded instant if the clock is behind it."""
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        return await asyncio.to_thread(self._append_sync, list(events), stamp)

    def _append_sync(self, events: list[EventBase], stamp: dt.datetime) -> list[AppendResult]:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                # recorded_at never decreases with the offset, so the last row holds the maximum.
                last_row = db.execute(
                    'SELECT "offset", recorded_at FROM ledger ORDER BY "offset" DESC LIMIT 1'
                ).fetchone()
                next_offset, last = (last_row[0] + 1, last_row[1]) if last_row else (0, None)
                recorded_at = max(stamp, _parse_time(last)) if last else stamp
                results = []
                for event in events:
                    result = self._append_one(event, next_offset, recorded_at)
                    next_offset += result.status == "accepted"
                    results.append(result)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return results

    def _append_one(self, event: EventBase, offset: int, recorded_at: dt.datetime) -> AppendResult:
        row = self._db.execute(
            'SELECT "offset", body FROM ledger WHERE event_id = ?', (event.event_id,)
        ).fetchone()
        if row is not None:
            stored = decode_stored(row[1])
            differing = _differing_fields(stored, event)
            if not differing:
                return AppendResult(event.event_id, "duplicate", PARTITION, row[0])
            return AppendResult(
                event.event_id,
                "conflict",
                reason=f"already recorded at offset {row[0]} with a different body "
                f"(differs in: {', '.join(differing)})",
            )
        stamped = msgspec.structs.replace(event, recorded_at=recorded_at)
        self._db.execute(
            "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                offset,
                event.event_id,
                customer_of(event),
                event_type(event),
                _format_time(event.occurred_at),
                _format_time(recorded_at),
                encode_event(stamped),
            ),
        )
        return AppendResult(event.event_id, "accepted", PARTITION, offset)

    # --- LedgerReader ---------------------------------------------------------------------------

    async def partitions(self) -> list[int]:
        """Always `[0]`."""
        return [PARTITION]

    async def end_offsets(self) -> dict[int, int]:
        """`{0: offset the next appended record will get}`."""
        return {PARTITION: await asyncio.to_thread(self._end_offset_sync)}

    def _end_offset_sync(self) -> int:
        with self._lock:
            return self._db.execute('SELECT COALESCE(MAX("offset") + 1, 0) FROM ledger').fetchone()[
                0
            ]

    async def read(self, partition: int, from_offset: int, limit: int) -> list[LedgerRecord]:
        """Up to `limit` records of partition 0 from `from_offset` on, in offset order, decoded
        (old schema versions upcast) with `recorded_at` set."""
        if partition != PARTITION:
            raise ValueError(f"the embedded ledger has only partition {PARTITION}, not {partition}")
        return await asyncio.to_thread(self._read_sync, from_offset, limit)

    def _read_sync(self, from_offset: int, limit: int) -> list[LedgerRecord]:
        with self._lock:
            rows = self._db.execute(
                'SELECT "offset", recorded_at, body FROM ledger WHERE "offset" >= ? '
                'ORDER BY "offset" LIMIT ?',
                (from_offset, limit),
            ).fetchall()
        return [
            LedgerRecord(
                PARTITION,
                offset,
                msgspec.structs.replace(decode_stored(body), recorded_at=_parse_time(recorded_at)),
            )
            for offset, recorded_at, body in rows
        ]

    async def close(self) -> None:
        """Close the SQLite connection (idempotent)."""
        with self._lock:
            self._db.close()


def _differing_fields(stored: EventBase, incoming: EventBase) -> list[str]:
    """Top-level fields whose values differ, ignoring `recorded_at`; compares values, so
    `10` vs `10.0` or one instant written with two UTC offsets are the same."""
    if type(stored) is not type(incoming):
        return ["type"]
    return [
        name
        for name in type(stored).__struct_fields__
        if name != "recorded_at" and getattr(stored, name) != getattr(incoming, name)
    ]


def _format_time(instant: dt.datetime) -> str:
    """UTC, fixed width (`2024-03-01T00:00:00.000000Z`), so text order is time order."""
    utc = instant.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
