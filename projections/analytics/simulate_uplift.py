"""Simulation churn uplift: which repriced subscriptions the extra churn cancels, and when.

Part of the simulation (`projections.analytics.simulate` has the rule: a share of the repriced
subscriptions still paying each month, fractions carried, in SHA-256 order of the subscription id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal

from ledger.events import EventBase
from projections.analytics.simulate_events import in_force, last_terms
from projections.analytics.simulate_scenario import PriceChange
from projections.engine import Timeline


def uplift_cancellations(originals: dict[str, Timeline], histories: dict[str, list[EventBase]],
                         change: PriceChange) -> dict[str, list[tuple[str, dt.datetime]]]:
    """Which repriced subscriptions the churn uplift cancels, and when (see the module doc)."""
    if not change.churn_uplift:
        return {}
    cohort = []
    for cid, timeline in originals.items():
        live = in_force(timeline.subscription_intervals, change.start)
        for sub_id, terms in last_terms(histories[cid], change.start).items():
            state = live.get(sub_id)
            if state is not None and state.native_mrr > 0 and any(i.price_id == change.plan for i in terms.items):
                cohort.append((hashlib.sha256(sub_id.encode()).hexdigest(), cid, sub_id))
    cohort.sort()
    out: dict[str, list[tuple[str, dt.datetime]]] = defaultdict(list)
    gone: set[str] = set()
    carry = Decimal(0)
    for at in change.uplift_instants():
        paying = [(cid, sub) for _, cid, sub in cohort if sub not in gone
                  and (s := in_force(originals[cid].subscription_intervals, at).get(sub)) is not None
                  and s.native_mrr > 0]
        due = change.churn_uplift * len(paying) + carry
        count = int(due.to_integral_value(ROUND_FLOOR))
        carry = due - count
        for cid, sub in paying[:count]:
            gone.add(sub)
            out[cid].append((sub, at))
    return out
