"""Unit economics per period: the KPIs of `projections.queries.kpis` (ARPA, churn, LTV, CAC,
LTV:CAC, CAC payback, MRR growth) plus what they lack (MRR_SPEC.md §6, docs/analytics.md):

- `customer_retention_rate` = customers with MRR > 0 both just before the period's start and at
  its end / customers with MRR > 0 just before its start (a customer who churns and comes back
  inside the period is retained; a customer new in the period is not in either count).
- a trailing window for LTV: `customer_churn_rate_window` = Σ churned customers / Σ customers at
  start over the last `window` periods (this one included), and `ltv` = ARPA / that rate, so
  `window` = 1 gives the KPI report's LTV; `ltv_cac` uses that LTV.
- CAC by channel: each channel's acquisition cost / the new customers whose `channel_attribute`
  (default `channel`, latest value effective by `as_of`; `(none)` without one) is that channel,
  with their ARPA and CAC payback months.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence

from sqlalchemy import Connection, select

from projections import schema
from projections.analytics.segment_pieces import attribute_history, value_at
from projections.periods import Period, period_of
from projections.queries.bridge import bridge
from projections.queries.common import EPSILON, Scope, customer_intervals, for_customer, report_envelope, visible
from projections.queries.kpis import Kpis, acquisition_costs_by_channel, kpi_row_json, kpis
from projections.queries.money import format_major, format_ratio, ratio


@dataclass(frozen=True)
class ChannelRow:
    period: str
    channel: str
    acquisition_cost: int | None
    unconverted_acquisition_costs: int
    new_customers: int
    new_business: int

    @property
    def cac(self) -> Decimal | None:
        return ratio(self.acquisition_cost, self.new_customers)

    @property
    def arpa_new_customers(self) -> Decimal | None:
        return ratio(self.new_business, self.new_customers)

    @property
    def cac_payback_months(self) -> Decimal | None:
        return ratio(self.cac, self.arpa_new_customers)


@dataclass
class UnitRow:
    kpis: Kpis
    retained_customers: int
    customers_opening: int
    churned_window: int
    customers_opening_window: int

    @property
    def customer_retention_rate(self) -> Decimal | None:
        return ratio(self.retained_customers, self.customers_opening)

    @property
    def customer_churn_rate_window(self) -> Decimal | None:
        return ratio(self.churned_window, self.customers_opening_window)

    @property
    def ltv(self) -> Decimal | None:
        return ratio(self.kpis.arpa, self.customer_churn_rate_window)

    @property
    def ltv_cac(self) -> Decimal | None:
        return ratio(self.ltv, self.kpis.cac)


@dataclass
class UnitEconomics:
    window: int
    channel_attribute: str
    rows: list[UnitRow] = field(default_factory=list)
    channels: list[ChannelRow] = field(default_factory=list)


def _earlier(periods: Sequence[Period], extra: int) -> list[Period]:
    before: list[Period] = []
    for _ in range(extra):
        before.insert(0, period_of(periods[0].kind, (before[0] if before else periods[0]).start - EPSILON))
    return before


def retained(conn: Connection, periods: Sequence[Period], scope: Scope) -> list[int]:
    """Per period: customers with MRR > 0 just before its start and just before its reported end."""
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for interval in customer_intervals(conn, scope, periods[0].start, scope.end_of(periods[-1])):
        by_customer[interval.customer_id].append(interval)
    counts = [0] * len(periods)
    for intervals in by_customer.values():
        intervals.sort(key=lambda i: i.valid_from)
        starts = [i.valid_from for i in intervals]

        def in_force(b: Any) -> bool:
            i = bisect.bisect_left(starts, b) - 1  # last interval starting before b
            return i >= 0 and (intervals[i].valid_to is None or intervals[i].valid_to >= b)

        for n, p in enumerate(periods):
            counts[n] += in_force(p.start) and in_force(scope.end_of(p))
    return counts


def new_customers_by_channel(conn: Connection, periods: Sequence[Period], scope: Scope,
                             attribute: str) -> list[dict[str, tuple[int, int]]]:
    """Per period: channel -> (new customers, their new-business MRR)."""
    t = schema.movements
    query = select(t.c.customer_id, t.c.effective_at, t.c.amount).where(
        visible(t, scope.known_at), *for_customer(t, scope), t.c.type == "new_business",
        t.c.effective_at >= periods[0].start, t.c.effective_at < scope.end_of(periods[-1]))
    history = attribute_history(conn, scope, attribute)
    out: list[dict[str, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in periods]
    starts = [p.start for p in periods]
    for customer_id, effective_at, amount in conn.execute(query):
        n = bisect.bisect_right(starts, effective_at) - 1
        total = out[n][value_at(history.get(customer_id), scope.as_of)]
        total[0] += 1
        total[1] += amount
    return [{k: (v[0], v[1]) for k, v in row.items()} for row in out]


def unit_economics(conn: Connection, periods: Sequence[Period], scope: Scope, currency: str, window: int = 1,
                   channel_attribute: str = "channel") -> UnitEconomics:
    """Unit economics of `periods` (ascending, contiguous); `window` >= 1 periods for LTV."""
    if window < 1:
        raise ValueError("the LTV window is at least 1 period")
    result = UnitEconomics(window, channel_attribute)
    if not periods:
        return result
    extended = bridge(conn, [*_earlier(periods, window - 1), *periods], scope)
    rows = extended[window - 1:]
    kept = retained(conn, periods, scope)
    for n, (k, row) in enumerate(zip(kpis(conn, rows, scope, currency), rows)):
        span = extended[n:n + window]
        result.rows.append(UnitRow(k, kept[n], row.customers_opening, sum(r.churned_customers for r in span),
                                   sum(r.customers_opening for r in span)))
    costs = acquisition_costs_by_channel(conn, rows, scope, currency)
    if costs is not None:
        news = new_customers_by_channel(conn, periods, scope, channel_attribute)
        for p, cost, new in zip(periods, costs, news):
            for channel in sorted(set(cost) | set(new)):
                amount, missing = cost.get(channel, (0, 0))
                count, mrr = new.get(channel, (0, 0))
                result.channels.append(ChannelRow(p.label, channel, amount, missing, count, mrr))
    return result


ROW_KEYS = ("period", "mrr", "customers", "new_customers", "churned_customers", "arpa", "arpa_new_customers",
            "customer_churn_rate", "mrr_growth_rate", "acquisition_cost", "unconverted_acquisition_costs", "cac",
            "cac_payback_months")


def unit_row_json(r: UnitRow, currency: str) -> dict[str, Any]:
    base = kpi_row_json(r.kpis, currency)
    out = {key: base[key] for key in ROW_KEYS}
    out.update({"customers_opening": r.customers_opening, "retained_customers": r.retained_customers,
                "customer_retention_rate": format_ratio(r.customer_retention_rate),
                "customer_churn_rate_window": format_ratio(r.customer_churn_rate_window),
                "ltv": format_major(r.ltv, currency), "ltv_cac": format_ratio(r.ltv_cac)})
    return out


def channel_row_json(c: ChannelRow, currency: str) -> dict[str, Any]:
    return {"period": c.period, "channel": c.channel, "acquisition_cost": format_major(c.acquisition_cost, currency),
            "unconverted_acquisition_costs": c.unconverted_acquisition_costs, "new_customers": c.new_customers,
            "new_business": format_major(c.new_business, currency), "cac": format_major(c.cac, currency),
            "arpa_new_customers": format_major(c.arpa_new_customers, currency),
            "cac_payback_months": format_ratio(c.cac_payback_months)}


def unit_economics_json(u: UnitEconomics, currency: str, kind: str, scope: Scope) -> dict[str, Any]:
    """Envelope + `ltv_window`, `channel_attribute`, `rows` (per period) and `channels` (per
    period and channel; empty when acquisition spend is untracked or periods are days/weeks)."""
    return report_envelope(currency, kind, scope, [unit_row_json(r, currency) for r in u.rows],
                           customer_id=scope.customer_id, ltv_window=u.window, channel_attribute=u.channel_attribute,
                           channels=[channel_row_json(c, currency) for c in u.channels])
