"""Segment reports on hand-built projection rows; every number worked out by hand below."""

from __future__ import annotations

from projections.analytics.segments import segments, segments_json
from projections.periods import parse_label, periods_between
from projections.queries import Scope, bridge
from tests.projections.conftest import at, interval, movement, put

NOW = at("2030-01-01")


def months(first: str, last: str):
    return periods_between(parse_label(first), parse_label(last))


def scope(as_of: str = "2024-02-29T23:00", known_at: str | None = None, customer: str | None = None) -> Scope:
    return Scope(at(as_of), at(known_at) if known_at else NOW, customer)


def sub(customer, sub_id, start, end, plan, mrr, currency="USD", native=None):
    return {"customer_id": customer, "subscription_id": sub_id, "valid_from": at(start),
            "valid_to": at(end) if end else None, "status": "active", "currency": currency,
            "native_mrr": mrr if native is None else native, "mrr": mrr, "plan": plan, "billing_interval": "month"}


async def history(store):
    """c1: basic 30 from Jan 5; switches to pro 50 on Feb 10 (expansion +20).
    c2: pro 100 from Jan 1; switches to basic 60 on Feb 15 (contraction -40).
    c3: basic 20 + pro 40 from Jan 20 (new 60); cancels both on Feb 25 (churn -60).
    c4: pro in EUR, native 100 = 110 USD from Jan 10; renews Feb 10 at a new rate: 120 (FX +10).
    c5: team 10 from Jan 3, unchanged."""
    await put(store, "subscription_mrr",
              sub("c1", "s1", "2024-01-05", "2024-02-10", "basic", 3000),
              sub("c1", "s1", "2024-02-10", None, "pro", 5000),
              sub("c2", "s2", "2024-01-01", "2024-02-15", "pro", 10000),
              sub("c2", "s2", "2024-02-15", None, "basic", 6000),
              sub("c3", "s3", "2024-01-20", "2024-02-25", "basic", 2000),
              sub("c3", "s4", "2024-01-20", "2024-02-25", "pro", 4000),
              sub("c4", "s5", "2024-01-10", "2024-02-10", "pro", 11000, "EUR", 10000),
              sub("c4", "s5", "2024-02-10", None, "pro", 12000, "EUR", 10000),
              sub("c5", "s6", "2024-01-03", None, "team", 1000))
    await put(store, "customer_mrr",
              interval("c1", "2024-01-05", "2024-02-10", 3000), interval("c1", "2024-02-10", None, 5000),
              interval("c2", "2024-01-01", "2024-02-15", 10000), interval("c2", "2024-02-15", None, 6000),
              interval("c3", "2024-01-20", "2024-02-25", 6000),
              interval("c4", "2024-01-10", "2024-02-10", 11000), interval("c4", "2024-02-10", None, 12000),
              interval("c5", "2024-01-03", None, 1000))
    await put(store, "movements",
              movement("c1", "2024-01-05", "new_business", 0, 3000), movement("c1", "2024-02-10", "expansion", 3000, 5000),
              movement("c2", "2024-01-01", "new_business", 0, 10000),
              movement("c2", "2024-02-15", "contraction", 10000, 6000),
              movement("c3", "2024-01-20", "new_business", 0, 6000), movement("c3", "2024-02-25", "churn", 6000, 0),
              movement("c4", "2024-01-10", "new_business", 0, 11000),
              movement("c5", "2024-01-03", "new_business", 0, 1000))
    await put(store, "fx_impacts", {"customer_id": "c4", "effective_at": at("2024-02-10"), "amount": 1000})


def view(report, period):
    return {r.segment: (r.opening_mrr, {k: v for k, v in r.parts.items() if v}, r.closing_mrr,
                        r.customers_opening, r.customers) for r in report.rows if r.period.label == period}


