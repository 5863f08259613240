"""Unit economics on hand-built projection rows; every number worked out by hand below."""

from __future__ import annotations

import pytest

from projections.analytics.unit_economics import unit_economics, unit_economics_json
from projections.periods import parse_label, period_of, periods_between
from projections.queries import Scope
from tests.projections.conftest import at, interval, movement, put

NOW = at("2030-01-01")


def months(first: str, last: str):
    return periods_between(parse_label(first), parse_label(last))


def scope(known_at: str | None = None) -> Scope:
    return Scope(NOW, at(known_at) if known_at else NOW)


def cost(event_id: str, month: str, channel: str, amount: int, currency: str = "USD") -> dict:
    return {"event_id": event_id, "period": month, "channel": channel, "amount": amount, "currency": currency,
            "occurred_at": at(f"{month}-28"), "recorded_at": at(f"{month}-28")}


async def history(store):
    """December 2023: a 100, b 200, f 60 start (Dec 1). January: f churns (Jan 10); c new at 50
    via `ads` (Jan 15) and churns (Jan 25); f reactivates at 60 (Jan 28). February: d new at 100
    via `ads` (Feb 5); a churns (Feb 10); e new at 60 with no channel (Feb 20). March: nothing.
    Spend: January ads 300; February ads 200, partner 100."""
    await put(store, "customer_mrr",
              interval("a", "2023-12-01", "2024-02-10", 10000), interval("b", "2023-12-01", None, 20000),
              interval("f", "2023-12-01", "2024-01-10", 6000), interval("f", "2024-01-28", None, 6000),
              interval("c", "2024-01-15", "2024-01-25", 5000), interval("d", "2024-02-05", None, 10000),
              interval("e", "2024-02-20", None, 6000))
    await put(store, "movements",
              movement("a", "2023-12-01", "new_business", 0, 10000), movement("b", "2023-12-01", "new_business", 0, 20000),
              movement("f", "2023-12-01", "new_business", 0, 6000), movement("f", "2024-01-10", "churn", 6000, 0),
              movement("c", "2024-01-15", "new_business", 0, 5000), movement("c", "2024-01-25", "churn", 5000, 0),
              movement("f", "2024-01-28", "reactivation", 0, 6000), movement("d", "2024-02-05", "new_business", 0, 10000),
              movement("a", "2024-02-10", "churn", 10000, 0), movement("e", "2024-02-20", "new_business", 0, 6000))
    await put(store, "customer_attributes",
              *({"event_id": f"attr-{c}", "key": "channel", "customer_id": c, "value": "ads",
                 "occurred_at": at("2024-01-01"), "recorded_at": at("2024-01-01")} for c in ("c", "d")))
    await put(store, "acquisition_costs", cost("k1", "2024-01", "ads", 30000), cost("k2", "2024-02", "ads", 20000),
              cost("k3", "2024-02", "partner", 10000))


KEYS = ("customers_opening", "customers", "new_customers", "churned_customers", "retained_customers",
        "customer_retention_rate", "customer_churn_rate", "customer_churn_rate_window", "arpa", "ltv",
        "acquisition_cost", "cac", "ltv_cac", "arpa_new_customers", "cac_payback_months", "mrr_growth_rate")


