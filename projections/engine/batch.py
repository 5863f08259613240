"""Whole-ledger use of the engine: split events by customer, feed reference data, compute all."""

from __future__ import annotations

from typing import Iterable

from ledger.events import EventBase, FxRatePublished, customer_of
from projections.engine.fx import FxTable
from projections.engine.model import Timeline
from projections.engine.settings import MrrSettings
from projections.engine.timeline import compute_timeline


def group_by_customer(events: Iterable[EventBase]) -> dict[str, list[EventBase]]:
    """Each customer's events in the order given (recorded order); reference events left out."""
    grouped: dict[str, list[EventBase]] = {}
    for event in events:
        customer = customer_of(event)
        if customer is not None:
            grouped.setdefault(customer, []).append(event)
    return grouped


def fx_from(events: Iterable[EventBase], fx: FxTable | None = None) -> FxTable:
    """An FxTable holding every `fx.rate_published` among `events` (later ones win per day)."""
    table = fx or FxTable()
    for event in events:
        if isinstance(event, FxRatePublished):
            table.add(event.base, event.quote, event.effective_date, event.rate)
    return table


def compute_all(events: list[EventBase], settings: MrrSettings) -> dict[str, Timeline]:
    """Every customer's timeline from scratch, with all FX rates among `events` known."""
    fx = fx_from(events)
    return {
        customer: compute_timeline(customer, own, settings, fx)
        for customer, own in group_by_customer(events).items()
    }
