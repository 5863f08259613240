"""Price-change simulation: the customers' own events, repriced, through the pure MRR engine.

Not a spreadsheet formula: every customer with an item priced `plan` has its history read from
the projection store's `events` table (as known at `known_at`), transformed, and run through
`compute_timeline` with the stored settings and FX rates; the result is compared with the stored
projection month by month and by segment (plan, currency, billing interval). Customers without
that price are unchanged by construction and are not recomputed. The exact rules (documented in
docs/analytics.md, section Price-change simulation, with a worked example, and returned as
`assumptions`):

- Price: every item whose `price_id` is `plan` gets `unit_amount × (1 + change)`, rounded half-even
  to the minor unit (per unit price, before quantity and discounts).
- From `start` on: terms events (started/updated/renewed) occurring at or after `start` carry the
  new price; every subscription whose terms were set before `start` gets a synthetic
  `subscription.updated` at `start` with its repriced terms (its status kept, or `past_due` when
  the subscription is past due or not live then, so the engine's past-due and auto-churn state is
  untouched). A change that rounds to no change injects nothing, so +0 % is the projection itself.
- Churn uplift U: each month from `start` (at `start`, then at the 1st of each following month),
  `floor(U × n + carry)` of the n repriced subscriptions still paying just before that instant are
  canceled at it (a synthetic `subscription.canceled`); the fraction left over carries to the next
  month. Subscriptions are taken in a fixed pseudo-random order: SHA-256 of the subscription id.
  "Repriced subscriptions" are those with MRR > 0 on that price just before `start`.
- Nothing else changes: no other churn, new business or FX than the events known. Months after
  the last event show the current book rolled forward (with known scheduled cancellations).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Iterable, Sequence

import msgspec
from sqlalchemy import Connection, select

from ledger.events import (
    SUBSCRIPTION_TERMS_EVENTS,
    EventBase,
    SubscriptionCanceled,
    SubscriptionUpdated,
    Terms,
)
from ledger.upcast import decode_stored
from projections import bulk, schema
from projections.engine import MOVEMENT_TYPES, MrrSettings, SubscriptionInterval, Timeline, compute_timeline
from projections.periods import Period, next_period, period_of
from projections.queries.bridge import bridge
from projections.queries.common import EPSILON, Scope, for_customer, in_force_before, report_envelope, visible
from projections.queries.money import format_major, format_ratio, ratio
from projections.store import load_fx_table, read_meta

SEGMENTS = ("plan", "currency", "billing_interval")
_TERMS_TYPES = tuple(cls.__struct_config__.tag for cls in SUBSCRIPTION_TERMS_EVENTS)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PriceChange:
    plan: str
    change: Decimal
    """+0.10 is +10 %; must be > -1."""
    start: dt.datetime
    months: int = 12
    churn_uplift: Decimal = Decimal(0)
    """Extra monthly churn of the repriced subscriptions, as a fraction (0.02 = 2 % a month)."""

    def __post_init__(self) -> None:
        if self.change <= -1:
            raise ValueError("--change must be above -100%")
        if not 0 <= self.churn_uplift <= 1:
            raise ValueError("--churn-uplift must be between 0% and 100%")
        if self.months < 1:
            raise ValueError("--months must be at least 1")

    @property
    def periods(self) -> list[Period]:
        first = period_of("month", self.start)
        periods = [first]
        while len(periods) < self.months:
            periods.append(next_period(periods[-1]))
        return periods

    def uplift_instants(self) -> list[dt.datetime]:
        return [self.start] + [p.start for p in self.periods[1:]]

    def assumptions(self) -> list[str]:
        factor = f"{1 + self.change:f}"
        when = _when(self.start)
        out = [
            f"every item with price_id {self.plan!r}: unit_amount x {factor}, rounded half-even to the minor unit",
            f"subscriptions with that price before {when} are repriced at {when}; terms events from then on "
            "carry the new price",
        ]
        if self.churn_uplift:
            out.append(f"churn uplift: each month from {when}, an extra {self.churn_uplift * 100:f} % of the "
                       "repriced subscriptions still paying cancel at the start of the month (fractions carried; "
                       "chosen in SHA-256 order of the subscription id)")
        out.append("nothing else changes: no other churn, new business or FX rates than the events known; "
                   "months after the last event show the current book rolled forward")
        return out


def _when(instant: dt.datetime) -> str:
    utc = instant.astimezone(dt.timezone.utc)
    return utc.date().isoformat() if utc.time() == dt.time() else utc.isoformat()


def parse_percent(text: str, name: str) -> Decimal:
    """`+10%`, `-5.5%`, `0%` -> Decimal fraction (0.10, -0.055, 0)."""
    value = text.strip()
    if not value.endswith("%"):
        raise ValueError(f"{name} must be a percentage like +10% (got {text!r})")
    try:
        return Decimal(value[:-1].strip()) / 100
    except ArithmeticError:
        raise ValueError(f"{name} must be a percentage like +10% (got {text!r})") from None


def reprice(terms: Terms, plan: str, change: Decimal) -> Terms:
    """`terms` with every `plan` item's unit price × (1 + change), half-even on minor units."""
    if not any(i.price_id == plan for i in terms.items):
        return terms
    factor = 1 + change
    items = [msgspec.structs.replace(i, unit_amount=int((i.unit_amount * factor).to_integral_value(ROUND_HALF_EVEN)))
             if i.price_id == plan else i for i in terms.items]
    return terms if items == terms.items else msgspec.structs.replace(terms, items=items)


