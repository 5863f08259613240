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


def first_copies(records: Sequence[LedgerRecord]) -> tuple[list[LedgerRecord], set[tuple[str, ...]]]:
    """The records to apply (the first copy of each event id in (partition, offset) order), in
    recorded order, and the `event_conflicts` rows (later copies with other content)."""
    first: dict[str, LedgerRecord] = {}
    conflicts: set[tuple[str, ...]] = set()
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        earlier = first.get(record.event.event_id)
        if earlier is None:
            first[record.event.event_id] = record
        elif content(earlier.event) != content(record.event):
            conflicts.add(_text((record.partition, record.offset, record.event.event_id)))
    applied = sorted(first.values(), key=lambda r: (r.event.recorded_at, r.partition, r.offset))  # type: ignore[arg-type, return-value]
    return applied, conflicts


def expected_rows(applied: Sequence[LedgerRecord], settings: MrrSettings) -> dict[str, Counter[Any]]:
    """Current rows per bitemporal table of the customers in `applied` (recorded order; FX
    rates among them convert), each customer's timeline computed from scratch."""
    fx = FxTable()
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for record in applied:
        event = record.event
        cid = customer_of(event)
        if cid is not None:
            by_customer[cid].append(event)
        elif isinstance(event, FxRatePublished):
            fx.add(event.base, event.quote, event.effective_date, event.rate)
    rows: dict[str, Counter[Any]] = {str(t.name): Counter() for t, _, _ in ROW_KINDS}
    for cid, events in by_customer.items():
        timeline = compute_timeline(cid, events, settings, fx)
        for table, _, attribute in ROW_KINDS:
            rows[str(table.name)].update(getattr(timeline, attribute))
    return rows


def expected_reference(applied: Sequence[LedgerRecord], conflicts: set[tuple[str, ...]],
                       ends: Mapping[int, int]) -> ProjectionState:
    """The event index, reference tables, conflicts and offsets `applied` should leave."""
    state = ProjectionState(reference={name: set() for name in REFERENCE}, offsets=dict(ends))
    state.reference["event_conflicts"] = set(conflicts)
    for record in applied:
        event = record.event
        state.reference["events"].add(_text((event.event_id, record.partition, record.offset)))
        if isinstance(event, FxRatePublished):
            state.reference["fx_rates"].add(_text((event.event_id, event.base, event.quote,
                                                   event.effective_date, event.rate)))
        elif isinstance(event, AcquisitionCostRecorded):
            state.reference["acquisition_costs"].add(_text((event.event_id, event.period, event.channel,
                                                            event.amount, event.currency)))
        elif isinstance(event, CustomerAttributesSet):
            for key, value in event.attributes.items():
                state.reference["customer_attributes"].add(_text((event.event_id, key, event.customer_id, value)))
    return state


def expected_state(records: Sequence[LedgerRecord], ends: Mapping[int, int],
                   settings: MrrSettings) -> ProjectionState:
    """Recompute the projections of `records` (the ledger up to `ends`) from scratch."""
    applied, conflicts = first_copies(records)
    state = expected_reference(applied, conflicts, ends)
    state.rows = expected_rows(applied, settings)
    return state


def read_rows(conn: Connection, low: str | None = None, high: str | None = None) -> dict[str, Counter[Any]]:
    """The current rows of every bitemporal table, of the customers with `low <= customer_id <
    high` in byte order (None: unbounded; bounds need PostgreSQL)."""
    rows: dict[str, Counter[Any]] = {}
    for table, cls, _ in ROW_KINDS:
        fields = cls.__struct_fields__
        query = select(*(table.c[name] for name in fields)).where(table.c.superseded_at.is_(None))
        if low is not None:
            query = query.where(table.c.customer_id.collate("C") >= low)
        if high is not None:
            query = query.where(table.c.customer_id.collate("C") < high)
        if "event_ids" in fields:  # stored as a JSON list, a tuple in the engine's rows
            at = fields.index("event_ids")
            values = (cls(*row[:at], tuple(row[at]), *row[at + 1:]) for row in conn.execute(query))
        else:
            values = (cls(*row) for row in conn.execute(query))
        rows[str(table.name)] = Counter(values)
    return rows


def read_reference(conn: Connection) -> ProjectionState:
    """The stored event index, reference tables, conflicts and offsets."""
    state = ProjectionState()
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


def read_state(conn: Connection) -> ProjectionState:
    """The current projections as stored (one consistent snapshot when `conn`'s transaction is
    REPEATABLE READ or SQLite's)."""
    state = read_reference(conn)
    state.rows = read_rows(conn)
    return state


