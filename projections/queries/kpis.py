"""KPIs per period (MRR_SPEC.md §6), derived from the bridge and the acquisition costs.

Ratios are exact Decimals, null when their denominator is 0. Money KPIs that are averages (ARPA,
LTV, CAC) are exact Decimals of minor units, rounded only when rendered. Acquisition costs are
recorded per month, so CAC and what depends on it are null for day and week periods (a month's
spend cannot be attributed to a week without an arbitrary allocation). A cost in another
currency is converted at the rate in effect on the first day of its month, as known at
`known_at`; a cost with no rate makes the period's acquisition cost null (and is counted). With
no acquisition cost recorded at all, spend is untracked and CAC is null rather than 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from sqlalchemy import Connection, select

from projections import schema
from projections.engine.fx import convert_minor
from projections.store import load_fx_table
from projections.queries.bridge import BridgeRow
from projections.queries.common import report_envelope, Scope
from projections.queries.money import format_major, format_ratio, ratio

MONTHLY_COST_KINDS = ("month", "quarter", "year")


@dataclass(frozen=True)
class Kpis:
    period: str
    opening_mrr: int
    mrr: int
    arr: int
    customers: int
    new_customers: int
    churned_customers: int
    reactivated_customers: int
    arpa: Decimal | None
    customer_churn_rate: Decimal | None
    gross_mrr_churn_rate: Decimal | None
    net_mrr_churn_rate: Decimal | None
    nrr: Decimal | None
    grr: Decimal | None
    quick_ratio: Decimal | None
    mrr_growth_rate: Decimal | None
    ltv: Decimal | None
    acquisition_cost: int | None
    unconverted_acquisition_costs: int
    cac: Decimal | None
    ltv_cac: Decimal | None
    arpa_new_customers: Decimal | None
    cac_payback_months: Decimal | None
    unconverted_subscriptions: int


def kpis_of(row: BridgeRow, acquisition_cost: int | None, unconverted_costs: int = 0) -> Kpis:
    """Every KPI of one bridge row."""
    o = row.opening_mrr
    arpa = ratio(row.closing_mrr, row.customers_closing)
    churn_rate = ratio(row.churned_customers, row.customers_opening)
    ltv = ratio(arpa, churn_rate)
    cac = ratio(acquisition_cost, row.new_customers)
    arpa_new = ratio(row.new_business, row.new_customers)
    return Kpis(
        period=row.period.label,
        opening_mrr=o,
        mrr=row.closing_mrr,
        arr=12 * row.closing_mrr,
        customers=row.customers_closing,
        new_customers=row.new_customers,
        churned_customers=row.churned_customers,
        reactivated_customers=row.reactivated_customers,
        arpa=arpa,
        customer_churn_rate=churn_rate,
        gross_mrr_churn_rate=ratio(-(row.churn + row.contraction), o),
        net_mrr_churn_rate=ratio(-(row.churn + row.contraction + row.expansion + row.reactivation), o),
        nrr=ratio(o + row.expansion + row.contraction + row.churn, o),
        grr=ratio(o + row.contraction + row.churn, o),
        quick_ratio=ratio(row.new_business + row.expansion, -(row.contraction + row.churn)),
        mrr_growth_rate=ratio(row.closing_mrr - o, o),
        ltv=ltv,
        acquisition_cost=acquisition_cost,
        unconverted_acquisition_costs=unconverted_costs,
        cac=cac,
        ltv_cac=ratio(ltv, cac),
        arpa_new_customers=arpa_new,
        cac_payback_months=ratio(cac, arpa_new),
        unconverted_subscriptions=row.unconverted_subscriptions,
    )


def _cost_entries(
    conn: Connection, rows: Sequence[BridgeRow], scope: Scope, currency: str
) -> list[tuple[int, str, int | None]] | None:
    """Each acquisition cost known at `known_at` whose month falls in a bridge row: (row index,
    channel, amount in minor units of `currency` or None without an FX rate). None when costs are
    not attributable (day/week periods) or no cost is recorded at all (spend untracked)."""
    if not rows or rows[0].period.kind not in MONTHLY_COST_KINDS:
        return None
    t = schema.acquisition_costs
    query = select(t.c.period, t.c.amount, t.c.currency, t.c.channel).where(t.c.recorded_at <= scope.known_at)
    fx = load_fx_table(conn, scope.known_at)
    costs = conn.execute(query).all()
    if not costs:  # acquisition spend is not tracked at all: unknown, not zero
        return None
    entries: list[tuple[int, str, int | None]] = []
    for month, amount, cost_currency, channel in costs:
        first_day = dt.date(int(month[:4]), int(month[5:7]), 1)
        instant = dt.datetime(first_day.year, first_day.month, 1, tzinfo=dt.timezone.utc)
        index = next((i for i, r in enumerate(rows) if r.period.contains(instant)), None)
        if index is None:
            continue
        rate = fx.rate(cost_currency, currency, first_day)
        entries.append((index, channel, None if rate is None else convert_minor(amount, rate, cost_currency, currency)))
    return entries


def acquisition_costs(
    conn: Connection, rows: Sequence[BridgeRow], scope: Scope, currency: str
) -> list[tuple[int | None, int]]:
    """Per bridge row: (cost in minor units of `currency` or None, unconverted cost count)."""
    entries = _cost_entries(conn, rows, scope, currency)
    if entries is None:
        return [(None, 0) for _ in rows]
    totals: list[list[int]] = [[0, 0] for _ in rows]
    for index, _channel, converted in entries:
        if converted is None:
            totals[index][1] += 1
        else:
            totals[index][0] += converted
    return [(None if missing else cost, missing) for cost, missing in totals]


def acquisition_costs_by_channel(
    conn: Connection, rows: Sequence[BridgeRow], scope: Scope, currency: str
) -> list[dict[str, tuple[int | None, int]]] | None:
    """Per bridge row: channel -> (cost or None, unconverted count), for the channels with a cost
    recorded in that row's months; None when untracked or not attributable (as `acquisition_costs`)."""
    entries = _cost_entries(conn, rows, scope, currency)
    if entries is None:
        return None
    totals: list[dict[str, list[int]]] = [{} for _ in rows]
    for index, channel, converted in entries:
        total = totals[index].setdefault(channel, [0, 0])
        if converted is None:
            total[1] += 1
        else:
            total[0] += converted
    return [{channel: (None if missing else cost, missing) for channel, (cost, missing) in sorted(row.items())}
            for row in totals]