def _in_force(intervals: Iterable[SubscriptionInterval], at: dt.datetime) -> dict[str, SubscriptionInterval]:
    """Per subscription, the interval in force just before `at`."""
    return {i.subscription_id: i for i in intervals
            if i.valid_from < at and (i.valid_to is None or i.valid_to >= at)}


def _last_terms(events: Sequence[EventBase], before: dt.datetime) -> dict[str, Terms]:
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
    live = _in_force(original.subscription_intervals, start)
    injected: list[EventBase] = []
    for sub_id, terms in _last_terms(events, start).items():
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


def uplift_cancellations(originals: dict[str, Timeline], histories: dict[str, list[EventBase]],
                         change: PriceChange) -> dict[str, list[tuple[str, dt.datetime]]]:
    """Which repriced subscriptions the churn uplift cancels, and when (see the module doc)."""
    if not change.churn_uplift:
        return {}
    cohort = []
    for cid, timeline in originals.items():
        live = _in_force(timeline.subscription_intervals, change.start)
        for sub_id, terms in _last_terms(histories[cid], change.start).items():
            state = live.get(sub_id)
            if state is not None and state.native_mrr > 0 and any(i.price_id == change.plan for i in terms.items):
                cohort.append((hashlib.sha256(sub_id.encode()).hexdigest(), cid, sub_id))
    cohort.sort()
    out: dict[str, list[tuple[str, dt.datetime]]] = defaultdict(list)
    gone: set[str] = set()
    carry = Decimal(0)
    for at in change.uplift_instants():
        paying = [(cid, sub) for _, cid, sub in cohort if sub not in gone
                  and (s := _in_force(originals[cid].subscription_intervals, at).get(sub)) is not None
                  and s.native_mrr > 0]
        due = change.churn_uplift * len(paying) + carry
        count = int(due.to_integral_value(ROUND_FLOOR))
        carry = due - count
        for cid, sub in paying[:count]:
            gone.add(sub)
            out[cid].append((sub, at))
    return out


# --- reading the store ---------------------------------------------------------------------------
def stored_settings(conn: Connection, currency: str) -> MrrSettings:
    stored = read_meta(conn, "settings")
    return MrrSettings(reporting_currency=currency) if stored is None else msgspec.json.decode(stored, type=MrrSettings)


def customers_with_price(conn: Connection, scope: Scope, plan: str) -> list[str]:
    """Customers with a terms event (recorded by `known_at`) that has an item priced `plan`."""
    t = schema.events
    needle = f'"price_id":{msgspec.json.encode(plan).decode()}'  # stored bodies are canonical JSON
    query = select(t.c.customer_id, t.c.body).where(
        t.c.type.in_(_TERMS_TYPES), t.c.recorded_at <= scope.known_at, t.c.body.contains(needle, autoescape=True),
        *for_customer(t, scope))
    found = set()
    for cid, body in conn.execute(query):
        if cid not in found and any(i.price_id == plan for i in decode_stored(body.encode()).terms.items):  # type: ignore[attr-defined]
            found.add(cid)
    return sorted(found)


def load_histories(conn: Connection, customer_ids: Sequence[str], known_at: dt.datetime) -> dict[str, list[EventBase]]:
    """Each customer's events recorded by `known_at`, in recorded order (as the projector read them)."""
    t = schema.events
    out: dict[str, list[EventBase]] = {cid: [] for cid in customer_ids}
    query = select(t.c.customer_id, t.c.body).where(t.c.recorded_at <= known_at).order_by(
        t.c.recorded_at, t.c.partition, t.c.offset)
    for result in bulk.select_in(conn, t.c.customer_id, list(customer_ids), query.where):
        for cid, body in result:
            out[cid].append(decode_stored(body.encode()))
    return out


def _stored(conn: Connection, table: Any, customer_ids: Sequence[str], scope: Scope, columns: Sequence[str]) -> list[Any]:
    query = select(*(table.c[c] for c in columns)).where(visible(table, scope.known_at))
    return [row for result in bulk.select_in(conn, table.c.customer_id, list(customer_ids), query.where)
            for row in result]