class RowsCheck(msgspec.Struct):
    """The comparison of one slice of customers' rows, and its bridge totals (month, type)."""

    differences: list[Difference]
    expected_totals: dict[tuple[str, str], int]
    actual_totals: dict[tuple[str, str], int]


def check_rows(want: Mapping[str, Counter[Any]], got: Mapping[str, Counter[Any]]) -> RowsCheck:
    """Every row of `want` not in `got` (`missing`) and the other way round (`unexpected`)."""
    differences: list[Difference] = []
    for name, expected in want.items():
        actual = got.get(name, Counter())
        for kind, extra in (("missing", expected - actual), ("unexpected", actual - expected)):
            for value, count in sorted(extra.items(), key=lambda item: _sort_key(item[0])):
                differences.extend([Difference(str(name), kind, value.customer_id, _describe(value))] * count)
    return RowsCheck(differences, dict(_bridge_totals(want)), dict(_bridge_totals(got)))


def customer_ranges(customers: Iterable[str], count: int) -> list[tuple[str | None, str | None]]:
    """`count` (at most) contiguous ranges [low, high) of customer ids in byte order, balanced
    by number of customers, covering every possible id (the first and last are open)."""
    ordered = sorted(set(customers), key=lambda c: c.encode())
    count = max(1, min(count, len(ordered)))
    bounds = [ordered[len(ordered) * k // count] for k in range(1, count)]
    edges: list[str | None] = [None, *bounds, None]
    return list(zip(edges[:-1], edges[1:]))


def in_range(customer_id: str, low: str | None, high: str | None) -> bool:
    key = customer_id.encode()
    return (low is None or key >= low.encode()) and (high is None or key < high.encode())


def compare(expected: ProjectionState, actual: ProjectionState, *, checked_at: dt.datetime,
            customers: int) -> VerifyResult:
    """Every difference between `expected` and `actual`."""
    return combine(expected, actual, [check_rows(expected.rows, actual.rows)],
                   checked_at=checked_at, customers=customers)


def combine(expected: ProjectionState, actual: ProjectionState, checks: Sequence[RowsCheck], *,
            checked_at: dt.datetime, customers: int) -> VerifyResult:
    """The result of the reference/offset comparison of `expected` and `actual` together with
    the row checks of every slice of customers."""
    differences = [d for check in checks for d in check.differences]
    for name, want in expected.reference.items():
        got = actual.reference.get(name, set())
        for kind, extra in (("missing", want - got), ("unexpected", got - want)):
            differences.extend(Difference(str(name), kind, None, ", ".join(row)) for row in sorted(extra))
    for p in sorted(set(expected.offsets) | set(actual.offsets)):
        want_offset, got_offset = expected.offsets.get(p, 0), actual.offsets.get(p, 0)
        if want_offset != got_offset:
            differences.append(Difference("projection_offsets", "different", None,
                                          f"partition {p}: stored {got_offset}, ledger read to {want_offset}"))
    want_totals: Counter[tuple[str, str]] = Counter()
    got_totals: Counter[tuple[str, str]] = Counter()
    for check in checks:
        want_totals.update(check.expected_totals)
        got_totals.update(check.actual_totals)
    bridge = [BridgeDifference(month, kind, want_totals.get((month, kind), 0), got_totals.get((month, kind), 0))
              for month, kind in sorted(set(want_totals) | set(got_totals))
              if want_totals.get((month, kind), 0) != got_totals.get((month, kind), 0)]
    return VerifyResult(checked_at=checked_at, offsets=dict(expected.offsets),
                        events=len(expected.reference.get("events", ())), customers=customers,
                        differences=differences, bridge=bridge)


def _sort_key(value: Any) -> tuple[str, str]:
    return (value.customer_id, repr(value))


def _describe(value: Any) -> str:
    fields = msgspec.structs.asdict(value)
    fields.pop("customer_id", None)
    return ", ".join(f"{k}={v.isoformat() if isinstance(v, dt.datetime) else v}" for k, v in fields.items())


def _bridge_totals(rows: Mapping[str, Counter[Any]]) -> Counter[tuple[str, str]]:
    totals: Counter[tuple[str, str]] = Counter()
    for movement in rows.get("movements", Counter()).elements():
        totals[(f"{movement.effective_at.astimezone(dt.UTC):%Y-%m}", movement.type)] += movement.amount
    for impact in rows.get("fx_impacts", Counter()).elements():
        totals[(f"{impact.effective_at.astimezone(dt.UTC):%Y-%m}", "fx_impact")] += impact.amount
    return totals


def customers_of(records: Sequence[LedgerRecord]) -> int:
    """How many distinct customers `records` are about."""
    return len({customer_of(r.event) for r in records} - {None})
