"""`verify_store`: check the projections against the ledger, independently recomputed
(`projections.verify`), on one consistent snapshot, and record the outcome.

The projections' offsets and rows are read in ONE transaction (REPEATABLE READ on PostgreSQL),
and the ledger is read up to exactly those offsets, so a live worker committing meanwhile does
not make a healthy projection look wrong. The ledger is recomputed under the settings the
projections say they were built with; a different configured setting is reported as such.
The result is stored in `projection_meta` (key `verify`), where `mrr exporter` reads it for the
`mrr_verify_differences` gauge and its alert.

On PostgreSQL the customers are split into contiguous ranges of ids (byte order), each
recomputed and compared in a forked process (`streams.forked`) that reads its rows on the
parent transaction's exported snapshot (`pg_export_snapshot` / `SET TRANSACTION SNAPSHOT`),
so the slices see exactly what the parent sees; the event index, reference tables and offsets
are compared in the parent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Mapping, Sequence

import msgspec
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.events import FxRatePublished, customer_of
from ledger.ports import LedgerRecord
from projections import bulk, schema, totals
from projections.engine import MrrSettings
from projections.projector import settings_json
from projections.store import ProjectionStore, read_meta, read_offsets
from projections.verify import (
    Difference,
    RowsCheck,
    VerifyResult,
    check_rows,
    combine,
    customer_ranges,
    expected_reference,
    expected_rows,
    first_copies,
    in_range,
    read_reference,
    read_rows,
)
from streams.config import Config
from streams.forked import map_forked
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


async def verify_store(store: ProjectionStore, config: Config, *, progress: Progress | None = None,
                       jobs: int = 1) -> VerifyResult:
    """Compare `store`'s projections with the ledger of `config`; nothing is written. On
    PostgreSQL the customers' rows are checked in `jobs` processes, all on the snapshot of this
    transaction (`pg_export_snapshot`)."""
    postgres = store.dialect == "postgresql"
    async with store.engine.connect() as conn:
        if postgres:
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
            slices = Slices(store.url, store.engine_options, await _export_snapshot(conn)) if postgres else None
            result = await check_projections(conn, snapshot.records, ends, settings,
                                             jobs=jobs if postgres else 1, slices=slices)
    result.differences[:0] = notes
    return result


class Slices(msgspec.Struct, frozen=True):
    """How a forked child reaches the projections: URL, engine options, exported snapshot."""

    url: str
    engine_options: dict[str, Any]
    snapshot: str | None


async def _export_snapshot(conn: AsyncConnection) -> str:
    return (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()


async def check_projections(conn: AsyncConnection, records: Sequence[LedgerRecord], ends: Mapping[int, int],
                            settings: MrrSettings, *, jobs: int = 1, slices: Slices | None = None) -> VerifyResult:
    """Compare the projections `conn` sees with `records` (the ledger up to `ends`) recomputed
    from scratch, and their bridge totals with their rows (`projections.totals.check`). With `jobs` > 1 and `slices`, the customers are split into `jobs` ranges of
    ids, each recomputed and read in a forked process on the same snapshot."""
    with paused_gc():  # millions of long-lived tuples and rows, no cycles among them
        applied, conflicts = first_copies(records)
        customers = {cid for cid in (customer_of(r.event) for r in applied) if cid is not None}
        if jobs > 1 and slices is not None:  # fork first: the children need not inherit what follows
            ranges = customer_ranges(customers, jobs)
            pending = asyncio.ensure_future(map_forked(
                applied, _check_slice, [(low, high, slices, settings_json(settings)) for low, high in ranges]))
            await asyncio.sleep(0)
        else:
            pending = None
        expected = expected_reference(applied, conflicts, ends)
        actual = await conn.run_sync(read_reference)
        if pending is not None:
            checks = await pending
        else:
            want = expected_rows(applied, settings)
            checks = [check_rows(want, await conn.run_sync(read_rows))]
        result = combine(expected, actual, checks, checked_at=dt.datetime.now(dt.UTC), customers=len(customers))
    result.differences += [Difference("bridge_totals", "different", None, line)
                           for line in await conn.run_sync(totals.check)]
    return result


def _check_slice(applied: Sequence[LedgerRecord], low: str | None, high: str | None, slices: Slices,
                 settings: str) -> RowsCheck:
    """In a forked child: recompute the customers in [low, high) and compare with their rows."""
    with paused_gc():
        mine = [r for r in applied if (cid := customer_of(r.event)) is None and isinstance(r.event, FxRatePublished)
                or cid is not None and in_range(cid, low, high)]
        want = expected_rows(mine, msgspec.json.decode(settings, type=MrrSettings))
        got = asyncio.run(_read_slice(slices, low, high))
        return check_rows(want, got)


async def _read_slice(slices: Slices, low: str | None, high: str | None) -> dict[str, Any]:
    store = ProjectionStore.from_url(slices.url, **slices.engine_options)
    try:
        async with store.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                if slices.snapshot is not None:
                    await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{slices.snapshot}'"))
                return await conn.run_sync(read_rows, low, high)
    finally:
        await store.close()


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
