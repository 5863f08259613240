"""`verify_projections`: check the projections against the ledger, independently recomputed
(`projections.verify`), on one consistent snapshot, and record the outcome.

The projections' offsets and rows are read in ONE transaction (REPEATABLE READ on PostgreSQL),
and the ledger is read up to exactly those offsets, so a live worker committing meanwhile does
not make a healthy projection look wrong. The ledger is recomputed under the settings the
projections say they were built with; a different configured setting is reported as such.
The result is stored in `projection_meta` (key `verify`), where `mrr exporter` reads it for the
`mrr_verify_differences` gauge and its alert.
"""

from __future__ import annotations

import datetime as dt
import logging

import msgspec
from sqlalchemy import Connection

from projections import bulk, schema
from projections.engine import MrrSettings
from projections.projector import settings_json
from projections.store import ProjectionStore, read_meta, read_offsets
from projections.verify import Difference, VerifyResult, compare, customers_of, expected_state, read_state
from streams.config import Config
from streams.gc_settings import paused_gc
from streams.ledger_snapshot import Progress, ledger_ends, read_ledger

log = logging.getLogger(__name__)

META_KEY = "verify"
UNTIL_KEY = "until_recorded"
"""`projection_meta` key of a side rebuild made with `mrr replay --until-recorded T` (T, RFC 3339):
it holds only the events recorded up to T, so verification reads the ledger with that cutoff."""


class VerifySummary(msgspec.Struct):
    """What `projection_meta['verify']` holds (and the exporter exports)."""

    checked_at: dt.datetime
    differences: int
    events: int


async def verify_store(store: ProjectionStore, config: Config, *,
                       progress: Progress | None = None) -> VerifyResult:
    """Compare `store`'s projections with the ledger of `config`; nothing is written."""
    async with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            stored = await conn.run_sync(read_offsets)
            stored_settings = await conn.run_sync(read_meta, "settings")
            until = await conn.run_sync(read_meta, UNTIL_KEY)
            available = await ledger_ends(config)
            notes: list[Difference] = []
            ends: dict[int, int] = {}
            for p in sorted(set(stored) | set(available)):
                ends[p] = min(stored.get(p, 0), available.get(p, 0))
                if stored.get(p, 0) > available.get(p, 0):
                    notes.append(Difference("projection_offsets", "different", None,
                                            f"partition {p}: stored {stored.get(p, 0)} is beyond the "
                                            f"ledger's end {available.get(p, 0)}"))
            snapshot = await read_ledger(config, ends, progress=progress,
                                         until_recorded=dt.datetime.fromisoformat(until) if until else None)
            actual = await conn.run_sync(read_state)
    settings = config.mrr_settings()
    if stored_settings is not None:
        try:
            settings = msgspec.json.decode(stored_settings, type=MrrSettings)
        except msgspec.DecodeError:
            notes.append(Difference("projection_meta", "different", None,
                                    f"settings: stored value is not valid settings JSON: {stored_settings}"))
        if settings != config.mrr_settings():
            notes.append(Difference("projection_meta", "different", None,
                                    f"settings: projections built with {stored_settings}, configured "
                                    f"{settings_json(config.mrr_settings())} (replay to change them)"))
    with paused_gc():
        expected = expected_state(snapshot.records, ends, settings)
        result = compare(expected, actual, checked_at=dt.datetime.now(dt.UTC),
                         customers=customers_of(snapshot.records))
    result.differences[:0] = notes
    return result


async def record_result(store: ProjectionStore, result: VerifyResult) -> None:
    """Store the summary of `result` in `projection_meta` (key `verify`)."""
    summary = VerifySummary(result.checked_at, result.difference_count, result.events)
    value = msgspec.json.encode(summary).decode()

    def write(conn: Connection) -> None:
        bulk.upsert_rows(conn, schema.projection_meta, [{"key": META_KEY, "value": value}], key="key")

    await store.transaction(write)
    log.info("verify: %d difference(s) over %d events", result.difference_count, result.events)


async def last_result(store: ProjectionStore) -> VerifySummary | None:
    """The summary the last `mrr verify` stored, if any."""
    raw = await store.read(read_meta, META_KEY)
    return None if raw is None else msgspec.json.decode(raw, type=VerifySummary)
