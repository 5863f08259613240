"""Report queries on hand-built projection rows: balances, bitemporal visibility, snapshot, KPIs."""

from __future__ import annotations


import pytest

from projections.periods import parse_label, period_of, periods_between
from projections.queries import (
    BridgeImbalanceError,
    Scope,
    bridge,
    bridge_json,
    customer,
    customer_json,
    kpis,
    kpis_json,
    movements,
    movements_json,
    resolve_periods,
    snapshot,
    snapshot_json,
)
from tests.projections.conftest import at, interval, movement, put

NOW = at("2030-01-01")


def months(first: str, last: str):
    return periods_between(parse_label(first), parse_label(last))


def scope(as_of: str | None = None, known_at: str | None = None, customer: str | None = None) -> Scope:
    return Scope(at(as_of) if as_of else NOW, at(known_at) if known_at else NOW, customer)


async def two_customers(store):
    """c1: 100 from Jan 10, 150 from Feb 15, churns Mar 20. c2: 50 from Feb 1 (at the boundary)."""
    await put(store, "customer_mrr",
              interval("c1", "2024-01-10", "2024-02-15", 10000),
              interval("c1", "2024-02-15", "2024-03-20", 15000),
              interval("c2", "2024-02-01", None, 5000))
    await put(store, "movements",
              movement("c1", "2024-01-10", "new_business", 0, 10000, event_ids=["e1"]),
              movement("c1", "2024-02-15", "expansion", 10000, 15000, event_ids=["e2"]),
              movement("c1", "2024-03-20", "churn", 15000, 0, event_ids=["e3"]),
              movement("c2", "2024-02-01", "new_business", 0, 5000, event_ids=["e4"]))


async def test_bridge_balances_and_counts(store):
    await two_customers(store)
    s = scope()
    rows = await store.read(bridge, months("2024-01", "2024-04"), s)
    got = [(r.period.label, r.opening_mrr, r.new_business, r.expansion, r.churn, r.closing_mrr,
            r.customers_opening, r.customers_closing, r.new_customers, r.churned_customers) for r in rows]
    assert got == [
        ("2024-01", 0, 10000, 0, 0, 10000, 0, 1, 1, 0),
        ("2024-02", 10000, 5000, 5000, 0, 20000, 1, 2, 1, 0),  # c2 starts exactly at Feb 1: February
        ("2024-03", 20000, 0, 0, -15000, 5000, 2, 1, 0, 1),
        ("2024-04", 5000, 0, 0, 0, 5000, 1, 1, 0, 0),
    ]
    for r in rows:
        assert r.opening_mrr + r.movements_total + r.fx_impact == r.closing_mrr
    payload = bridge_json(rows, "USD", "month", s)
    assert payload["currency"] == "USD" and payload["period"] == "month"
    assert payload["rows"][1] == {
        "period": "2024-02", "opening_mrr": "100.00", "new_business": "50.00", "expansion": "50.00",
        "contraction": "0.00", "churn": "0.00", "reactivation": "0.00", "fx_impact": "0.00",
        "closing_mrr": "200.00", "customers_opening": 1, "customers_closing": 2, "new_customers": 1,
        "churned_customers": 0, "reactivated_customers": 0, "unconverted_subscriptions": 0,
    }


async def test_bridge_fx_impact_is_part_of_the_balance(store):
    await put(store, "customer_mrr", interval("c1", "2024-01-01", "2024-02-01", 1100),
              interval("c1", "2024-02-01", None, 1080))
    await put(store, "movements", movement("c1", "2024-01-01", "new_business", 0, 1100))
    await put(store, "fx_impacts", {"customer_id": "c1", "effective_at": at("2024-02-01"), "amount": -20})
    [jan, feb] = await store.read(bridge, months("2024-01", "2024-02"), scope())
    assert (feb.opening_mrr, feb.fx_impact, feb.movements_total, feb.closing_mrr) == (1100, -20, 0, 1080)


