"""The work of one projector transaction: recompute touched customers, diff, write in bulk.

`Batch(conn, records, settings, fx).run()` indexes the batch's new events and reference rows,
replays each touched customer's history with the pure engine in ascending `recorded_at` steps,
and writes the bitemporal difference against the customer's current rows: rows that disappear get
`superseded_at = R`, new rows `recorded_at = R`, unchanged rows are untouched (R = the step's
recorded instant, never earlier than what the customer already carries). All SQL is batched
through `projections.bulk`: per table one read of the touched customers' rows and one bulk insert
and one bulk supersede (set-based `unnest` / `= ANY` on PostgreSQL; chunked `IN (…)` reads and
executemany elsewhere).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Callable

from sqlalchemy import Connection, func, select

from ledger.events import (
    AcquisitionCostRecorded,
    CustomerAttributesSet,
    EventBase,
    FxRatePublished,
    customer_of,
    encode_event,
    event_type,
)
from ledger.ports import LedgerRecord
from ledger.upcast import decode_stored
from projections import bulk, schema, totals
from projections.customer_cache import CustomerCache
from projections.customer_state import ROW_KINDS, CurrentRow, CustomerState, row_to_struct, struct_to_row
from projections.engine import FxTable, MrrSettings
from projections.row_diff import diff_parts

RESTATED_TABLES = (schema.movements.name, schema.fx_impacts.name)
"""A customer is *restated* when a batch supersedes or inserts a row of these tables effective at
or before the customer's last recorded instant before the batch: history already projected changes
(a late or backdated event, a late FX rate). Closing an open MRR interval or adding a movement
after the known history is not."""


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc)


class Batch:
    """New records of one transaction (already deduplicated) and what they change."""

    def __init__(
        self,
        conn: Connection,
        records: list[LedgerRecord],
        settings: MrrSettings,
        fx: FxTable,
        cache: CustomerCache | None = None,
    ) -> None:
        self.conn = conn
        self.cache = cache
        self.records = sorted(records, key=lambda r: (_utc(r.event.recorded_at), r.partition, r.offset))  # type: ignore[arg-type]
        self.settings = settings
        self.fx = fx
        self.rates_added = 0
        self.reporting = settings.reporting_currency
        self.customers: dict[str, CustomerState] = {}
        self.inserts: dict[str, list[dict[str, Any]]] = {t.name: [] for t, _, _ in ROW_KINDS}
        self.supersede: dict[str, list[dict[str, Any]]] = {t.name: [] for t, _, _ in ROW_KINDS}
        self.restated: set[str] = set()
        """Customers whose projected history this batch changes (`RESTATED_TABLES`)."""
        self.inserted: dict[str, int] = {}
        """Rows inserted per table name (after `run`)."""
        self.from_cache: set[str] = set()
        """Customers taken from the cache (so of partitions this projector owns)."""

    def run(self) -> None:
        """Compute and write everything; adds the batch's rates to `fx` (see `rates_added`)."""
        self.compute()
        self._write()

    def compute(self, progress: Callable[[int], None] | None = None) -> None:
        """Load the touched customers and recompute them step by step into `inserts` and
        `supersede` (nothing is written; `run` does both). `progress` is told how many records
        each recorded-time step applied."""
        has_rates = any(isinstance(r.event, FxRatePublished) for r in self.records)
        touched = {c for c in (customer_of(r.event) for r in self.records) if c is not None}
        if has_rates:
            earliest = min(r.event.effective_date for r in self.records if isinstance(r.event, FxRatePublished))
            touched |= self._customers_looking_up_rates_since(earliest)
        self._load(sorted(touched))
        steps: dict[dt.datetime, list[EventBase]] = defaultdict(list)
        for record in self.records:
            steps[_utc(record.event.recorded_at)].append(record.event)  # type: ignore[arg-type]
        for recorded_at, events in steps.items():  # insertion order = recorded order
            self._step(recorded_at, events)
            if progress is not None:
                progress(len(events))

    def _customers_looking_up_rates_since(self, day: dt.date) -> set[str]:
        """Stored customers a rate effective on `day` may restate (see `fx_lookup_day`)."""
        t = schema.customer_fx_lookups
        return set(self.conn.execute(select(t.c.customer_id).where(t.c.last_lookup_day >= day)).scalars())

    def _load(self, all_ids: list[str]) -> None:
        customer_ids = []
        for cid in all_ids:
            cached = self.cache.take(cid) if self.cache is not None else None
            if cached is None:
                customer_ids.append(cid)
                cached = CustomerState(cid, self.reporting)
            else:
                self.from_cache.add(cid)
            self.customers[cid] = cached
        # One customer's rows never span two reads, so per customer the order is each query's
        # ORDER BY whether the ids go in one `= ANY` array or in chunks.
        events = schema.events
        history = select(events.c.customer_id, events.c.body, events.c.recorded_at).order_by(
            events.c.recorded_at, events.c.partition, events.c.offset
        )
        for result in bulk.select_in(self.conn, events.c.customer_id, customer_ids, history.where):
            for cid, body, recorded_at in result:
                state = self.customers[cid]
                state.add(decode_stored(body.encode()))
                state.saw(recorded_at)
        for table, cls, _ in ROW_KINDS:
            current = select(table).where(table.c.superseded_at.is_(None)).order_by(table.c.id)
            for result in bulk.select_in(self.conn, table.c.customer_id, customer_ids, current.where):
                for row in result.mappings():
                    state = self.customers[row["customer_id"]]
                    state.open[table.name].append(CurrentRow(row_to_struct(cls, row), id=row["id"]))
                    state.saw(row["recorded_at"])
            # A step that only superseded rows left its instant nowhere else.
            last = select(table.c.customer_id, func.max(table.c.superseded_at)).group_by(table.c.customer_id)
            for result in bulk.select_in(self.conn, table.c.customer_id, customer_ids, last.where):
                for cid, superseded_at in result:
                    if superseded_at is not None:
                        self.customers[cid].saw(superseded_at)
        for state in self.customers.values():
            state.stored_fx_lookup = state.last_fx_lookup
            state.stored_recorded = state.last_recorded

    def _step(self, recorded_at: dt.datetime, events: list[EventBase]) -> None:
        changed: set[str] = set()
        earliest_rate: dt.date | None = None
        for event in events:
            self._index(event)
            cid = customer_of(event)
            if cid is not None:
                self.customers[cid].add(event)
                changed.add(cid)
            elif isinstance(event, FxRatePublished):
                self.fx.add(event.base, event.quote, event.effective_date, event.rate)
                self.rates_added += 1
                if earliest_rate is None or event.effective_date < earliest_rate:
                    earliest_rate = event.effective_date
        own = set(changed)
        if earliest_rate is not None:
            changed |= {cid for cid, c in self.customers.items() if c.affected_by_rate(earliest_rate)}
        for cid in sorted(changed):
            self._recompute(self.customers[cid], recorded_at, cid in own)

    def _recompute(self, state: CustomerState, recorded_at: dt.datetime, has_events: bool) -> None:
        """Diff the customer's timeline into rows recorded at `at`. The customer has `seen`
        `at` if it has events of this step or rows changed; one only recomputed for a rate that
        changed nothing keeps its last recorded instant, as a fresh load of it would."""
        at = max(recorded_at, state.last_recorded or recorded_at)
        if has_events:
            state.saw(at)
        parts = state.catch_up(self.settings, self.fx)
        known = state.stored_recorded
        for table, _, attribute in ROW_KINDS:
            name = table.name
            changed = diff_parts(state.settled[name], state.open[name], parts.rows[attribute],
                                 parts.kept[attribute], parts.tail[attribute], at,
                                 self.supersede[name], self.inserts[name])
            if changed:
                state.saw(at)
            if known is not None and table.name in RESTATED_TABLES and any(
                    _utc(value.effective_at) <= _utc(known) for value in changed):
                self.restated.add(state.customer_id)

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

    def committed_customers(self) -> list[tuple[str, CustomerState]]:
        """After `run`, the states of the customers whose events this batch applied or that came
        from the cache (restated for an FX rate): what a fresh load would give once the
        transaction commits (for `CustomerCache`). Customers loaded only to be restated may
        belong to another worker's partitions, so they are not returned."""
        own = ({customer_of(r.event) for r in self.records} - {None}) | self.from_cache
        return [(cid, state) for cid, state in self.customers.items() if cid in own]

    def _write(self) -> None:
        positions = {r.event.event_id: (r.partition, r.offset) for r in self.records}
        for row in self.inserts.get("events", []):
            row["partition"], row["offset"] = positions[row["event_id"]]
        bitemporal = {t.name for t, _, _ in ROW_KINDS}
        totals_delta = totals.TotalsDelta()
        for name, rows in self.inserts.items():
            rows = [row for row in rows if not row.pop("_drop", False)]
            table = schema.metadata.tables[name]
            if name in bitemporal:  # ids known up front, so the committed state can be cached
                for row, row_id in zip(rows, bulk.allocate_ids(self.conn, table, len(rows))):
                    row["id"] = row_id
            bulk.insert_rows(self.conn, table, rows)
            self.inserted[name] = len(rows)
            if name in bitemporal:
                for row in rows:
                    totals_delta.inserted(name, row)
        for state in self.customers.values():
            for rows in (*state.settled.values(), *state.open.values()):
                for row in rows:
                    if row.pending is not None:
                        row.id, row.pending = row.pending["id"], None
        for name, rows in self.supersede.items():
            bulk.supersede_rows(self.conn, schema.metadata.tables[name], rows)
            for row in rows:
                totals_delta.superseded(name, struct_to_row(row["value"]), row["at"])
        self._write_fx_lookups()
        totals.add(self.conn, totals_delta)  # last: see projections.totals on lock order

    def _write_fx_lookups(self) -> None:
        rows = [
            {"customer_id": c.customer_id, "last_lookup_day": c.last_fx_lookup}
            for c in self.customers.values()
            if c.last_fx_lookup is not None and c.last_fx_lookup != c.stored_fx_lookup
        ]
        bulk.upsert_rows(self.conn, schema.customer_fx_lookups, rows, key="customer_id")