async def test_unit_economics_per_month(store):
    await history(store)
    s = scope()
    payload = unit_economics_json(await store.read(unit_economics, months("2024-01", "2024-03"), s, "USD"),
                                  "USD", "month", s)
    got = [tuple(r[k] for k in KEYS) for r in payload["rows"]]
    # January: 3 at start (a, b, f), 3 at end (a, b, f back); f and c churned (2), c new.
    #   retention: a, b, f active at start and end = 3/3 (f churned and came back: retained);
    #   churn rate 2/3; ARPA 360/3 = 120; LTV = 120 / (2/3) = 180; CAC 300/1; ARPA new 50;
    #   payback 300/50 = 6; LTV:CAC 180/300 = 0.6; growth (360 - 360)/360 = 0.
    # February: a churns, d and e new: 4 at end, MRR 200 + 60 + 100 + 60 = 420; retained b, f =
    #   2/3; churn 1/3; ARPA 105; LTV 105 * 3 = 315; CAC (200 + 100)/2 = 150; ARPA new 160/2 = 80;
    #   payback 150/80 = 1.875; LTV:CAC 315/150 = 2.1; growth 60/360 = 0.1667.
    # March: no change; churn 0 -> LTV null (zero denominator); spend tracked but none in March
    #   -> cost 0, no new customer -> CAC, LTV:CAC, payback null.
    assert got == [
        (3, 3, 1, 2, 3, "1.0000", "0.6667", "0.6667", "120.00", "180.00", "300.00", "300.00", "0.6000", "50.00",
         "6.0000", "0.0000"),
        (3, 4, 2, 1, 2, "0.6667", "0.3333", "0.3333", "105.00", "315.00", "300.00", "150.00", "2.1000", "80.00",
         "1.8750", "0.1667"),
        (4, 4, 0, 0, 4, "1.0000", "0.0000", "0.0000", "105.00", None, "0.00", None, None, None, None, "0.0000"),
    ]
    assert payload["ltv_window"] == 1 and payload["channel_attribute"] == "channel"
    # By channel, from the customers' `channel` attribute; e has none: `(none)`, organic (cost 0).
    assert [(c["period"], c["channel"], c["acquisition_cost"], c["new_customers"], c["cac"], c["arpa_new_customers"],
             c["cac_payback_months"]) for c in payload["channels"]] == [
        ("2024-01", "ads", "300.00", 1, "300.00", "50.00", "6.0000"),
        ("2024-02", "(none)", "0.00", 1, "0.00", "60.00", "0.0000"),
        ("2024-02", "ads", "200.00", 1, "200.00", "100.00", "2.0000"),   # d: 200 / 1; 200 / 100 MRR
        ("2024-02", "partner", "100.00", 0, None, None, None),          # spend, no customer: null
    ]


async def test_trailing_window_for_ltv(store):
    await history(store)
    s = scope()
    payload = unit_economics_json(await store.read(unit_economics, months("2024-01", "2024-03"), s, "USD", 2),
                                  "USD", "month", s)
    # Window of 2 months: Σ churned / Σ customers at start.
    # January: December (0 churned of 0 at start) + January (2 of 3) = 2/3 -> LTV 120 / (2/3) = 180.
    # February: 2 + 1 churned of 3 + 3 = 0.5 -> LTV 105 / 0.5 = 210; LTV:CAC 210 / 150 = 1.4.
    # March: 1 + 0 of 3 + 4 = 1/7 -> LTV 105 * 7 = 735; CAC null -> LTV:CAC null.
    assert [(r["customer_churn_rate"], r["customer_churn_rate_window"], r["ltv"], r["ltv_cac"])
            for r in payload["rows"]] == [("0.6667", "0.6667", "180.00", "0.6000"),
                                          ("0.3333", "0.5000", "210.00", "1.4000"),
                                          ("0.0000", "0.1429", "735.00", None)]
    assert payload["ltv_window"] == 2


async def test_no_cac_for_weeks_and_without_recorded_spend(store):
    await history(store)
    week = [period_of("week", at("2024-02-05"))]
    result = await store.read(unit_economics, week, scope(), "USD")
    assert result.channels == [] and result.rows[0].kpis.cac is None
    # Known before any cost was recorded: spend untracked, CAC null rather than 0.
    early = await store.read(unit_economics, months("2024-01", "2024-01"), scope(known_at="2024-01-20"), "USD")
    assert early.channels == [] and early.rows[0].kpis.acquisition_cost is None
    with pytest.raises(ValueError, match="at least 1"):
        await store.read(unit_economics, week, scope(), "USD", 0)