async def test_an_unbalanced_bridge_is_an_error(store):
    await put(store, "customer_mrr", interval("c1", "2024-01-01", None, 100))  # no movement
    with pytest.raises(BridgeImbalanceError, match="2024-01 does not balance"):
        await store.read(bridge, months("2024-01", "2024-01"), scope())


async def test_as_of_cuts_the_current_period(store):
    await two_customers(store)
    s = scope(as_of="2024-02-15")  # the expansion at exactly as_of is in
    periods = await store.read(resolve_periods, "month", s, "2024-01", "2024-12")
    assert [p.label for p in periods] == ["2024-01", "2024-02"]
    rows = await store.read(bridge, periods, s)
    assert (rows[-1].expansion, rows[-1].closing_mrr) == (5000, 20000)
    rows = await store.read(bridge, periods, scope(as_of="2024-02-14T23:59:59"))
    assert (rows[-1].expansion, rows[-1].closing_mrr) == (0, 15000)


async def test_resolve_periods_defaults_from_first_data(store):
    await two_customers(store)
    periods = await store.read(resolve_periods, "quarter", scope(as_of="2024-08-01"), None, None)
    assert [p.label for p in periods] == ["2024-Q1", "2024-Q2", "2024-Q3"]
    assert await store.read(resolve_periods, "month", scope(as_of="2023-06-01"), None, None) == []


async def test_customer_filter(store):
    await two_customers(store)
    rows = await store.read(bridge, months("2024-02", "2024-03"), scope(customer="c2"))
    assert [(r.opening_mrr, r.new_business, r.closing_mrr) for r in rows] == [(0, 5000, 5000), (5000, 0, 5000)]


async def late_restatement(store):
    """March first reported (recorded Mar 1) at 100; on Apr 5 a backdated downgrade to 60 on Mar 10."""
    first, late = at("2024-03-01"), at("2024-04-05")
    await put(store, "customer_mrr",
              interval("c1", "2024-03-01", None, 10000, recorded_at=first, superseded_at=late),
              interval("c1", "2024-03-01", "2024-03-10", 10000, recorded_at=late),
              interval("c1", "2024-03-10", None, 6000, recorded_at=late))
    await put(store, "movements",
              movement("c1", "2024-03-01", "new_business", 0, 10000, recorded_at=first),
              movement("c1", "2024-03-10", "contraction", 10000, 6000, recorded_at=late))


async def test_known_at_shows_superseded_rows_as_they_were(store):
    await late_restatement(store)
    march = months("2024-03", "2024-03")
    [before] = await store.read(bridge, march, scope(known_at="2024-04-03"))
    [after] = await store.read(bridge, march, scope(known_at="2024-04-05"))
    assert (before.closing_mrr, before.contraction) == (10000, 0)
    assert (after.closing_mrr, after.contraction) == (6000, -4000)
    [nothing] = await store.read(bridge, march, scope(known_at="2024-02-01"))
    assert nothing.closing_mrr == 0
    rows = await store.read(movements, scope(known_at="2024-04-03"))
    assert [r.type for r in rows] == ["new_business"]


