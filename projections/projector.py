"""The projector: applies a batch of ledger records to the projection store in ONE transaction.

Per batch: skip records below the stored offset of their partition (`projections.offsets`), drop
event ids already in the event index (`projections.dedupe`), hand the new records to `projections.batch.Batch` (event index, reference data,
engine recomputation of every touched customer, bitemporal diff), then advance
`projection_offsets` with a compare-and-set.

Recorded time. The batch is processed in ascending `recorded_at` steps. At step R the engine sees
every event recorded up to R (and the FX rates recorded up to R); rows that appear get
`recorded_at = R`, rows that disappear get `superseded_at = R`, unchanged rows are untouched. So
each row carries the recorded instant it became known, even when several of a customer's events
arrive in one batch. A new FX rate restates every customer with a foreign-currency subscription
whose rate lookups (service-period starts) fall on or after the rate's effective date. R never
goes backwards for a customer (a rate recorded on another partition slightly before the
customer's own last event is applied at that customer's last recorded instant).

Offsets and fencing. A partition without a stored offset starts at 0 (the ledger keeps every
record), so a batch that starts further on is an `OffsetGapError` even on fresh projections. The
transaction first locks the offset rows of its partitions (`SELECT … FOR UPDATE` on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite), so two projectors on one partition queue instead of racing. The
projector remembers the offsets it committed; a batch whose stored offset differs from that
memory (another worker moved it) is refused with `FencingError`, and the final
`UPDATE … WHERE next_offset = :expected` must hit exactly one row. Call `forget_positions` when
partitions are (re)assigned.

Idempotence. An `event_id` already in the event index is not applied again: with the same content
(ignoring `recorded_at`, which a re-send re-stamps) it counts as a duplicate; with other content it
is a conflict, stored in `event_conflicts` by ledger position and logged, never an overwrite.

Statistics. After a commit, tables the projector doubled since their last analysis are analyzed
in the background (`projections.table_stats`), so plans made while they were small do not stick.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import msgspec
from sqlalchemy import Connection, func, select

from ledger.events import FxRatePublished, customer_of
from ledger.ports import LedgerRecord
from projections import bulk, schema
from projections.batch import Batch
from projections.customer_cache import DEFAULT_CAPACITY, CustomerCache
from projections.dedupe import dedupe
from projections.offsets import (  # the errors are part of the projector's API
    FencingError,
    OffsetGapError,
    advance,
    keep_unapplied,
    lock_offsets,
    next_offsets,
)
from projections.engine import FxTable, MrrSettings
from projections.store import ProjectionStore, load_fx_table, read_meta
from projections.table_stats import TableStats


log = logging.getLogger(__name__)

__all__ = ["BatchResult", "FencingError", "OffsetGapError", "Projector", "SettingsMismatchError",
           "settings_json", "settings_match"]

FX_LOCK_KEY = 0x6D72725F66780001
"""PostgreSQL advisory lock id (bigint) that orders FX restatements against other batches."""


class SettingsMismatchError(RuntimeError):
    """The projections were computed with other MRR settings; rebuild them to change settings."""


@dataclass
class BatchResult:
    """What one `apply_batch` did."""

    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    conflicts: int = 0
    customers: int = 0
    restated: int = 0
    """Customers whose already projected movements or FX impacts changed (`batch.RESTATED_TABLES`)."""
    offsets: dict[int, int] = field(default_factory=dict)


def settings_json(settings: MrrSettings) -> str:
    """Canonical JSON of the settings, as stored in `projection_meta`."""
    return msgspec.json.encode(settings).decode()


def settings_match(stored: str, settings: MrrSettings) -> bool:
    """Whether stored settings JSON equals `settings` (undecodable counts as different)."""
    try:
        return msgspec.json.decode(stored, type=MrrSettings) == settings
    except msgspec.DecodeError:
        return False


class Projector:
    """Applies ledger records to a `ProjectionStore` with the pure engine; see the module docstring."""

    def __init__(self, store: ProjectionStore, settings: MrrSettings, *,
                 cache_size: int = DEFAULT_CAPACITY) -> None:
        self.store = store
        self.settings = settings
        self._positions: dict[int, int] = {}
        self._fx: FxTable | None = None
        self._fx_rows = 0
        self._settings_checked = False
        self.customer_cache = CustomerCache(cache_size)
        self.table_stats = TableStats()
        self._committed: list[tuple[str, Any]] = []
        self._inserted: dict[str, int] = {}

    @property
    def positions(self) -> dict[int, int]:
        """The next offset per partition this projector last committed (a copy)."""
        return dict(self._positions)

    def forget_positions(self, partitions: Iterable[int] | None = None) -> None:
        """Drop remembered offsets (on partition assignment); the stored ones are trusted next."""
        self.customer_cache.clear()  # another worker may have applied these partitions meanwhile
        self._settings_checked = False  # or a replay swapped in projections built otherwise
        if partitions is None:
            self._positions.clear()
        else:
            for p in partitions:
                self._positions.pop(p, None)

    async def apply_batch(
        self,
        records: Sequence[LedgerRecord],
        offsets: Mapping[int, int],
        *,
        expected: Mapping[int, int] | None = None,
        starts: Mapping[int, int] | None = None,
    ) -> BatchResult:
        """Apply `records` and set each partition's next offset to `offsets[p]`, atomically.

        `offsets` defaults, per partition with records, to the last offset + 1. `starts` gives,
        per partition, the first offset the batch covers when that is not its first record (a
        consumer's batch that began with messages that are not events). `expected` overrides the
        offsets this projector remembers committing (fencing). Raises `FencingError`,
        `OffsetGapError` or `SettingsMismatchError`; then nothing is written.
        """
        try:
            result = await self.store.transaction(
                self._apply, list(records), dict(offsets), expected, dict(starts or {})
            )
        except BaseException:
            self._fx = None  # the cache may hold rates of the rolled-back batch
            self.customer_cache.clear()  # and these customer states may be the rolled-back ones
            raise
        finally:
            committed, self._committed = self._committed, []
            inserted, self._inserted = self._inserted, {}
        self.customer_cache.put_all(committed)
        self._positions.update(result.offsets)
        self._settings_checked = True
        await self.table_stats.after_commit(self.store, inserted)
        return result

    # --- the transaction ----------------------------------------------------------------------
    def _apply(
        self,
        conn: Connection,
        records: list[LedgerRecord],
        offsets: dict[int, int],
        expected: Mapping[int, int] | None,
        starts: dict[int, int],
    ) -> BatchResult:
        self._check_settings(conn)
        result = BatchResult()
        by_partition: dict[int, list[LedgerRecord]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        partitions = set(offsets) | set(by_partition) | set(starts)
        self._lock_reference_data(conn, any(isinstance(r.event, FxRatePublished) for r in records))
        stored = lock_offsets(conn, partitions)
        remembered = self._positions if expected is None else expected
        for p in sorted(partitions):
            if p in remembered and stored.get(p, 0) != remembered[p]:
                raise FencingError(
                    f"partition {p}: stored next offset {stored.get(p)} != expected {remembered[p]}"
                )
        kept, result.skipped = keep_unapplied(partitions, by_partition, starts, stored)
        targets = next_offsets(partitions, by_partition, offsets, stored)
        new, result.duplicates, result.conflicts = dedupe(conn, kept)
        if new:
            batch = Batch(conn, new, self.settings, self.fx_table(conn), self.customer_cache)
            try:
                batch.run()
            finally:
                self._fx_rows += batch.rates_added
            self._committed = batch.committed_customers()
            self._inserted = batch.inserted
            result.customers = len({customer_of(r.event) for r in new} - {None})
            result.restated = len(batch.restated)
        result.applied = len(new)
        result.offsets = advance(conn, targets, stored)
        return result

    def _check_settings(self, conn: Connection) -> None:
        if self._settings_checked:
            return
        mine = settings_json(self.settings)
        # Insert-if-missing first: two workers starting on empty projections must not both insert.
        conn.execute(
            bulk.dialect_insert(conn, schema.projection_meta)
            .values([
                {"key": "settings", "value": mine},
                {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
            ])
            .on_conflict_do_nothing(index_elements=["key"])
        )
        theirs = read_meta(conn, "settings")
        if theirs is None or not settings_match(theirs, self.settings):
            raise SettingsMismatchError(
                f"projections were computed with settings {theirs}, not {mine}; rebuild them"
            )

    @staticmethod
    def _lock_reference_data(conn: Connection, restates: bool) -> None:
        """Serialise FX restatements against every other batch (PostgreSQL; SQLite already has
        one writer at a time).

        A customer's events all live in one partition, so batches of different partitions touch
        different customers, except an FX rate: it restates customers of every partition. A batch
        with a rate takes the lock exclusively, every other batch shares it, so a batch either
        sees the rate (and its restatement) or the restating batch sees its events; without it,
        a customer's new event computed with the old rates could slip between the two."""
        if conn.dialect.name != "postgresql":
            return
        lock = "pg_advisory_xact_lock" if restates else "pg_advisory_xact_lock_shared"
        conn.execute(select(getattr(func, lock)(FX_LOCK_KEY)))

    # --- FX cache -----------------------------------------------------------------------------
    def fx_table(self, conn: Connection) -> FxTable:
        """The FX table of every stored rate, reloaded when the row count changed (other workers)."""
        count = conn.execute(select(func.count()).select_from(schema.fx_rates)).scalar_one()
        if self._fx is None or count != self._fx_rows:
            # Rates this projector did not write: another worker may have restated customers.
            self.customer_cache.clear()
            self._fx, self._fx_rows = load_fx_table(conn), count
        return self._fx