async def test_segments_by_plan(store):
    await history(store)
    report = await store.read(segments, months("2024-01", "2024-02"), scope(), "plan", 10)
    assert report.segments == ["pro", "basic", "team"]  # by February's closing MRR: 170, 60, 10
    # January: basic = c1 30 + c3 20 (new); pro = c2 100 + c3 40 + c4 110 (new); team = c5 10.
    assert view(report, "2024-01") == {
        "pro": (0, {"new_business": 25000}, 25000, 0, 3),
        "basic": (0, {"new_business": 5000}, 5000, 0, 2),
        "team": (0, {"new_business": 1000}, 1000, 0, 1)}
    # February, pro: c1 switches in (+50 = 30 moved in + 20 expansion, the customer expanded by
    # 20 and the MRR it brought from basic is a transfer); c2 leaves for basic (-100 = -60 moved
    # out + -40 contraction: it contracted by 40 and 60 went to basic); c3 churns its pro 40;
    # c4 revalued +10 (FX). 250 + 30 + 20 - 60 - 40 - 40 + 10 = 170. Customers: 3 -> c1, c4 = 2.
    # basic: c1 moves out (-30), c2 moves in (+60), c3 churns its basic 20: 50 - 30 + 60 - 20 = 60;
    # customers 2 (c1, c3) -> 1 (c2).
    assert view(report, "2024-02") == {
        "pro": (25000, {"expansion": 2000, "contraction": -4000, "churn": -4000, "moved_in": 3000,
                        "moved_out": -6000, "fx_impact": 1000}, 17000, 3, 2),
        "basic": (5000, {"churn": -2000, "moved_in": 6000, "moved_out": -3000}, 6000, 2, 1),
        "team": (1000, {}, 1000, 1, 1)}
    feb = [r for r in report.rows if r.period.label == "2024-02"]
    assert {r.segment: r.counts["churned_customers"] for r in feb} == {"pro": 1, "basic": 1, "team": 0}
    # Over all segments each movement type equals the bridge, transfers net to 0.
    for row in await store.read(bridge, months("2024-01", "2024-02"), scope()):
        mine = [r for r in report.rows if r.period == row.period]
        for kind in ("new_business", "expansion", "contraction", "churn", "reactivation", "fx_impact"):
            assert sum(r.parts[kind] for r in mine) == getattr(row, kind), kind
        assert sum(r.parts["moved_in"] + r.parts["moved_out"] for r in mine) == 0
        assert sum(r.closing_mrr for r in mine) == row.closing_mrr


async def test_top_n_merges_the_rest_into_other_and_movers(store):
    await history(store)
    report = await store.read(segments, months("2024-01", "2024-02"), scope(), "plan", 1)
    assert report.segments == ["pro", "(other)"]
    # (other) = basic + team, computed as one segment: Jan opening 0, new 50 + 10 = 60; Feb
    # 60 - 30 (c1 to pro) + 60 (c2 from pro) - 20 (c3) = 70; customers c1, c3, c5 -> c2, c5.
    assert view(report, "2024-02")["(other)"] == (
        6000, {"churn": -2000, "moved_in": 6000, "moved_out": -3000}, 7000, 3, 2)
    payload = segments_json(report, "USD", "month", scope(), 1)
    assert payload["dimension"] == "plan" and payload["top"] == 1 and payload["segments"] == ["pro", "(other)"]
    # Movers over Jan..Feb before merging: pro 0 -> 170, basic 0 -> 60, team 0 -> 10; top 1 kept.
    assert [(m["segment"], m["change"], m["growth_rate"]) for m in payload["movers"]] == [("pro", "170.00", None)]
    assert payload["totals"][0]["segment"] == "pro" and payload["totals"][0]["new_business"] == "250.00"
    feb = [r for r in payload["rows"] if r["period"] == "2024-02"]
    assert feb[0] == {"period": "2024-02", "segment": "pro", "opening_mrr": "250.00", "new_business": "0.00",
                      "expansion": "20.00", "contraction": "-40.00", "churn": "-40.00", "reactivation": "0.00",
                      "moved_in": "30.00", "moved_out": "-60.00", "fx_impact": "10.00", "closing_mrr": "170.00",
                      "customers_opening": 3, "customers": 2, "arpa": "85.00", "new_customers": 0,
                      "churned_customers": 1, "reactivated_customers": 0}