async def test_snapshot_categories_and_gap_rows(store):
    # c1: new in Jan, expands Feb, contracts Mar, churns May (row), gap Jun, reactivates Jul.
    await put(store, "customer_mrr",
              interval("c1", "2024-01-05", "2024-02-10", 1000),
              interval("c1", "2024-02-10", "2024-03-10", 2000),
              interval("c1", "2024-03-10", "2024-05-01", 1500),
              interval("c1", "2024-07-03", None, 1500),
              interval("c2", "2024-03-03", "2024-03-20", 999))  # never at a month end: no rows
    all_months = months("2024-01", "2024-08")
    rows = await store.read(snapshot, all_months, scope(as_of="2024-08-15"))
    got = [(r.period.label, r.customer_id, r.mrr, r.previous_mrr, r.category) for r in rows]
    assert got == [
        ("2024-01", "c1", 1000, 0, "new_business"),
        ("2024-02", "c1", 2000, 1000, "expansion"),
        ("2024-03", "c1", 1500, 2000, "contraction"),
        ("2024-04", "c1", 1500, 1500, None),
        ("2024-05", "c1", 0, 1500, "churn"),
        ("2024-06", "c1", 0, 0, None),
        ("2024-07", "c1", 1500, 0, "reactivation"),
        ("2024-08", "c1", 1500, 1500, None),
    ]
    # Output restricted to some months still categorises against the full history.
    some = await store.read(snapshot, all_months, scope(as_of="2024-08-15"), months("2024-07", "2024-07"))
    assert [(r.period.label, r.category) for r in some] == [("2024-07", "reactivation")]
    payload = snapshot_json(some, "USD", "month", scope())
    assert payload["rows"] == [{"period": "2024-07", "customer_id": "c1", "mrr": "15.00",
                                "previous_mrr": "0.00", "change": "15.00", "category": "reactivation"}]


async def test_snapshot_churn_row_is_the_month_after_the_last(store):
    # An interval ending exactly at a month start still counts at the previous month end.
    await put(store, "customer_mrr", interval("c1", "2024-01-01", "2024-03-01", 700))
    rows = await store.read(snapshot, months("2024-01", "2024-06"), scope(as_of="2024-06-30"))
    assert [(r.period.label, r.category) for r in rows] == [
        ("2024-01", "new_business"), ("2024-02", None), ("2024-03", "churn")]


async def test_kpis_with_zero_denominators_are_null(store):
    await put(store, "customer_mrr", interval("c1", "2024-01-10", None, 10000))
    await put(store, "movements", movement("c1", "2024-01-10", "new_business", 0, 10000))
    rows = await store.read(bridge, months("2024-01", "2024-02"), scope())
    jan, feb = await store.read(kpis, rows, scope(), "USD")
    # January: opening 0 and 1 customer at start 0 -> every opening-based ratio is null.
    for name in ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "nrr", "grr",
                 "mrr_growth_rate", "ltv", "quick_ratio"):
        assert getattr(jan, name) is None, name
    assert (jan.mrr, jan.arr, jan.customers, jan.new_customers) == (10000, 120000, 1, 1)
    # February: no churn -> churn rates 0, LTV null (ARPA / 0), quick ratio null (no losses).
    assert feb.customer_churn_rate == 0 and feb.ltv is None and feb.quick_ratio is None
    assert feb.nrr == 1 and feb.grr == 1
    payload = kpis_json([jan, feb], "USD", "month", scope())
    assert payload["rows"][0]["nrr"] is None and payload["rows"][0]["arpa"] == "100.00"
    assert payload["rows"][1]["nrr"] == "1.0000" and payload["rows"][1]["arr"] == "1200.00"
    assert payload["rows"][0]["cac"] is None  # no acquisition cost recorded


