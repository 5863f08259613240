"""Simulation event rewriting: a customer's event history with the price change applied.

Part of the simulation (`projections.analytics.simulate` has the rules): repricing terms, the
synthetic `subscription.updated` at the start and the churn uplift's `subscription.canceled`.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterable, Sequence

import msgspec

from ledger.events import (
    SUBSCRIPTION_TERMS_EVENTS,
    EventBase,
    SubscriptionCanceled,
    SubscriptionUpdated,
    Terms,
)
from projections.analytics.simulate_scenario import PriceChange
from projections.engine import SubscriptionInterval, Timeline


def reprice(terms: Terms, plan: str, change: Decimal) -> Terms:
    """`terms` with every `plan` item's unit price × (1 + change), half-even on minor units."""
    if not any(i.price_id == plan for i in terms.items):
        return terms
    factor = 1 + change
    items = [msgspec.structs.replace(i, unit_amount=int((i.unit_amount * factor).to_integral_value(ROUND_HALF_EVEN)))
             if i.price_id == plan else i for i in terms.items]
    return terms if items == terms.items else msgspec.structs.replace(terms, items=items)


def in_force(intervals: Iterable[SubscriptionInterval], at: dt.datetime) -> dict[str, SubscriptionInterval]:
    """Per subscription, the interval in force just before `at`."""
    return {i.subscription_id: i for i in intervals
            if i.valid_from < at and (i.valid_to is None or i.valid_to >= at)}


def last_terms(events: Sequence[EventBase], before: dt.datetime) -> dict[str, Terms]:
    """Per subscription, its terms as the engine sees them just before `before`."""
    last: dict[str, Terms] = {}
    for event in sorted((e for e in events if isinstance(e, SUBSCRIPTION_TERMS_EVENTS)), key=lambda e: e.occurred_at):
        if event.occurred_at < before:
            last[event.subscription_id] = event.terms  # type: ignore[attr-defined]
    return last


def simulated_events(customer_id: str, events: Sequence[EventBase], original: Timeline, change: PriceChange,
                     cancels: Sequence[tuple[str, dt.datetime]] = ()) -> list[EventBase]:
    """The customer's history under `change` (recorded order; synthetic events first)."""
    start = change.start
    live = in_force(original.subscription_intervals, start)
    injected: list[EventBase] = []
    for sub_id, terms in last_terms(events, start).items():
        new = reprice(terms, change.plan, change.change)
        if new is terms:
            continue
        state = live.get(sub_id)
        status = terms.status if state is not None and state.status != "past_due" else "past_due"
        injected.append(SubscriptionUpdated(
            event_id=f"sim:price:{sub_id}", customer_id=customer_id, occurred_at=start, subscription_id=sub_id,
            terms=msgspec.structs.replace(new, status=status)))
    changed = [msgspec.structs.replace(e, terms=reprice(e.terms, change.plan, change.change))  # type: ignore[attr-defined]
               if isinstance(e, SUBSCRIPTION_TERMS_EVENTS) and e.occurred_at >= start else e for e in events]
    churned = [SubscriptionCanceled(event_id=f"sim:uplift:{sub_id}", customer_id=customer_id, occurred_at=at,
                                    subscription_id=sub_id) for sub_id, at in cancels]
    return injected + changed + churned
