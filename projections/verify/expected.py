"""The projections a ledger should produce, recomputed from scratch with the pure engine
(`compute_timeline` per customer): none of the projector's code is used."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ledger.events import AcquisitionCostRecorded, CustomerAttributesSet, FxRatePublished, customer_of
from ledger.ports import LedgerRecord
from projections.customer_state import ROW_KINDS
from projections.dedupe import content
from projections.engine import FxTable, MrrSettings, compute_timeline
from projections.verify.model import REFERENCE, ProjectionState, _text

def first_of_each(records: Iterable[LedgerRecord]) -> dict[str, LedgerRecord]:
    """The first copy of each event id in (partition, offset) order, found in one pass (no sort)."""
    first: dict[str, LedgerRecord] = {}
    for record in records:
        earlier = first.get(record.event.event_id)
        if earlier is None or (record.partition, record.offset) < (earlier.partition, earlier.offset):
            first[record.event.event_id] = record
    return first


def conflicting_copies(records: Iterable[LedgerRecord], first: Mapping[str, LedgerRecord]) -> Iterator[LedgerRecord]:
    """The records that are not `first` (`first_of_each`) of their event id and differ from it
    in content: what `event_conflicts` holds."""
    for record in records:
        earlier = first[record.event.event_id]
        if earlier is not record and content(earlier.event) != content(record.event):
            yield record


def first_copies(records: Sequence[LedgerRecord]) -> tuple[list[LedgerRecord], set[tuple[str, ...]]]:
    """The records to apply (the first copy of each event id in (partition, offset) order), in
    recorded order, and the `event_conflicts` rows (later copies with other content)."""
    first = first_of_each(records)
    conflicts = {_text((r.partition, r.offset, r.event.event_id)) for r in conflicting_copies(records, first)}
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
