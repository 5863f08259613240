"""Verification: the projections against the ledger, recomputed independently.

`expected_state(records, ends, settings)` recomputes everything from the ledger with the pure
engine from scratch (`compute_timeline` per customer over its events in recorded order, the FX
table of every rate): no projector, no incremental engine, no bitemporal diff, none of the code
whose output is being checked. `read_state(conn)` reads the same things from a projection store:
the current (not superseded) rows of every bitemporal table, the event index, the reference
tables, the conflicts and the offsets. `compare` lists every difference, per customer where
there is one, and per month of the MRR bridge (movement and FX-impact totals by type), so a
report says which customers and which months are wrong, and why.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import msgspec
from sqlalchemy import Connection, select

from ledger.events import (
    AcquisitionCostRecorded,
    CustomerAttributesSet,
    FxRatePublished,
    customer_of,
)
from ledger.ports import LedgerRecord
from projections import schema
from projections.customer_state import ROW_KINDS
from projections.dedupe import content
from projections.engine import FxTable, MrrSettings, compute_timeline

REFERENCE = ("events", "fx_rates", "acquisition_costs", "customer_attributes", "event_conflicts")


@dataclass
class ProjectionState:
    """What verification compares: per bitemporal table a Counter of current rows (engine
    Structs), per reference table a set of row tuples, and the offsets."""

    rows: dict[str, Counter[Any]] = field(default_factory=dict)
    reference: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)


class Difference(msgspec.Struct, frozen=True):
    """One difference: `kind` is `missing` (expected, not in the projections) or `unexpected`."""

    table: str
    kind: str
    customer_id: str | None
    row: str


class BridgeDifference(msgspec.Struct, frozen=True):
    """A month whose bridge total of one movement type differs (minor units, reporting currency)."""

    month: str
    type: str
    expected: int
    actual: int


class VerifyResult(msgspec.Struct):
    """The outcome of one verification."""

    checked_at: dt.datetime
    offsets: dict[int, int]
    events: int
    customers: int
    differences: list[Difference]
    bridge: list[BridgeDifference]

    @property
    def ok(self) -> bool:
        return not self.differences and not self.bridge

    @property
    def difference_count(self) -> int:
        return len(self.differences) + len(self.bridge)


def _text(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in values)


def expected_state(records: Sequence[LedgerRecord], ends: Mapping[int, int],
                   settings: MrrSettings) -> ProjectionState:
    """Recompute the projections of `records` (the ledger up to `ends`) from scratch."""
    state = ProjectionState(rows={t.name: Counter() for t, _, _ in ROW_KINDS},
                            reference={name: set() for name in REFERENCE}, offsets=dict(ends))
    first: dict[str, LedgerRecord] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        earlier = first.get(record.event.event_id)
        if earlier is None:
            first[record.event.event_id] = record
        elif content(earlier.event) != content(record.event):
            state.reference["event_conflicts"].add(_text((record.partition, record.offset, record.event.event_id)))
    applied = sorted(first.values(), key=lambda r: (r.event.recorded_at, r.partition, r.offset))  # type: ignore[arg-type, return-value]
    fx = FxTable()
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for record in applied:
        event = record.event
        state.reference["events"].add(_text((event.event_id, record.partition, record.offset)))
        cid = customer_of(event)
        if cid is not None:
            by_customer[cid].append(event)
        if isinstance(event, FxRatePublished):
            fx.add(event.base, event.quote, event.effective_date, event.rate)
            state.reference["fx_rates"].add(_text((event.event_id, event.base, event.quote,
                                                   event.effective_date, event.rate)))
        elif isinstance(event, AcquisitionCostRecorded):
            state.reference["acquisition_costs"].add(_text((event.event_id, event.period, event.channel,
                                                            event.amount, event.currency)))
        elif isinstance(event, CustomerAttributesSet):
            for key, value in event.attributes.items():
                state.reference["customer_attributes"].add(_text((event.event_id, key, event.customer_id, value)))
    for cid, events in by_customer.items():
        timeline = compute_timeline(cid, events, settings, fx)
        for table, _, attribute in ROW_KINDS:
            state.rows[table.name].update(getattr(timeline, attribute))
    return state


def read_state(conn: Connection) -> ProjectionState:
    """The current projections as stored (one consistent snapshot when `conn`'s transaction is
    REPEATABLE READ or SQLite's)."""
    state = ProjectionState()
    for table, cls, _ in ROW_KINDS:
        fields = cls.__struct_fields__
        query = select(*(table.c[name] for name in fields)).where(table.c.superseded_at.is_(None))
        if "event_ids" in fields:  # stored as a JSON list, a tuple in the engine's rows
            at = fields.index("event_ids")
            rows = (cls(*row[:at], tuple(row[at]), *row[at + 1:]) for row in conn.execute(query))
        else:
            rows = (cls(*row) for row in conn.execute(query))
        state.rows[table.name] = Counter(rows)
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


def compare(expected: ProjectionState, actual: ProjectionState, *, checked_at: dt.datetime,
            customers: int) -> VerifyResult:
    """Every difference between `expected` and `actual`."""
    differences: list[Difference] = []
    for name, want in expected.rows.items():
        got = actual.rows.get(name, Counter())
        for kind, extra in (("missing", want - got), ("unexpected", got - want)):
            for value, count in sorted(extra.items(), key=lambda item: _sort_key(item[0])):
                differences.extend([Difference(str(name), kind, value.customer_id, _describe(value))] * count)
    for name, want in expected.reference.items():
        got = actual.reference.get(name, set())
        for kind, extra in (("missing", want - got), ("unexpected", got - want)):
            differences.extend(Difference(str(name), kind, None, ", ".join(row)) for row in sorted(extra))
    for p in sorted(set(expected.offsets) | set(actual.offsets)):
        want_offset, got_offset = expected.offsets.get(p, 0), actual.offsets.get(p, 0)
        if want_offset != got_offset:
            differences.append(Difference("projection_offsets", "different", None,
                                          f"partition {p}: stored {got_offset}, ledger read to {want_offset}"))
    bridge = _bridge_differences(expected, actual)
    return VerifyResult(checked_at=checked_at, offsets=dict(expected.offsets),
                        events=len(expected.reference.get("events", ())), customers=customers,
                        differences=differences, bridge=bridge)


def _sort_key(value: Any) -> tuple[str, str]:
    return (value.customer_id, repr(value))


def _describe(value: Any) -> str:
    fields = msgspec.structs.asdict(value)
    fields.pop("customer_id", None)
    return ", ".join(f"{k}={v.isoformat() if isinstance(v, dt.datetime) else v}" for k, v in fields.items())


def _bridge_totals(state: ProjectionState) -> Counter[tuple[str, str]]:
    totals: Counter[tuple[str, str]] = Counter()
    for movement in state.rows.get("movements", Counter()).elements():
        totals[(f"{movement.effective_at.astimezone(dt.UTC):%Y-%m}", movement.type)] += movement.amount
    for impact in state.rows.get("fx_impacts", Counter()).elements():
        totals[(f"{impact.effective_at.astimezone(dt.UTC):%Y-%m}", "fx_impact")] += impact.amount
    return totals


def _bridge_differences(expected: ProjectionState, actual: ProjectionState) -> list[BridgeDifference]:
    want, got = _bridge_totals(expected), _bridge_totals(actual)
    return [BridgeDifference(month, kind, want.get((month, kind), 0), got.get((month, kind), 0))
            for month, kind in sorted(set(want) | set(got))
            if want.get((month, kind), 0) != got.get((month, kind), 0)]


def customers_of(records: Sequence[LedgerRecord]) -> int:
    """How many distinct customers `records` are about."""
    return len({customer_of(r.event) for r in records} - {None})
