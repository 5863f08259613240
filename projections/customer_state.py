"""One customer's state while the projector works on it: its events in recorded order, its
current (not superseded) projection rows, and the engine that keeps its timeline.

`projections.batch.Batch` loads or takes these from `CustomerCache`, feeds them events, and
diffs their timelines into rows (`projections.row_diff`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

import msgspec

from ledger.events import SUBSCRIPTION_TERMS_EVENTS, EventBase
from projections import schema
from projections.engine import (
    CustomerEngine,
    CustomerInterval,
    FxImpact,
    FxTable,
    Movement,
    MrrSettings,
    SubscriptionInterval,
    TimelineParts,
)

# (table, engine row type, Timeline attribute); column names equal the Struct field names.
ROW_KINDS = (
    (schema.customer_mrr, CustomerInterval, "customer_intervals"),
    (schema.subscription_mrr, SubscriptionInterval, "subscription_intervals"),
    (schema.movements, Movement, "movements"),
    (schema.fx_impacts, FxImpact, "fx_impacts"),
)

_TABLE_NAMES = tuple(str(table.name) for table, _, _ in ROW_KINDS)


class CurrentRow(msgspec.Struct, gc=False):
    """A current row of one customer: stored (`id`) or inserted earlier in this batch (`pending`).

    Not tracked by Python's cyclic garbage collector (`gc=False`: it can never be part of a
    reference cycle); the projector's cache holds hundreds of thousands of these, and scanning
    them made full collections pause the worker for a second or more."""

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


@dataclass(slots=True)
class CustomerState:
    """One customer's known events and current rows while a batch is processed."""

    customer_id: str
    reporting_currency: str
    events: list[EventBase] = field(default_factory=list)
    settled: dict[str, list[CurrentRow]] = field(default_factory=lambda: {name: [] for name in _TABLE_NAMES})
    """Per table, the current rows of the engine's output rows so far, in the same order
    (`TimelineParts.rows[attribute][:len(settled)]`): a resumed run leaves them alone."""
    open: dict[str, list[CurrentRow]] = field(default_factory=lambda: {name: [] for name in _TABLE_NAMES})
    """Per table, every other current row: the tail of the last timeline, and all rows loaded
    from the database (in id order) until the engine's run is matched to them."""
    last_recorded: dt.datetime | None = None
    last_fx_lookup: dt.date | None = None
    stored_fx_lookup: dt.date | None = None
    """`last_fx_lookup` as of the stored history (before this batch)."""
    stored_recorded: dt.datetime | None = None
    """`last_recorded` as of the stored history (before this batch); None: a new customer."""
    engine: CustomerEngine | None = None

    def catch_up(self, settings: MrrSettings, fx: FxTable) -> TimelineParts:
        """The timeline over all `events`, resuming the engine's run where that is exact."""
        engine = self.engine
        if engine is None or engine.fx is not fx or engine.settings != settings:
            engine = self.engine = CustomerEngine(self.customer_id, settings, fx, history=self.events)
        return engine.catch_up()

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


def row_to_struct(cls: type, row: Mapping[str, Any]) -> Any:
    """A stored row (mapping) as the engine's row Struct `cls`."""
    values = {name: row[name] for name in cls.__struct_fields__}
    if "event_ids" in values:
        values["event_ids"] = tuple(values["event_ids"])
    return cls(**values)


def struct_to_row(value: Any) -> dict[str, Any]:
    """An engine row Struct as a row dict for its table."""
    row = msgspec.structs.asdict(value)
    if "event_ids" in row:
        row["event_ids"] = list(row["event_ids"])
    return row