# --- comparing -----------------------------------------------------------------------------------
@dataclass
class MonthImpact:
    period: Period
    baseline: int
    simulated: int
    movements: dict[str, int]
    """Simulated minus baseline movements of each type in the month."""
    cancellations: int = 0

    @property
    def difference(self) -> int:
        return self.simulated - self.baseline


@dataclass
class Simulation:
    change: PriceChange
    months: list[MonthImpact]
    segments: dict[str, dict[str, list[tuple[int, int]]]]
    """dimension -> segment -> per month (baseline, simulated) closing MRR."""
    customers: int
    repriced_subscriptions: int
    recomputation_matches: bool
    """Whether the engine, fed the unchanged events, gives the stored MRR of those customers."""
    warnings: list[str] = field(default_factory=list)


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
    stored_total = _levels(_stored(conn, schema.customer_mrr, ids, report, ("valid_from", "valid_to", "mrr")), ends)
    sim_intervals = [i for t in sims.values() for i in t.customer_intervals]
    sim_total = _levels(sim_intervals, ends)
    orig_total = _levels([i for t in originals.values() for i in t.customer_intervals], ends)
    stored_moves = _movement_sums(_stored(conn, schema.movements, ids, report, ("effective_at", "type", "amount")), periods)
    sim_moves = _movement_sums([m for t in sims.values() for m in t.movements], periods)
    months = []
    for i, period in enumerate(periods):
        months.append(MonthImpact(
            period, baseline[i], baseline[i] - stored_total[i] + sim_total[i],
            {k: sim_moves[i][k] - stored_moves[i][k] for k in MOVEMENT_TYPES},
            sum(1 for subs in cancels.values() for _, at in subs if period.contains(at))))

    sub_cols = ("valid_from", "valid_to", "mrr", *SEGMENTS)
    everyone = _stored_all_subscriptions(conn, report, sub_cols)
    base_seg = _by_segment(everyone, ends)
    stored_seg = _by_segment(_stored(conn, schema.subscription_mrr, ids, report, sub_cols), ends)
    sim_seg = _by_segment([i for t in sims.values() for i in t.subscription_intervals], ends)
    segments: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for d in SEGMENTS:
        names = sorted(set(base_seg[d]) | set(sim_seg[d]))
        zero = [0] * len(ends)
        segments[d] = {name: [(b, b - s + n) for b, s, n in zip(base_seg[d].get(name, zero), stored_seg[d].get(name, zero),
                                                                  sim_seg[d].get(name, zero))]
                       for name in names}
    repriced = sum(1 for cid in ids for sub, terms in _last_terms(histories[cid], change.start).items()
                   if reprice(terms, change.plan, change.change) is not terms
                   and sub in _in_force(originals[cid].subscription_intervals, change.start))
    result = Simulation(change, months, segments, len(ids), repriced, orig_total == stored_total)
    if not ids:
        result.warnings.append(f"no subscription has an item with price_id {change.plan!r}: nothing changes")
    if not result.recomputation_matches:
        result.warnings.append("the stored projection differs from a recomputation of the same events; "
                               "the difference shown mixes that in (rebuild the projections)")
    return result


def _stored_all_subscriptions(conn: Connection, scope: Scope, columns: Sequence[str]) -> list[Any]:
    t = schema.subscription_mrr
    return list(conn.execute(select(*(t.c[c] for c in columns)).where(visible(t, scope.known_at), *for_customer(t, scope))))


# --- JSON ----------------------------------------------------------------------------------------
def simulation_json(result: Simulation, currency: str, scope: Scope) -> dict[str, Any]:
    c = result.change
    rows = [{"period": m.period.label, "baseline_mrr": format_major(m.baseline, currency),
             "simulated_mrr": format_major(m.simulated, currency), "difference": format_major(m.difference, currency),
             "difference_pct": format_ratio(ratio(m.difference, m.baseline)),
             "movements_difference": {k: format_major(v, currency) for k, v in m.movements.items()},
             "uplift_cancellations": m.cancellations} for m in result.months]
    labels = [m.period.label for m in result.months]
    segments = [{"dimension": d, "segment": name, "rows": [
                    {"period": label, "baseline_mrr": format_major(b, currency),
                     "simulated_mrr": format_major(s, currency), "difference": format_major(s - b, currency),
                     "difference_pct": format_ratio(ratio(s - b, b))}
                    for label, (b, s) in zip(labels, values)]}
                for d, segs in result.segments.items() for name, values in segs.items()]
    return report_envelope(
        currency, "month", scope, rows, customer_id=scope.customer_id,
        scenario={"plan": c.plan, "change": format_ratio(c.change), "churn_uplift": format_ratio(c.churn_uplift),
                  "from": c.start.isoformat(), "months": c.months},
        assumptions=c.assumptions(), customers_recomputed=result.customers,
        repriced_subscriptions=result.repriced_subscriptions,
        recomputation_matches_projection=result.recomputation_matches, warnings=result.warnings,
        segments=segments)
