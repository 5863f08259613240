"""`CustomerEngine` resumes its run instead of re-running the history; it must never differ.

Histories arrive mostly in business order (so the resume path is taken) with some late and
same-instant events (so it must rebuild), FX rates arrive between batches, and after every batch
the timeline must equal a run from scratch over the events applied so far with the rates known
so far.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st

from projections.engine import CustomerEngine, FxTable, MrrSettings, compute_timeline
from projections.engine.batch import group_by_customer
from tests.engine import builders as b
from tests.engine.test_properties import business

PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mostly_in_business_order(events: list, rnd: random.Random) -> list:
    """Sorted by occurred_at, then a few events moved later (late arrivals)."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    for _ in range(rnd.randint(0, 2)):
        if len(ordered) > 2:
            late = ordered.pop(rnd.randrange(len(ordered) - 1))
            ordered.insert(rnd.randint(len(ordered) // 2, len(ordered)), late)
    return ordered


@PROPS
@given(business(), st.randoms(use_true_random=False))
def test_every_intermediate_timeline_equals_a_run_from_scratch(data: tuple, rnd: random.Random) -> None:
    events, mrr_settings = data
    rates = [e for e in events if not hasattr(e, "customer_id")]
    for customer, own in group_by_customer(events).items():
        own = _mostly_in_business_order(own, rnd)
        fx = FxTable()
        pending_rates = list(rates)
        engine = CustomerEngine(customer, mrr_settings, fx)
        previous: dict[str, list] = {}
        i = 0
        while i < len(own):
            if pending_rates and rnd.random() < 0.3:  # a rate arrives between two batches
                rate = pending_rates.pop(0)
                fx.add(rate.base, rate.quote, rate.effective_date, rate.rate)
            step = rnd.randint(1, 3)
            i += step
            parts = engine.advance(own[i - step : i])
            assert parts.timeline() == compute_timeline(customer, own[:i], mrr_settings, fx)
            for name, rows in parts.rows.items():  # the kept prefix is the previous answer's objects
                kept = parts.kept[name]
                assert kept <= len(previous.get(name, ()))
                assert all(a is b for a, b in zip(rows[:kept], previous.get(name, [])[:kept]))
            previous = {name: list(rows) for name, rows in parts.rows.items()}


def test_in_order_events_resume_and_late_ones_rebuild() -> None:
    engine = CustomerEngine("c1", MrrSettings(), FxTable())
    engine.apply([b.started("2024-01-01", items=[b.item(1000)])])
    engine.apply([b.updated("2024-02-01", items=[b.item(2000)])])
    engine.apply([b.cancel_scheduled("2024-03-01", "2024-04-01")])
    assert engine.resumed == 3  # the first apply continues the empty run
    timeline = engine.apply([b.updated("2024-01-15", items=[b.item(1500)])])  # backdated
    assert engine.resumed == 3
    assert [m.type for m in timeline.movements] == ["new_business", "expansion", "expansion", "churn"]


def test_event_at_the_last_instant_rebuilds() -> None:
    """Ties at an instant are one group, so an event at the last applied instant cannot resume."""
    engine = CustomerEngine("c1", MrrSettings(), FxTable())
    engine.apply([b.started("2024-01-01", items=[b.item(1000)])])
    timeline = engine.apply([b.updated("2024-01-01", items=[b.item(3000)])])
    assert engine.resumed == 1
    assert [(m.type, m.amount) for m in timeline.movements] == [("new_business", 3000)]


def test_a_new_rate_rebuilds_only_customers_that_looked_rates_up() -> None:
    fx = FxTable()
    fx.add("EUR", "USD", b.at("2024-01-01").date(), "1.1")
    euro = CustomerEngine("c1", MrrSettings(), fx)
    dollar = CustomerEngine("c2", MrrSettings(), fx)
    euro.apply([b.started("2024-01-01", customer="c1", currency="EUR", items=[b.item(1000)])])
    dollar.apply([b.started("2024-01-01", customer="c2", items=[b.item(1000)])])
    fx.add("EUR", "USD", b.at("2024-01-01").date(), "1.2")  # corrects the rate
    got = euro.apply([b.updated("2024-02-01", customer="c1", currency="EUR", items=[b.item(2000)])])
    dollar.apply([b.updated("2024-02-01", customer="c2", items=[b.item(2000)])])
    assert (euro.resumed, dollar.resumed) == (1, 2)
    assert [m.amount for m in got.movements] == [1200, 1200]


def test_a_rate_effective_after_every_lookup_changes_nothing_and_resumes() -> None:
    fx = FxTable()
    fx.add("EUR", "USD", b.at("2024-01-01").date(), "1.1")
    engine = CustomerEngine("c1", MrrSettings(), fx)
    engine.apply([b.started("2024-01-01", currency="EUR", items=[b.item(1000)])])
    fx.add("EUR", "USD", b.at("2024-03-01").date(), "1.3")  # later than the lookup on Jan 1
    got = engine.apply([b.updated("2024-03-05", currency="EUR", items=[b.item(2000)])])
    assert engine.resumed == 2
    assert [m.amount for m in got.movements] == [1100, 1100]  # the rate stays locked (no relock)


def test_a_late_rate_restarts_from_the_last_mark_before_its_day() -> None:
    fx = FxTable()
    fx.add("EUR", "USD", b.at("2024-01-01").date(), "1.1")
    engine = CustomerEngine("c1", MrrSettings(), fx)
    engine.apply([b.started("2024-01-01", currency="EUR", items=[b.item(1000)])])
    engine.apply([b.renewed("2024-02-01", currency="EUR", items=[b.item(1000)], period_start="2024-02-01")])
    engine.apply([b.cancel_scheduled("2024-02-10", "2024-03-15")])  # a timer pending at the mark
    for month in ("03", "04"):  # each renewal looks the rate up for its period start
        engine.apply([b.renewed(f"2024-{month}-01", currency="EUR", items=[b.item(1000)],
                                period_start=f"2024-{month}-01")])
    fx.add("EUR", "USD", b.at("2024-03-01").date(), "1.5")  # published late
    got = engine.apply([])
    assert (engine.resumed, engine.rewound) == (6, 1)  # restarted from the mark before March 1
    assert got == compute_timeline("c1", engine.events, MrrSettings(), fx)
    assert [(m.effective_at.month, m.type, m.amount) for m in got.movements] == [
        (1, "new_business", 1100), (3, "churn", -1500), (4, "reactivation", 1500)]
    assert [(f.effective_at.month, f.amount) for f in got.fx_impacts] == [(3, 400)]
    fx.add("EUR", "USD", b.at("2024-03-01").date(), "1.6")  # corrected again: the same mark again
    got = engine.apply([])
    assert engine.rewound == 2
    assert got == compute_timeline("c1", engine.events, MrrSettings(), fx)
    assert [(f.effective_at.month, f.amount) for f in got.fx_impacts] == [(3, 500)]
