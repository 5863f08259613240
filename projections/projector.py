"""The projector: applies a batch of ledger records to the projection store in ONE transaction.

Per batch: skip records below the stored offset of their partition, drop event ids already in the
event index, hand the new records to `projections.batch.Batch` (event index, reference data,
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

Fencing. The projector remembers the offsets it committed; a batch whose stored offset differs
from that memory (another worker moved it) is refused with `FencingError`, and the final
`UPDATE … WHERE next_offset = :expected` must hit exactly one row, which also fences a concurrent
writer between the read and the write. Call `forget_positions` when partitions are (re)assigned.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import msgspec
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger.events import customer_of
from ledger.ports import LedgerRecord
from projections import schema
from projections.batch import Batch, chunks
from projections.engine import FxTable, MrrSettings
from projections.store import ProjectionStore, load_fx_table, read_meta, read_offsets


class FencingError(RuntimeError):
    """The stored offset is not the one this worker expected: another worker owns the partition."""


class OffsetGapError(RuntimeError):
    """The batch starts above the stored offset: records in between must be applied first."""


class SettingsMismatchError(RuntimeError):
    """The projections were computed with other MRR settings; rebuild them to change settings."""


@dataclass
class BatchResult:
    """What one `apply_batch` did."""

    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    customers: int = 0
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

    def __init__(self, store: ProjectionStore, settings: MrrSettings) -> None:
        self.store = store
        self.settings = settings
        self._positions: dict[int, int] = {}
        self._fx: FxTable | None = None
        self._fx_rows = 0
        self._settings_checked = False

    def forget_positions(self, partitions: Iterable[int] | None = None) -> None:
        """Drop remembered offsets (on partition assignment); the stored ones are trusted next."""
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
    ) -> BatchResult:
        """Apply `records` and set each partition's next offset to `offsets[p]`, atomically.

        `offsets` defaults, per partition with records, to the last offset + 1. `expected`
        overrides the offsets this projector remembers committing (fencing). Raises
        `FencingError`, `OffsetGapError` or `SettingsMismatchError`; then nothing is written.
        """
        try:
            result = await self.store.transaction(self._apply, list(records), dict(offsets), expected)
        except BaseException:
            self._fx = None  # the cache may hold rates of the rolled-back batch
            raise
        self._positions.update(result.offsets)
        self._settings_checked = True
        return result

    # --- the transaction ----------------------------------------------------------------------
    def _apply(
        self,
        conn: Connection,
        records: list[LedgerRecord],
        offsets: dict[int, int],
        expected: Mapping[int, int] | None,
    ) -> BatchResult:
        self._check_settings(conn)
        result = BatchResult()
        by_partition: dict[int, list[LedgerRecord]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        partitions = set(offsets) | set(by_partition)
        stored = {p: o for p, o in read_offsets(conn).items() if p in partitions}
        remembered = self._positions if expected is None else expected
        for p in sorted(partitions):
            if p in remembered and stored.get(p) != remembered[p]:
                raise FencingError(
                    f"partition {p}: stored next offset {stored.get(p)} != expected {remembered[p]}"
                )
        kept = self._keep(by_partition, stored, result)
        targets = self._targets(partitions, by_partition, offsets, stored)
        new = self._dedupe(conn, kept, result)
        if new:
            batch = Batch(conn, new, self.settings, self.fx_table(conn))
            try:
                batch.run()
            finally:
                self._fx_rows += batch.rates_added
            result.customers = len({customer_of(r.event) for r in new} - {None})
        result.applied = len(new)
        result.offsets = self._advance(conn, targets, stored)
        return result

    def _check_settings(self, conn: Connection) -> None:
        if self._settings_checked:
            return
        mine = settings_json(self.settings)
        theirs = read_meta(conn, "settings")
        if theirs is None:
            conn.execute(insert(schema.projection_meta), [
                {"key": "settings", "value": mine},
                {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
            ])
        elif not settings_match(theirs, self.settings):
            raise SettingsMismatchError(
                f"projections were computed with settings {theirs}, not {mine}; rebuild them"
            )

    @staticmethod
    def _keep(
        by_partition: dict[int, list[LedgerRecord]], stored: dict[int, int], result: BatchResult
    ) -> list[LedgerRecord]:
        kept: list[LedgerRecord] = []
        for p, recs in by_partition.items():
            recs.sort(key=lambda r: r.offset)
            fresh = [r for r in recs if p not in stored or r.offset >= stored[p]]
            result.skipped += len(recs) - len(fresh)
            if fresh and p in stored and fresh[0].offset > stored[p]:
                raise OffsetGapError(
                    f"partition {p}: batch starts at offset {fresh[0].offset}, stored next offset "
                    f"is {stored[p]}; apply offsets {stored[p]}..{fresh[0].offset - 1} first"
                )
            kept.extend(fresh)
        return kept

    @staticmethod
    def _targets(
        partitions: set[int],
        by_partition: dict[int, list[LedgerRecord]],
        offsets: dict[int, int],
        stored: dict[int, int],
    ) -> dict[int, int]:
        targets: dict[int, int] = {}
        for p in partitions:
            last = by_partition[p][-1].offset + 1 if by_partition.get(p) else None
            target = offsets.get(p, last)
            if target is None:
                continue
            if last is not None and target < last:
                raise ValueError(f"partition {p}: next offset {target} is not past the batch (ends at {last - 1})")
            targets[p] = max(target, stored.get(p, target))
        return targets

    @staticmethod
    def _dedupe(conn: Connection, kept: list[LedgerRecord], result: BatchResult) -> list[LedgerRecord]:
        ids = list(dict.fromkeys(r.event.event_id for r in kept))
        known: set[str] = set()
        events = schema.events
        for chunk in chunks(ids):
            known.update(conn.execute(select(events.c.event_id).where(events.c.event_id.in_(chunk))).scalars())
        new: list[LedgerRecord] = []
        for record in kept:
            if record.event.event_id in known:
                result.duplicates += 1
                continue
            if record.event.recorded_at is None:
                raise ValueError(f"event {record.event.event_id} has no recorded_at")
            known.add(record.event.event_id)
            new.append(record)
        return new

    @staticmethod
    def _advance(conn: Connection, targets: dict[int, int], stored: dict[int, int]) -> dict[int, int]:
        table = schema.projection_offsets
        for p, target in sorted(targets.items()):
            if p not in stored:
                try:
                    conn.execute(insert(table).values(partition=p, next_offset=target))
                except IntegrityError as exc:
                    raise FencingError(f"partition {p}: offset row created concurrently") from exc
            elif target != stored[p]:
                hit = conn.execute(
                    update(table)
                    .where(table.c.partition == p, table.c.next_offset == stored[p])
                    .values(next_offset=target)
                ).rowcount
                if hit != 1:
                    raise FencingError(f"partition {p}: next offset moved from {stored[p]} concurrently")
        return targets

    # --- FX cache -----------------------------------------------------------------------------
    def fx_table(self, conn: Connection) -> FxTable:
        """The FX table of every stored rate, reloaded when the row count changed (other workers)."""
        count = conn.execute(select(func.count()).select_from(schema.fx_rates)).scalar_one()
        if self._fx is None or count != self._fx_rows:
            self._fx, self._fx_rows = load_fx_table(conn), count
        return self._fx



