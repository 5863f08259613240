"""Property tests over random event histories of many customers."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from projections.engine import CustomerEngine, FxTable, MrrSettings, compute_timeline
from projections.engine.batch import compute_all, fx_from, group_by_customer
from tests.engine import builders as b
from tests.engine.helpers import changes_balance, mrr_at

DAYS = 400
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _day(n: int, hour: int = 0) -> str:
    return (START + dt.timedelta(days=n, hours=hour)).strftime("%Y-%m-%dT%H:%M")


@st.composite
def customer_history(draw: st.DrawFn, customer: str) -> list:
    events = []
    for _ in range(draw(st.integers(1, 8))):
        sub = f"s{draw(st.integers(1, 3))}"
        day = _day(draw(st.integers(0, DAYS)), draw(st.sampled_from([0, 0, 0, 12])))
        kind = draw(st.sampled_from(["start", "update", "renew", "cancel", "schedule", "withdraw",
                                     "fail", "pay"]))
        amount = draw(st.integers(0, 100000))
        currency = draw(st.sampled_from(["USD", "USD", "EUR", "JPY"]))
        it = b.item(amount, qty=draw(st.integers(0, 5)),
                    interval=draw(st.sampled_from(["month", "year", "week", "day"])))
        status = draw(st.sampled_from(["active", "active", "trialing", "past_due", "paused"]))
        if kind in ("start", "update", "renew"):
            builder = {"start": b.started, "update": b.updated, "renew": b.renewed}[kind]
            events.append(builder(day, sub=sub, customer=customer, items=[it], status=status, currency=currency))
        elif kind == "cancel":
            events.append(b.canceled(day, sub=sub, customer=customer))
        elif kind == "schedule":
            events.append(b.cancel_scheduled(day, _day(draw(st.integers(0, DAYS))), sub=sub, customer=customer))
        elif kind == "withdraw":
            events.append(b.cancel_withdrawn(day, sub=sub, customer=customer))
        elif kind == "fail":
            events.append(b.payment_failed(day, sub=sub, customer=customer))
        else:
            events.append(b.paid(day, sub=sub, customer=customer))
    return events


@st.composite
def business(draw: st.DrawFn) -> tuple[list, MrrSettings]:
    events = []
    for n in range(draw(st.integers(1, 5))):
        events.extend(draw(customer_history(f"c{n}")))
    rates = [b.event("fx.rate_published", _day(0), base="EUR", quote="USD", rate="1.1",
                     effective_date="2024-01-01"),
             b.event("fx.rate_published", _day(0), base="USD", quote="JPY", rate="150",
                     effective_date="2024-01-01"),
             b.event("fx.rate_published", _day(200), base="EUR", quote="USD", rate="1.25",
                     effective_date="2024-07-01")]
    order = draw(st.permutations(events + rates))
    mrr_settings = MrrSettings(
        churn_recognition=draw(st.sampled_from(["at_period_end", "on_request"])),
        past_due_grace_days=draw(st.sampled_from([None, 0, 10])),
        once_discounts_reduce_mrr=draw(st.booleans()),
        classification_window_seconds=draw(st.sampled_from([0, 0, 3600 * 13])),
    )
    return list(order), mrr_settings


def _month_starts() -> list[dt.datetime]:
    return [dt.datetime(2024 + m // 12, m % 12 + 1, 1, tzinfo=dt.timezone.utc) for m in range(16)]


PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(business())
def test_every_monthly_bridge_balances_to_the_cent(data: tuple) -> None:
    events, mrr_settings = data
    timelines = compute_all(events, mrr_settings)
    months = _month_starts()
    eps = dt.timedelta(microseconds=1)
    for t in timelines.values():
        assert changes_balance(t)
        for start, end in zip(months, months[1:]):
            opening = mrr_at(t, start - eps)
            closing = mrr_at(t, end - eps)
            moved = sum(m.amount for m in t.movements if start <= m.effective_at < end)
            fx = sum(f.amount for f in t.fx_impacts if start <= f.effective_at < end)
            assert opening + moved + fx == closing


@PROPS
@given(business(), st.randoms(use_true_random=False))
def test_incremental_equals_from_scratch(data: tuple, rnd: random.Random) -> None:
    events, mrr_settings = data
    fx = fx_from(events)
    for customer, own in group_by_customer(events).items():
        engine = CustomerEngine(customer, mrr_settings, fx)
        i = 0
        while i < len(own):
            step = rnd.randint(1, 3)
            timeline = engine.apply(own[i : i + step])
            i += step
        assert timeline == compute_timeline(customer, own, mrr_settings, fx)


@PROPS
@given(business(), st.randoms(use_true_random=False))
def test_interleaving_customers_differently_changes_nothing(data: tuple, rnd: random.Random) -> None:
    events, mrr_settings = data
    per_customer = group_by_customer(events)
    queues = [list(v) for v in per_customer.values()] + [[e for e in events if not hasattr(e, "customer_id")]]
    shuffled = []
    while any(queues):
        queue = rnd.choice([q for q in queues if q])
        shuffled.append(queue.pop(0))
    assert compute_all(shuffled, mrr_settings) == compute_all(events, mrr_settings)


def test_empty_fx_table_is_allowed() -> None:
    assert compute_timeline("c", [], MrrSettings(), FxTable()).movements == ()
