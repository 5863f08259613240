"""The projector: applies a batch of ledger records to the projection store in ONE transaction.

Per batch: skip records below the stored offset of their partition, drop event ids already in the
event index, index the new events, store reference data (FX rates, acquisition costs, customer
attributes), recompute the timeline of every customer the batch touches with the pure engine and
write the bitemporal difference, then advance `projection_offsets` with a compare-and-set.

Recorded time. The batch is processed in ascending `recorded_at` steps. At step R the engine sees
every event recorded up to R (and the FX rates recorded up to R); rows that appear get
`recorded_at = R`, rows that disappear get `superseded_at = R`, unchanged rows are untouched. So
each row carries the recorded instant it became known, even when several of a customer's events
arrive in one batch. A new FX rate restates every customer with a foreign-currency subscription
whose rate lookups (service-period starts) fall on or after the rate's effective date. R never goes backwards for a customer (a rate recorded on another partition slightly
before the customer's own last event is applied at that customer's last recorded instant).

Fencing. The projector remembers the offsets it committed; a batch whose stored offset differs
from that memory (another worker moved it) is refused with `FencingError`, and the final
`UPDATE … WHERE next_offset = :expected` must hit exactly one row, which also fences a concurrent
writer between the read and the write. Call `forget_positions` when partitions are (re)assigned.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import msgspec
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger.events import (
    AcquisitionCostRecorded,
    CustomerAttributesSet,
    EventBase,
    FxRatePublished,
    SUBSCRIPTION_TERMS_EVENTS,
    customer_of,
    encode_event,
    event_type,
)
from ledger.ports import LedgerRecord
from ledger.upcast import decode_stored
from projections import schema
from projections.engine import (
    CustomerInterval,
    FxImpact,
    FxTable,
    Movement,
    MrrSettings,
    SubscriptionInterval,
    compute_timeline,
)
from projections.store import ProjectionStore, load_fx_table, read_meta, read_offsets

CHUNK = 500
"""Ids per `IN (…)` list (well under SQLite's and asyncpg's bind-parameter limits)."""


# (table, engine row type, Timeline attribute); column names equal the Struct field names.
ROW_KINDS = (
    (schema.customer_mrr, CustomerInterval, "customer_intervals"),
    (schema.subscription_mrr, SubscriptionInterval, "subscription_intervals"),
    (schema.movements, Movement, "movements"),
    (schema.fx_impacts, FxImpact, "fx_impacts"),
)


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


@dataclass
class _Row:
    """A current row of one customer: stored (`id`) or inserted earlier in this batch (`pending`)."""

    value: Any
    id: int | None = None
    pending: dict[str, Any] | None = None


def fx_lookup_day(event: EventBase, reporting_currency: str) -> dt.date | None:
    """The day on which the engine may look up an FX rate for this event, if any.

    The engine converts at the rate in effect on the start of the service period, taken from
    terms events only (`current_period_start`, else `occurred_at`), for foreign currencies. A
    rate effective on day D can only change lookups on days >= D, so a customer whose latest
    lookup day is before D is not affected by it. (If the engine ever looks rates up elsewhere,
    this must follow; `test_projection_equals_replay` guards it.)
    """
    if not isinstance(event, SUBSCRIPTION_TERMS_EVENTS) or event.terms.currency == reporting_currency:
        return None
    start = event.terms.current_period_start or event.occurred_at
    return start.astimezone(dt.timezone.utc).date()


@dataclass
class _Customer:
    """One customer's known events and current rows while a batch is processed."""

    customer_id: str
    reporting_currency: str
    events: list[EventBase] = field(default_factory=list)
    rows: dict[str, list[_Row]] = field(default_factory=lambda: {t.name: [] for t, _, _ in ROW_KINDS})
    last_recorded: dt.datetime | None = None
    last_fx_lookup: dt.date | None = None

    def add(self, event: EventBase) -> None:
        self.events.append(event)
        day = fx_lookup_day(event, self.reporting_currency)
        if day is not None and (self.last_fx_lookup is None or day > self.last_fx_lookup):
            self.last_fx_lookup = day

    def affected_by_rate(self, effective_date: dt.date) -> bool:
        return self.last_fx_lookup is not None and self.last_fx_lookup >= effective_date

    def saw(self, instant: dt.datetime) -> None:
        if self.last_recorded is None or instant > self.last_recorded:
            self.last_recorded = instant


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc)


