"""MRR_SPEC.md §2 (currency): conversion at service-period start, fx_impact, missing rates."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from projections.engine import CustomerEngine, MrrSettings
from tests.engine.builders import at, item, renewed, started, updated
from tests.engine.helpers import changes_balance, fx_table, moves, run


def test_rate_in_effect_at_service_period_start_is_used() -> None:
    fx = fx_table(("EUR", "USD", "2024-01-01", "1.10"), ("EUR", "USD", "2024-02-01", "1.20"))
    t = run(started("2024-01-15", currency="EUR", items=[item(10000)]), fx=fx)
    assert moves(t) == [("2024-01-15", "new_business", 11000)]
    sub = t.subscription_intervals[0]
    assert (sub.currency, sub.native_mrr, sub.mrr) == ("EUR", 10000, 11000)


def test_rate_stays_locked_until_renewal_then_fx_impact_not_movement() -> None:
    fx = fx_table(("EUR", "USD", "2024-01-01", "1.10"), ("EUR", "USD", "2024-02-01", "1.20"))
    t = run(
        started("2024-01-15", currency="EUR", items=[item(10000)]),
        updated("2024-02-10", currency="EUR", items=[item(10000, qty=2)]),  # same period, old rate
        renewed("2024-03-15", currency="EUR", items=[item(10000, qty=2)]),  # rate 1.20 now
        fx=fx,
    )
    assert moves(t) == [("2024-01-15", "new_business", 11000), ("2024-02-10", "expansion", 11000)]
    assert [(f.effective_at, f.amount) for f in t.fx_impacts] == [(at("2024-03-15"), 2000)]
    assert changes_balance(t)


def test_renewal_with_price_change_splits_movement_and_fx_impact() -> None:
    fx = fx_table(("EUR", "USD", "2024-01-01", "1.10"), ("EUR", "USD", "2024-02-01", "1.20"))
    t = run(
        started("2024-01-15", currency="EUR", items=[item(10000)]),
        renewed("2024-02-15", currency="EUR", items=[item(15000)]),
        fx=fx,
    )
    # before 11000 USD; after 18000 USD; fx impact = 10000 * (1.20 - 1.10) = 1000; movement 6000
    assert t.fx_impacts[0].amount == 1000
    assert moves(t)[-1] == ("2024-02-15", "expansion", 6000)


def test_current_period_start_decides_the_rate_day() -> None:
    fx = fx_table(("EUR", "USD", "2024-01-01", "1.10"), ("EUR", "USD", "2024-02-01", "1.20"))
    t = run(started("2024-02-03", currency="EUR", items=[item(10000)], period_start="2024-01-28"), fx=fx)
    assert t.movements[0].amount == 11000


def test_inverse_and_cross_rates() -> None:
    fx = fx_table(("USD", "EUR", "2024-01-01", "0.8"), ("GBP", "EUR", "2024-01-01", "1.2"))
    assert fx.rate("EUR", "USD", dt.date(2024, 1, 5)) == Fraction(5, 4)
    assert fx.rate("GBP", "USD", dt.date(2024, 1, 5)) == Fraction(3, 2)
    assert fx.rate("GBP", "USD", dt.date(2023, 12, 31)) is None


def test_currency_without_minor_units_converts_exactly() -> None:
    fx = fx_table(("JPY", "USD", "2024-01-01", "0.0067"))
    t = run(started("2024-01-15", currency="JPY", items=[item(15000)]), fx=fx)
    assert t.movements[0].amount == 10050  # 15000 JPY * 0.0067 = 100.50 USD


def test_missing_rate_is_unconverted_not_zero_and_restated_when_the_rate_arrives() -> None:
    fx = fx_table()
    engine = CustomerEngine("c1", MrrSettings(), fx)
    t = engine.apply([started("2024-01-15", currency="EUR", items=[item(10000)])])
    assert t.movements == ()
    assert [(s.native_mrr, s.mrr) for s in t.subscription_intervals] == [(10000, None)]
    fx.add("EUR", "USD", dt.date(2024, 1, 1), "1.10")
    restated = engine.apply([])
    assert moves(restated) == [("2024-01-15", "new_business", 11000)]