async def test_kpi_formulas(store):
    # Opening: a=100, b=200, c=300 (3 customers, 600). In Q: a churns, b contracts to 150,
    # c expands to 400, d new at 50, e reactivated at 20 (had MRR in 2023).
    await put(store, "customer_mrr",
              interval("a", "2024-01-01", "2024-02-10", 10000),
              interval("b", "2024-01-01", "2024-02-11", 20000), interval("b", "2024-02-11", None, 15000),
              interval("c", "2024-01-01", "2024-02-12", 30000), interval("c", "2024-02-12", None, 40000),
              interval("d", "2024-02-13", None, 5000),
              interval("e", "2023-06-01", "2023-07-01", 2000), interval("e", "2024-02-14", None, 2000))
    await put(store, "movements",
              movement("a", "2024-02-10", "churn", 10000, 0),
              movement("b", "2024-02-11", "contraction", 20000, 15000),
              movement("c", "2024-02-12", "expansion", 30000, 40000),
              movement("d", "2024-02-13", "new_business", 0, 5000),
              movement("e", "2024-02-14", "reactivation", 0, 2000))
    await put(store, "acquisition_costs", {"event_id": "a1", "period": "2024-02", "channel": "ads",
                                           "amount": 30000, "currency": "USD", "occurred_at": at("2024-02-28"),
                                           "recorded_at": at("2024-03-01")})
    s = scope()
    [row] = await store.read(bridge, months("2024-02", "2024-02"), s)
    [k] = await store.read(kpis, [row], s, "USD")
    assert (row.opening_mrr, row.closing_mrr, row.customers_opening, row.customers_closing) == (60000, 62000, 3, 4)
    j = kpis_json([k], "USD", "month", s)["rows"][0]
    assert j["customer_churn_rate"] == "0.3333"           # 1 / 3
    assert j["gross_mrr_churn_rate"] == "0.2500"          # 15000 / 60000
    assert j["net_mrr_churn_rate"] == "0.0500"            # (15000 - 10000 - 2000) / 60000
    assert j["nrr"] == "0.9167"                           # (60000 + 10000 - 5000 - 10000) / 60000
    assert j["grr"] == "0.7500"
    assert j["quick_ratio"] == "1.0000"                   # (5000 + 10000) / 15000
    assert j["mrr_growth_rate"] == "0.0333"
    assert j["arpa"] == "155.00"                          # 62000 / 4
    assert j["ltv"] == "465.00"                           # 155 / (1/3)
    assert j["acquisition_cost"] == "300.00" and j["cac"] == "300.00"
    assert j["arpa_new_customers"] == "50.00" and j["cac_payback_months"] == "6.0000"
    assert j["ltv_cac"] == "1.5500"
    # A cost recorded after known_at is not known yet: with no cost known at all, CAC is untracked.
    [early] = await store.read(kpis, [row], scope(known_at="2024-02-29"), "USD")
    assert early.acquisition_cost is None and early.cac is None
    # Spend tracked (January), none in February: February's cost is 0, not unknown.
    await put(store, "acquisition_costs", {"event_id": "a0", "period": "2024-01", "channel": "ads",
                                           "amount": 100, "currency": "USD", "occurred_at": at("2024-01-31"),
                                           "recorded_at": at("2024-02-01")})
    [early] = await store.read(kpis, [row], scope(known_at="2024-02-29"), "USD")
    assert early.acquisition_cost == 0 and early.cac == 0


async def test_cac_is_null_for_weeks(store):
    await put(store, "movements", movement("d", "2024-02-13", "new_business", 0, 5000))
    await put(store, "customer_mrr", interval("d", "2024-02-13", None, 5000))
    periods = [period_of("week", at("2024-02-13"))]
    [row] = await store.read(bridge, periods, scope())
    [k] = await store.read(kpis, [row], scope(), "USD")
    assert k.new_customers == 1 and k.acquisition_cost is None and k.cac is None


async def test_movements_rows(store):
    await two_customers(store)
    s = scope(as_of="2024-03-01")
    rows = await store.read(movements, s, months("2024-02", "2024-03"))
    assert [(r.customer_id, r.type) for r in rows] == [("c2", "new_business"), ("c1", "expansion")]
    payload = movements_json(rows, "USD", s)
    assert payload["rows"][0] == {
        "customer_id": "c2", "effective_at": "2024-02-01T00:00:00+00:00", "type": "new_business",
        "amount": "50.00", "mrr_before": "0.00", "mrr_after": "50.00", "event_ids": ["e4"],
        "recorded_at": "2000-01-01T00:00:00+00:00"}