def settings_json(settings: MrrSettings) -> str:
    """Canonical JSON of the settings, as stored in `projection_meta`."""
    return msgspec.json.encode(settings).decode()


def row_to_struct(cls: type, row: Mapping[str, Any]) -> Any:
    values = {name: row[name] for name in cls.__struct_fields__}
    if "event_ids" in values:
        values["event_ids"] = tuple(values["event_ids"])
    return cls(**values)


def struct_to_row(value: Any) -> dict[str, Any]:
    row = msgspec.structs.asdict(value)
    if "event_ids" in row:
        row["event_ids"] = list(row["event_ids"])
    return row


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
            _Batch(self, conn, new).run()
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
        elif msgspec.json.decode(theirs, type=MrrSettings) != self.settings:
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
        for chunk in _chunks(ids):
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

    def fx_added(self, rate: FxRatePublished) -> None:
        assert self._fx is not None
        self._fx.add(rate.base, rate.quote, rate.effective_date, rate.rate)
        self._fx_rows += 1


class _Batch:
    """The work of one transaction: steps in recorded order, bitemporal diffs, bulk writes."""

    def __init__(self, projector: Projector, conn: Connection, records: list[LedgerRecord]) -> None:
        self.p = projector
        self.conn = conn
        self.records = sorted(records, key=lambda r: (_utc(r.event.recorded_at), r.partition, r.offset))  # type: ignore[arg-type]
        self.reporting = projector.settings.reporting_currency
        self.customers: dict[str, _Customer] = {}
        self.inserts: dict[str, list[dict[str, Any]]] = {t.name: [] for t, _, _ in ROW_KINDS}
        self.supersede: dict[str, list[dict[str, Any]]] = {t.name: [] for t, _, _ in ROW_KINDS}

    def run(self) -> None:
        fx = self.p.fx_table(self.conn)
        has_rates = any(isinstance(r.event, FxRatePublished) for r in self.records)
        touched = {c for c in (customer_of(r.event) for r in self.records) if c is not None}
        if has_rates:
            touched |= self._foreign_customers()
        self._load(sorted(touched))
        steps: dict[dt.datetime, list[EventBase]] = defaultdict(list)
        for record in self.records:
            steps[_utc(record.event.recorded_at)].append(record.event)  # type: ignore[arg-type]
        for recorded_at, events in steps.items():  # insertion order = recorded order
            self._step(recorded_at, events, fx)
        self._write()

    def _foreign_customers(self) -> set[str]:
        t = schema.subscription_mrr
        query = select(t.c.customer_id).distinct().where(
            t.c.superseded_at.is_(None), t.c.currency != self.reporting
        )
        return set(self.conn.execute(query).scalars())

    def _load(self, customer_ids: list[str]) -> None:
        for cid in customer_ids:
            self.customers[cid] = _Customer(cid, self.reporting)
        events = schema.events
        for chunk in _chunks(customer_ids):
            rows = self.conn.execute(
                select(events.c.customer_id, events.c.body, events.c.recorded_at)
                .where(events.c.customer_id.in_(chunk))
                .order_by(events.c.recorded_at, events.c.partition, events.c.offset)
            )
            for cid, body, recorded_at in rows:
                state = self.customers[cid]
                state.add(decode_stored(body.encode()))
                state.saw(recorded_at)
            for table, cls, _ in ROW_KINDS:
                rows = self.conn.execute(
                    select(table).where(table.c.customer_id.in_(chunk), table.c.superseded_at.is_(None))
                ).mappings()
                for row in rows:
                    state = self.customers[row["customer_id"]]
                    state.rows[table.name].append(_Row(row_to_struct(cls, row), id=row["id"]))
                    state.saw(row["recorded_at"])

    def _step(self, recorded_at: dt.datetime, events: list[EventBase], fx: FxTable) -> None:
        changed: set[str] = set()
        earliest_rate: dt.date | None = None
        for event in events:
            self._index(event)
            cid = customer_of(event)
            if cid is not None:
                self.customers[cid].add(event)
                changed.add(cid)
            elif isinstance(event, FxRatePublished):
                self.p.fx_added(event)
                if earliest_rate is None or event.effective_date < earliest_rate:
                    earliest_rate = event.effective_date
        if earliest_rate is not None:
            changed |= {cid for cid, c in self.customers.items() if c.affected_by_rate(earliest_rate)}
        for cid in sorted(changed):
            self._recompute(self.customers[cid], recorded_at, fx)

    def _recompute(self, state: _Customer, recorded_at: dt.datetime, fx: FxTable) -> None:
        at = max(recorded_at, state.last_recorded or recorded_at)
        state.saw(at)
        timeline = compute_timeline(state.customer_id, state.events, self.p.settings, fx)
        for table, _, attribute in ROW_KINDS:
            self._diff(table.name, state.rows[table.name], getattr(timeline, attribute), at)

    def _diff(self, name: str, current: list[_Row], new: Sequence[Any], at: dt.datetime) -> None:
        wanted = Counter(new)
        survivors: list[_Row] = []
        for row in current:
            if wanted[row.value] > 0:
                wanted[row.value] -= 1
                survivors.append(row)
            elif row.pending is not None:
                # Inserted earlier in this batch; if at the same instant it was never visible.
                row.pending["superseded_at"] = at
                row.pending["_drop"] = row.pending["recorded_at"] == at
            else:
                self.supersede[name].append({"row_id": row.id, "at": at})
        for value in new:  # keep the engine's order for inserted rows
            if wanted[value] > 0:
                wanted[value] -= 1
                pending = {**struct_to_row(value), "recorded_at": at, "superseded_at": None}
                self.inserts[name].append(pending)
                survivors.append(_Row(value, pending=pending))
        current[:] = survivors

    def _index(self, event: EventBase) -> None:
        """Queue the event-index row and the reference/attribute rows of one event."""
        self.inserts.setdefault("events", []).append({
            "event_id": event.event_id,
            "customer_id": customer_of(event),
            "type": event_type(event),
            "occurred_at": event.occurred_at,
            "recorded_at": event.recorded_at,
            "partition": None,
            "offset": None,
            "body": encode_event(event).decode(),
        })
        if isinstance(event, FxRatePublished):
            self.inserts.setdefault("fx_rates", []).append({
                "event_id": event.event_id, "base": event.base, "quote": event.quote,
                "effective_date": event.effective_date, "rate": str(event.rate),
                "recorded_at": event.recorded_at,
            })
        elif isinstance(event, AcquisitionCostRecorded):
            self.inserts.setdefault("acquisition_costs", []).append({
                "event_id": event.event_id, "period": event.period, "channel": event.channel,
                "amount": event.amount, "currency": event.currency,
                "occurred_at": event.occurred_at, "recorded_at": event.recorded_at,
            })
        elif isinstance(event, CustomerAttributesSet):
            self.inserts.setdefault("customer_attributes", []).extend(
                {"event_id": event.event_id, "key": key, "customer_id": event.customer_id,
                 "value": value, "occurred_at": event.occurred_at, "recorded_at": event.recorded_at}
                for key, value in event.attributes.items()
            )

    def _write(self) -> None:
        positions = {r.event.event_id: (r.partition, r.offset) for r in self.records}
        for row in self.inserts.get("events", []):
            row["partition"], row["offset"] = positions[row["event_id"]]
        for name, rows in self.inserts.items():
            rows = [row for row in rows if not row.pop("_drop", False)]
            if rows:
                self.conn.execute(insert(schema.metadata.tables[name]), rows)
        for name, rows in self.supersede.items():
            if rows:
                table = schema.metadata.tables[name]
                self.conn.execute(
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .values(superseded_at=bindparam("at")),
                    rows,
                )