async def test_segments_by_currency_and_interval(store):
    await history(store)
    report = await store.read(segments, months("2024-02", "2024-02"), scope(), "currency", 10)
    # EUR = c4 only: 110 + FX 10 = 120. USD opens with c1 30 + c2 100 + c3 60 + c5 10 = 200,
    # +20 expansion, -40 contraction, -60 churn = 120; plan switches are not currency transfers.
    assert view(report, "2024-02") == {
        "USD": (20000, {"expansion": 2000, "contraction": -4000, "churn": -6000}, 12000, 4, 3),
        "EUR": (11000, {"fx_impact": 1000}, 12000, 1, 1)}
    by_interval = await store.read(segments, months("2024-02", "2024-02"), scope(), "billing_interval", 10)
    # Every subscription is monthly: the whole book, 50 + 60 + 120 + 10 = 240 with c1, c2, c4, c5.
    assert [(r.segment, r.closing_mrr, r.customers) for r in by_interval.rows] == [("month", 24000, 4)]


async def test_segments_by_customer_attribute_with_known_at(store):
    await history(store)
    await put(store, "customer_attributes",
              {"event_id": "a1", "key": "country", "customer_id": "c1", "value": "FR",
               "occurred_at": at("2023-12-01"), "recorded_at": at("2023-12-01")},
              {"event_id": "a2", "key": "country", "customer_id": "c1", "value": "DE",
               "occurred_at": at("2024-02-20"), "recorded_at": at("2024-02-21")},
              {"event_id": "a3", "key": "country", "customer_id": "c4", "value": "DE",
               "occurred_at": at("2024-01-01"), "recorded_at": at("2024-01-01")})
    report = await store.read(segments, months("2024-02", "2024-02"), scope(), "attribute:country", 10)
    # FR: c1 30 -> expansion 20 on Feb 10 -> moves to DE on Feb 20 with its 50 (a transfer).
    # DE: c4 110 + FX 10, + c1's 50 moved in = 170. (none): c2, c3, c5: 100 + 60 + 10 = 170,
    # c2 contracts 40, c3 churns 60 -> 70.
    assert view(report, "2024-02") == {
        "DE": (11000, {"moved_in": 5000, "fx_impact": 1000}, 17000, 1, 2),
        "(none)": (17000, {"contraction": -4000, "churn": -6000}, 7000, 3, 2),
        "FR": (3000, {"expansion": 2000, "moved_out": -5000}, 0, 1, 0)}
    # As known on Feb 20, c1's move to DE was not recorded yet: c1 stays in FR at 50.
    early = await store.read(segments, months("2024-02", "2024-02"), scope(known_at="2024-02-20T12:00"),
                             "attribute:country", 10)
    assert view(early, "2024-02")["FR"] == (3000, {"expansion": 2000}, 5000, 1, 1)
    # Each customer is in exactly one attribute segment: customers add up to the bridge's.
    assert sum(r.customers for r in report.rows) == 4
    # FR ends February with no customer: its ARPA (0 / 0 customers) is null, not 0; its growth
    # over the range is (0 - 30) / 30 = -1; (none) and DE are defined too.
    payload = segments_json(report, "USD", "month", scope(), 10)
    assert {r["segment"]: r["arpa"] for r in payload["rows"]} == {"DE": "85.00", "(none)": "35.00", "FR": None}
    assert {m["segment"]: m["growth_rate"] for m in payload["movers"]}["FR"] == "-1.0000"


async def test_customer_filter_and_empty_range(store):
    await history(store)
    report = await store.read(segments, months("2024-02", "2024-02"), scope(customer="c1"), "plan", 10)
    assert view(report, "2024-02") == {"pro": (0, {"expansion": 2000, "moved_in": 3000}, 5000, 0, 1),
                                       "basic": (3000, {"moved_out": -3000}, 0, 1, 0)}
    assert (await store.read(segments, [], scope(), "plan", 10)).rows == []
