"""Simulation comparison: the stored projection against the repriced recomputation, month by month
and by segment (plan, currency, billing interval).

Part of the simulation (`projections.analytics.simulate` has the rules); the result it returns
and its JSON form are in `projections.analytics.simulate_report`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection

from projections import schema
from projections.analytics.simulate_events import in_force, last_terms, reprice, simulated_events
from projections.analytics.simulate_report import MonthImpact, Simulation
from projections.analytics.simulate_scenario import PriceChange
from projections.analytics.simulate_store import (
    all_subscription_rows,
    customers_with_price,
    load_histories,
    stored_rows,
    stored_settings,
)
from projections.analytics.simulate_uplift import uplift_cancellations
from projections.engine import MOVEMENT_TYPES, compute_timeline
from projections.periods import Period
from projections.queries.bridge import bridge
from projections.queries.common import EPSILON, Scope, in_force_before
from projections.store import load_fx_table

SEGMENTS = ("plan", "currency", "billing_interval")


def _levels(intervals: Iterable[Any], ends: Sequence[dt.datetime]) -> list[int]:
    return [total for total, _ in in_force_before(intervals, ends)]


def _by_segment(intervals: Iterable[Any], ends: Sequence[dt.datetime]) -> dict[str, dict[str, list[int]]]:
    groups: dict[str, dict[str, list[Any]]] = {d: defaultdict(list) for d in SEGMENTS}
    for i in intervals:
        for d in SEGMENTS:
            groups[d][getattr(i, d)].append(i)
    return {d: {seg: _levels(rows, ends) for seg, rows in segs.items()} for d, segs in groups.items()}


def _movement_sums(movements: Iterable[Any], periods: Sequence[Period]) -> list[dict[str, int]]:
    sums = [dict.fromkeys(MOVEMENT_TYPES, 0) for _ in periods]
    for m in movements:
        for i, p in enumerate(periods):
            if p.contains(m.effective_at):
                sums[i][m.type] += m.amount
    return sums


def simulate(conn: Connection, scope: Scope, change: PriceChange, currency: str) -> Simulation:
    """Baseline: the stored projection as known at `scope.known_at`; simulated: the same with the
    affected customers replaced by their recomputed, repriced timelines."""
    periods = change.periods
    ends = [p.end for p in periods]
    report = Scope(as_of=periods[-1].end - EPSILON, known_at=scope.known_at, customer_id=scope.customer_id)
    settings, fx = stored_settings(conn, currency), load_fx_table(conn, scope.known_at)
    ids = customers_with_price(conn, scope, change.plan)
    histories = load_histories(conn, ids, scope.known_at)
    originals = {cid: compute_timeline(cid, histories[cid], settings, fx) for cid in ids}
    cancels = uplift_cancellations(originals, histories, change)
    sims = {cid: compute_timeline(cid, simulated_events(cid, histories[cid], originals[cid], change, cancels.get(cid, ())),
                                  settings, fx) for cid in ids}

    baseline = [r.closing_mrr for r in bridge(conn, periods, report)]
    stored_total = _levels(stored_rows(conn, schema.customer_mrr, ids, report, ("valid_from", "valid_to", "mrr")), ends)
    sim_intervals = [i for t in sims.values() for i in t.customer_intervals]
    sim_total = _levels(sim_intervals, ends)
    orig_total = _levels([i for t in originals.values() for i in t.customer_intervals], ends)
    stored_moves = _movement_sums(stored_rows(conn, schema.movements, ids, report, ("effective_at", "type", "amount")), periods)
    sim_moves = _movement_sums([m for t in sims.values() for m in t.movements], periods)
    months = []
    for i, period in enumerate(periods):
        months.append(MonthImpact(
            period, baseline[i], baseline[i] - stored_total[i] + sim_total[i],
            {k: sim_moves[i][k] - stored_moves[i][k] for k in MOVEMENT_TYPES},
            sum(1 for subs in cancels.values() for _, at in subs if period.contains(at))))

    sub_cols = ("valid_from", "valid_to", "mrr", *SEGMENTS)
    everyone = all_subscription_rows(conn, report, sub_cols)
    base_seg = _by_segment(everyone, ends)
    stored_seg = _by_segment(stored_rows(conn, schema.subscription_mrr, ids, report, sub_cols), ends)
    sim_seg = _by_segment([i for t in sims.values() for i in t.subscription_intervals], ends)
    segments: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for d in SEGMENTS:
        names = sorted(set(base_seg[d]) | set(sim_seg[d]))
        zero = [0] * len(ends)
        segments[d] = {name: [(b, b - s + n) for b, s, n in zip(base_seg[d].get(name, zero), stored_seg[d].get(name, zero),
                                                                  sim_seg[d].get(name, zero))]
                       for name in names}
    repriced = sum(1 for cid in ids for sub, terms in last_terms(histories[cid], change.start).items()
                   if reprice(terms, change.plan, change.change) is not terms
                   and sub in in_force(originals[cid].subscription_intervals, change.start))
    result = Simulation(change, months, segments, len(ids), repriced, orig_total == stored_total)
    if not ids:
        result.warnings.append(f"no subscription has an item with price_id {change.plan!r}: nothing changes")
    if not result.recomputation_matches:
        result.warnings.append("the stored projection differs from a recomputation of the same events; "
                               "the difference shown mixes that in (rebuild the projections)")
    return result