def kpis(conn: Connection, rows: Sequence[BridgeRow], scope: Scope, currency: str) -> list[Kpis]:
    """The KPIs of each bridge row."""
    costs = acquisition_costs(conn, rows, scope, currency)
    return [kpis_of(row, cost, missing) for row, (cost, missing) in zip(rows, costs)]


MONEY = ("opening_mrr", "mrr", "arr", "arpa", "ltv", "acquisition_cost", "cac", "arpa_new_customers")
RATIOS = ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "nrr", "grr",
          "quick_ratio", "mrr_growth_rate", "ltv_cac", "cac_payback_months")
COUNTS = ("customers", "new_customers", "churned_customers", "reactivated_customers",
          "unconverted_subscriptions", "unconverted_acquisition_costs")


def kpi_row_json(k: Kpis, currency: str) -> dict[str, Any]:
    out: dict[str, Any] = {"period": k.period}
    out.update({name: format_major(getattr(k, name), currency) for name in MONEY})
    out.update({name: getattr(k, name) for name in COUNTS})
    out["active_customers"] = k.customers
    out.update({name: format_ratio(getattr(k, name)) for name in RATIOS})
    return out


def kpis_json(rows: Sequence[Kpis], currency: str, kind: str, scope: Scope) -> dict[str, Any]:
    """The `--json` shape of MRR_SPEC.md §7: money in major units, ratios with 4 decimals."""
    return report_envelope(currency, kind, scope, [kpi_row_json(k, currency) for k in rows])
