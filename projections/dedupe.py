"""Idempotence by `event_id`: an id already in the event index is never applied again.

The same content (ignoring `recorded_at`, which a re-send re-stamps) is a duplicate; other
content is a conflict, stored in `event_conflicts` by ledger position and logged, never an
overwrite.
"""

from __future__ import annotations

import logging

import msgspec
from sqlalchemy import Connection, insert, select

from ledger.events import EventBase, encode_event
from ledger.ports import LedgerRecord
from ledger.upcast import decode_stored
from projections import bulk, schema

log = logging.getLogger("projections.projector")


def content(event: EventBase) -> EventBase:
    """The event without its `recorded_at`: what two copies of one event must agree on."""
    return msgspec.structs.replace(event, recorded_at=None)


def dedupe(conn: Connection, kept: list[LedgerRecord]) -> tuple[list[LedgerRecord], int, int]:
    """The records whose event_id is new; a known id with the same content (ignoring
    `recorded_at`) is a duplicate, with other content a conflict (recorded, not applied). Returns (new records, duplicates, conflicts)."""
    ids = list(dict.fromkeys(r.event.event_id for r in kept))
    known: dict[str, EventBase] = {}
    events = schema.events
    query = select(events.c.event_id, events.c.body)
    for rows in bulk.select_in(conn, events.c.event_id, ids, query.where):
        known.update((event_id, decode_stored(body.encode())) for event_id, body in rows)
    new, duplicates, conflicts = split_known(kept, known)
    if conflicts:
        conn.execute(insert(schema.event_conflicts), conflicts)
    return new, duplicates, len(conflicts)


def split_known(records: list[LedgerRecord], known: dict[str, EventBase]
                ) -> tuple[list[LedgerRecord], int, list[dict[str, object]]]:
    """Classify `records` (in order) against `known` (event id -> first copy, updated with the
    new ones): (new records, number of duplicates, `event_conflicts` rows)."""
    new: list[LedgerRecord] = []
    duplicates = 0
    conflicts: list[dict[str, object]] = []
    for record in records:
        event = record.event
        if event.recorded_at is None:
            raise ValueError(f"event {event.event_id} has no recorded_at")
        first = known.get(event.event_id)
        if first is None:
            known[event.event_id] = event
            new.append(record)
        elif content(first) == content(event):
            duplicates += 1
        else:
            conflicts.append(conflict_row(record))
    warn_conflicts(conflicts)
    return new, duplicates, conflicts


def conflict_row(record: LedgerRecord) -> dict[str, object]:
    """The `event_conflicts` row of a copy that reuses an applied event id with another body."""
    event = record.event
    return {"partition": record.partition, "offset": record.offset, "event_id": event.event_id,
            "body": encode_event(event).decode(), "recorded_at": event.recorded_at}


def warn_conflicts(conflicts: list[dict[str, object]]) -> None:
    """Log conflicting copies (rows of `conflict_row`), if any."""
    if conflicts:
        log.warning("%d event(s) reuse an applied event_id with another body; recorded in "
                    "event_conflicts, not applied: %s", len(conflicts),
                    ", ".join(sorted({str(c["event_id"]) for c in conflicts})[:10]))
