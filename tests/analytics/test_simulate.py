"""Price-change simulation on a small hand-built book, every expected number worked out by hand.

The book (USD reporting, EUR at 1.25), projected into a fresh store:
  c1  s1  pro   $100.00/month × 2 seats                       MRR 20000 (minor units)
  c2  s2  basic $50.00/month                                  MRR  5000 (never repriced)
  c3  s3  pro   $1,200.00/year + add-on extra $9.99/month     MRR 10000 + 999 = 10999
  c4  s4  pro   $100.00/month, trialing from Feb 1, active Mar 15          0 -> 10000
  c5  s5  pro   $100.00/month, canceled Feb 20 (gone before the change)
  c6  s6  pro   €80.00/month = $100.00 at 1.25                MRR 10000
Baseline MRR at the end of March and April: 20000 + 5000 + 10999 + 10000 + 10000 = 55999.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.analytics.simulate import PriceChange, parse_percent, reprice, simulate, simulation_json
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.queries.common import Scope
from tests.engine.builders import canceled, event, item, started, updated
from tests.projections.conftest import at, record, store  # noqa: F401  (the store fixture)

SCOPE = Scope(as_of=at("2024-05-01"), known_at=at("2024-05-01"))
BOOK = [
    event("fx.rate_published", "2024-01-01", event_id="fx-eur", base="EUR", quote="USD", rate="1.25",
          effective_date="2024-01-01"),
    started("2024-01-01", sub="s1", customer="c1", items=[item(10000, 2, price="pro")]),
    started("2024-01-10", sub="s2", customer="c2", items=[item(5000, price="basic")]),
    started("2024-01-15", sub="s3", customer="c3",
            items=[item(120000, interval="year", price="pro"), item(999, price="extra")]),
    started("2024-02-01", sub="s4", customer="c4", status="trialing", items=[item(10000, price="pro")]),
    updated("2024-03-15", sub="s4", customer="c4", items=[item(10000, price="pro")]),
    started("2024-01-05", sub="s5", customer="c5", items=[item(10000, price="pro")]),
    canceled("2024-02-20", sub="s5", customer="c5"),
    started("2024-01-20", sub="s6", customer="c6", currency="EUR", items=[item(8000, price="pro")]),
]


@pytest.fixture
async def book(store):  # noqa: F811
    records = [record(i, e, "2024-04-01") for i, e in enumerate(BOOK)]
    await Projector(store, MrrSettings()).apply_batch(records, {0: len(records)})
    return store


async def run(store, change: str, start: str = "2024-03-01", months: int = 2, uplift: str = "0%"):
    scenario = PriceChange("pro", parse_percent(change, "--change"), at(start), months,
                           parse_percent(uplift, "--churn-uplift"))
    result = await store.read(simulate, SCOPE, scenario, "USD")
    return result, simulation_json(result, "USD", SCOPE)


def test_percentages_and_half_even_rounding():
    assert parse_percent("+10%", "x") == Decimal("0.1") and parse_percent("-5.5 %", "x") == Decimal("-0.055")
    with pytest.raises(ValueError, match="percentage"):
        parse_percent("10", "--change")
    terms = started("2024-01-01", items=[item(10010, price="pro"), item(10030, price="pro"), item(10010, price="x")]).terms
    # +5 %: 10010 × 1.05 = 10510.5 -> 10510 (half-even: to the even neighbour), 10030 × 1.05 =
    # 10531.5 -> 10532; the other price is untouched
    assert [i.unit_amount for i in reprice(terms, "pro", Decimal("0.05")).items] == [10510, 10532, 10010]
    assert reprice(terms, "pro", Decimal(0)) is terms  # no change: the very same terms


async def test_ten_percent_on_pro_by_hand(book):
    result, payload = await run(book, "+10%")
    # From March 1: c1 11000 × 2 = 22000 (+2000); c3 132000/12 + 999 = 11999 (+1000); c6 €88.00 =
    # $110.00 (+1000); c4 converts on Mar 15 at the new price, 11000 (+1000). c2 and c5 unchanged.
    # Simulated: 22000 + 5000 + 11999 + 11000 + 11000 = 60999, +5000 on 55999.
    march, april = payload["rows"]
    assert (march["period"], march["baseline_mrr"], march["simulated_mrr"], march["difference"]) == (
        "2024-03", "559.99", "609.99", "50.00")
    assert march["difference_pct"] == "0.0893"  # 5000 / 55999 = 0.08929
    # March's movements: expansions of c1, c3, c6 at the change (+4000) and c4's new business
    # 11000 instead of 10000 (+1000)
    assert {k: v for k, v in march["movements_difference"].items() if v != "0.00"} == {
        "expansion": "40.00", "new_business": "10.00"}
    assert (april["baseline_mrr"], april["simulated_mrr"]) == ("559.99", "609.99")
    assert set(april["movements_difference"].values()) == {"0.00"}
    # c1, c3, c4, c5 and c6 had "pro"; the subscriptions repriced at March 1 are those in force then
    # (s1, s3, s4 trialing, s6)
    assert (payload["customers_recomputed"], payload["repriced_subscriptions"]) == (5, 4)
    assert payload["recomputation_matches_projection"] is True
    segments = {(s["dimension"], s["segment"]): (s["rows"][0]["baseline_mrr"], s["rows"][0]["simulated_mrr"])
                for s in payload["segments"]}
    assert segments == {
        # plan = the first licensed item's price: pro for c1, c3, c4, c6
        ("plan", "pro"): ("509.99", "559.99"), ("plan", "basic"): ("50.00", "50.00"),
        # currency of the subscription, in USD: EUR is c6 only
        ("currency", "USD"): ("459.99", "499.99"), ("currency", "EUR"): ("100.00", "110.00"),
        ("billing_interval", "month"): ("450.00", "490.00"), ("billing_interval", "year"): ("109.99", "119.99"),
    }
    assert any("half-even" in a for a in payload["assumptions"])
    assert payload["scenario"] == {"plan": "pro", "change": "0.1000", "churn_uplift": "0.0000",
                                   "from": "2024-03-01T00:00:00+00:00", "months": 2}


async def test_churn_uplift_by_hand(book):
    result, payload = await run(book, "+10%", uplift="50%")
    # Repriced subscriptions paying just before March 1: s1, s3, s6 (s4 is trialing, s5 gone).
    # SHA-256 order: s3 (41242b…), s6 (71e769…), s1 (e8bc16…).
    # Mar 1: floor(0.5 × 3) = 1 -> s3 cancels (carry 0.5); simulated 60999 - 11999 = 49000.
    # Apr 1: floor(0.5 × 2 + 0.5) = 1 -> s6 cancels (carry 0.5); 49000 - 11000 = 38000.
    march, april = payload["rows"]
    assert (march["simulated_mrr"], march["uplift_cancellations"]) == ("490.00", 1)
    assert (april["simulated_mrr"], april["uplift_cancellations"]) == ("380.00", 1)
    # c3's price change and cancellation are one instant: one churn of its old MRR, no expansion
    assert {k: v for k, v in march["movements_difference"].items() if v != "0.00"} == {
        "expansion": "30.00", "new_business": "10.00", "churn": "-109.99"}
    assert april["movements_difference"]["churn"] == "-110.00"
    assert any("SHA-256" in a for a in payload["assumptions"])


async def test_zero_change_is_the_stored_projection_exactly(book):
    from projections.queries import bridge
    from projections.queries.common import resolve_periods

    result, payload = await run(book, "+0%", start="2024-01-01", months=6)
    june_end = Scope(at("2024-06-30T23:59:59"), SCOPE.known_at)  # the stored bridge, Jan..Jun
    rows = await book.read(lambda conn: bridge(conn, resolve_periods(conn, "month", june_end, "2024-01", "2024-06"),
                                               june_end))
    assert [m.simulated for m in result.months] == [m.baseline for m in result.months] == [r.closing_mrr for r in rows]
    # Jan: c1 20000 + c2 5000 + c3 10999 + c5 10000 + c6 10000 = 55999; Feb: c5 gone, c4 trialing = 45999;
    # from March: c4 active = 55999
    assert [m.baseline for m in result.months] == [55999, 45999, 55999, 55999, 55999, 55999]
    assert all(set(m.movements.values()) == {0} for m in result.months)
    assert all(b == s for segs in result.segments.values() for values in segs.values() for b, s in values)
    assert result.recomputation_matches and payload["repriced_subscriptions"] == 0
    assert {r["difference"] for r in payload["rows"]} == {"0.00"}


async def test_difference_pct_is_null_on_a_zero_baseline(book):
    result, payload = await run(book, "+10%", start="2023-12-01", months=2)
    # December 2023: nothing yet, baseline 0 and simulated 0 -> 0 / 0: null, not 0 or infinity.
    # January: every pro price is 10 % higher from its start: c1 2 × 110 (+20), c3 1,320/year
    # (+10), c5 110 (+10), c6 €88 = $110 (+10): +50 on 559.99 = 0.0893.
    december, january = payload["rows"]
    assert (december["baseline_mrr"], december["difference"], december["difference_pct"]) == ("0.00", "0.00", None)
    assert (january["difference"], january["difference_pct"]) == ("50.00", "0.0893")
    [pro] = [g for g in payload["segments"] if (g["dimension"], g["segment"]) == ("plan", "pro")]
    # plan pro in January: c1 200 + c3 109.99 (its add-on is in the subscription) + c5 100 + c6 100
    # = 509.99; +50 -> 0.0980
    assert [r["difference_pct"] for r in pro["rows"]] == [None, "0.0980"]


async def test_unknown_plan_changes_nothing(book):
    scenario = PriceChange("gold", Decimal("0.2"), at("2024-03-01"), 1)
    result = await book.read(simulate, SCOPE, scenario, "USD")
    assert result.months[0].simulated == result.months[0].baseline == 55999
    assert result.customers == 0 and "nothing changes" in result.warnings[0]


def test_scenario_validation():
    with pytest.raises(ValueError, match="above -100%"):
        PriceChange("pro", Decimal(-1), at("2024-03-01"))
    with pytest.raises(ValueError, match="churn-uplift"):
        PriceChange("pro", Decimal(0), at("2024-03-01"), churn_uplift=Decimal("1.5"))