async def test_customer_view(store):
    sub = {"customer_id": "c1", "status": "active", "plan": "pro", "billing_interval": "month"}
    await put(store, "customer_mrr", interval("c1", "2024-01-01", None, 11000))
    await put(store, "subscription_mrr",
              {**sub, "subscription_id": "s1", "valid_from": at("2024-01-01"), "currency": "EUR",
               "native_mrr": 10000, "mrr": 11000},
              {**sub, "subscription_id": "s2", "valid_from": at("2024-01-01"), "currency": "CHF",
               "native_mrr": 500, "mrr": None},
              {**sub, "subscription_id": "s0", "valid_from": at("2023-01-01"), "valid_to": at("2024-01-01"),
               "currency": "USD", "native_mrr": 1, "mrr": 1})
    await put(store, "customer_attributes",
              {"event_id": "a1", "key": "country", "customer_id": "c1", "value": "FR",
               "occurred_at": at("2023-01-01"), "recorded_at": at("2023-01-01")},
              {"event_id": "a2", "key": "country", "customer_id": "c1", "value": "DE",
               "occurred_at": at("2024-06-01"), "recorded_at": at("2024-06-01")})
    s = scope(as_of="2024-03-01", customer="c1")
    view = await store.read(customer, s)
    payload = customer_json(view, "USD", s)
    assert payload["mrr"] == "110.00" and payload["unconverted_subscriptions"] == 1
    assert payload["attributes"] == {"country": "FR"}
    assert [(x["subscription_id"], x["mrr"], x["native_mrr"], x["currency"]) for x in payload["subscriptions"]] == [
        ("s1", "110.00", "100.00", "EUR"), ("s2", None, "5.00", "CHF")]


async def test_unconverted_subscriptions_are_counted_in_the_bridge(store):
    await put(store, "subscription_mrr",
              {"customer_id": "c1", "subscription_id": "s1", "valid_from": at("2024-01-05"), "status": "active",
               "currency": "CHF", "native_mrr": 500, "mrr": None, "plan": "p", "billing_interval": "month"})
    rows = await store.read(bridge, months("2023-12", "2024-01"), scope())
    assert [r.unconverted_subscriptions for r in rows] == [0, 1]


async def test_a_bridge_as_of_mid_day_counts_that_day_up_to_as_of(store):
    """The totals answer whole days; the rest of the last day comes from the rows: intervals
    starting and ending that day, unconverted subscriptions, movements and FX impacts."""
    await put(store, "customer_mrr", interval("c1", "2024-01-05", "2024-02-10T10:00", 1000),
              interval("c1", "2024-02-10T10:00", None, 1200), interval("c2", "2024-02-10T08:00", "2024-02-10T14:00", 700))
    await put(store, "movements", movement("c1", "2024-01-05", "new_business", 0, 1000),
              movement("c1", "2024-02-10T10:00", "expansion", 1000, 1180),
              movement("c2", "2024-02-10T08:00", "new_business", 0, 700),
              movement("c2", "2024-02-10T14:00", "churn", 700, 0))
    await put(store, "fx_impacts", {"customer_id": "c1", "effective_at": at("2024-02-10T10:00"), "amount": 20})
    subscription = {"customer_id": "c3", "subscription_id": "s1", "status": "active", "currency": "CHF",
                    "native_mrr": 500, "mrr": None, "plan": "p", "billing_interval": "month"}
    await put(store, "subscription_mrr", {**subscription, "valid_from": at("2024-02-10T09:00"), "valid_to": at("2024-02-10T11:00")},
              {**subscription, "subscription_id": "s2", "valid_from": at("2024-02-10T09:30")})
    s = scope(as_of="2024-02-10T12:00")
    for totals in (True, False):
        jan, feb = await store.read(lambda c: bridge(c, months("2024-01", "2024-02"), s, totals=totals))
        assert (feb.opening_mrr, feb.new_business, feb.expansion, feb.churn, feb.fx_impact, feb.closing_mrr) == \
            (1000, 700, 180, 0, 20, 1900), totals
        assert (feb.customers_closing, feb.unconverted_subscriptions, jan.unconverted_subscriptions) == (2, 1, 0)
