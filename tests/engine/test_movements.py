"""MRR_SPEC.md §3 and §4: customer MRR, movements and settings, one test per rule."""

from __future__ import annotations

from tests.engine.builders import (
    at, cancel_scheduled, cancel_withdrawn, canceled, item, paid, payment_failed, started, updated,
)
from tests.engine.helpers import changes_balance, moves, mrr_at, run


def test_first_mrr_is_new_business() -> None:
    t = run(started("2024-01-10", items=[item(5000)]))
    assert moves(t) == [("2024-01-10", "new_business", 5000)]


def test_upgrade_is_expansion_and_downgrade_is_contraction() -> None:
    t = run(
        started("2024-01-10", items=[item(5000)]),
        updated("2024-02-10", items=[item(5000, qty=3)]),
        updated("2024-03-10", items=[item(5000, qty=2)]),
    )
    assert moves(t) == [
        ("2024-01-10", "new_business", 5000),
        ("2024-02-10", "expansion", 10000),
        ("2024-03-10", "contraction", -5000),
    ]
    assert [(m.mrr_before, m.mrr_after) for m in t.movements] == [(0, 5000), (5000, 15000), (15000, 10000)]


def test_cancellation_is_churn_and_a_later_start_is_reactivation() -> None:
    t = run(
        started("2024-01-10", items=[item(5000)]),
        canceled("2024-03-01"),
        started("2024-06-01", sub="s2", items=[item(7000)]),
    )
    assert moves(t) == [
        ("2024-01-10", "new_business", 5000),
        ("2024-03-01", "churn", -5000),
        ("2024-06-01", "reactivation", 7000),
    ]


def test_second_subscription_is_expansion() -> None:
    t = run(started("2024-01-10", items=[item(5000)]), started("2024-02-01", sub="s2", items=[item(2000)]))
    assert moves(t)[1] == ("2024-02-01", "expansion", 2000)


def test_replacing_a_subscription_at_the_same_instant_is_one_movement() -> None:
    t = run(
        started("2024-01-10", items=[item(5000)]),
        canceled("2024-04-01"),
        started("2024-04-01", sub="s2", items=[item(8000)]),
    )
    assert moves(t) == [("2024-01-10", "new_business", 5000), ("2024-04-01", "expansion", 3000)]
    down = run(
        started("2024-01-10", items=[item(5000)]),
        started("2024-04-01", sub="s2", items=[item(3000)]),
        canceled("2024-04-01"),
    )
    assert moves(down)[1] == ("2024-04-01", "contraction", -2000)


def test_movement_keeps_the_causing_event_ids() -> None:
    a = started("2024-01-10", items=[item(5000)])
    b = canceled("2024-04-01")
    c = started("2024-04-01", sub="s2", items=[item(8000)])
    t = run(a, b, c)
    assert t.movements[1].event_ids == (b.event_id, c.event_id)


def test_trial_counts_zero_and_conversion_is_new_business() -> None:
    t = run(
        started("2024-01-01", status="trialing", items=[item(5000)]),
        updated("2024-01-15", status="active", items=[item(5000)]),
    )
    assert mrr_at(t, at("2024-01-10")) == 0
    assert moves(t) == [("2024-01-15", "new_business", 5000)]


def test_trial_conversion_after_churn_is_reactivation() -> None:
    t = run(
        started("2023-01-01", items=[item(5000)]),
        canceled("2023-06-01"),
        started("2024-01-01", sub="s2", status="trialing", items=[item(5000)]),
        updated("2024-01-15", sub="s2", status="active", items=[item(5000)]),
    )
    assert moves(t)[-1] == ("2024-01-15", "reactivation", 5000)


def test_pause_counts_zero_and_resume_restores() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        updated("2024-03-01", status="paused", items=[item(5000)]),
        updated("2024-05-01", status="active", items=[item(5000)]),
    )
    assert moves(t) == [
        ("2024-01-01", "new_business", 5000),
        ("2024-03-01", "churn", -5000),
        ("2024-05-01", "reactivation", 5000),
    ]


def test_past_due_counts_until_the_billing_system_cancels_without_grace() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        payment_failed("2024-02-01"),
        canceled("2024-04-01"),
    )
    assert mrr_at(t, at("2024-03-15")) == 5000
    assert moves(t)[-1] == ("2024-04-01", "churn", -5000)


def test_past_due_status_in_terms_still_counts() -> None:
    t = run(started("2024-01-01", items=[item(5000)]), updated("2024-02-01", status="past_due", items=[item(5000)]))
    assert moves(t) == [("2024-01-01", "new_business", 5000)]


def test_past_due_auto_churns_after_grace_days() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        payment_failed("2024-02-01T10:00"),
        payment_failed("2024-02-05T10:00", invoice="in2"),  # the clock runs from the first failure
        past_due_grace_days=14,
    )
    assert moves(t)[-1] == ("2024-02-15T10:00:00", "churn", -5000)
    assert t.movements[-1].event_ids == (t.movements[-1].event_ids[0],)


def test_payment_before_grace_ends_undoes_the_pending_auto_churn() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        payment_failed("2024-02-01"),
        paid("2024-02-10"),
        past_due_grace_days=14,
    )
    assert moves(t) == [("2024-01-01", "new_business", 5000)]


def test_payment_after_auto_churn_is_reactivation() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        payment_failed("2024-02-01"),
        paid("2024-03-01"),
        past_due_grace_days=14,
    )
    assert moves(t)[1:] == [("2024-02-15", "churn", -5000), ("2024-03-01", "reactivation", 5000)]


def test_cancel_at_period_end_churns_at_cancel_at_by_default() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        cancel_scheduled("2024-01-20", cancel_at="2024-02-01"),
    )
    assert moves(t)[-1] == ("2024-02-01", "churn", -5000)
    assert mrr_at(t, at("2024-01-25")) == 5000


def test_cancel_on_request_churns_when_scheduled() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        cancel_scheduled("2024-01-20", cancel_at="2024-02-01"),
        churn_recognition="on_request",
    )
    assert moves(t)[-1] == ("2024-01-20", "churn", -5000)
    assert len(t.movements) == 2


def test_withdrawn_cancellation_removes_the_scheduled_churn() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        cancel_scheduled("2024-01-20", cancel_at="2024-02-01"),
        cancel_withdrawn("2024-01-25"),
    )
    assert moves(t) == [("2024-01-01", "new_business", 5000)]


def test_withdrawal_under_on_request_restores_mrr_as_reactivation() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        cancel_scheduled("2024-01-20", cancel_at="2024-02-01"),
        cancel_withdrawn("2024-01-25"),
        churn_recognition="on_request",
    )
    assert moves(t)[1:] == [("2024-01-20", "churn", -5000), ("2024-01-25", "reactivation", 5000)]


def test_classification_window_groups_nearby_events_into_one_movement() -> None:
    events = (
        started("2024-01-01", items=[item(5000)]),
        canceled("2024-04-01T10:00:00"),
        started("2024-04-01T10:00:30", sub="s2", items=[item(6000)]),
    )
    assert moves(run(*events))[1:] == [
        ("2024-04-01T10:00:00", "churn", -5000),
        ("2024-04-01T10:00:30", "reactivation", 6000),
    ]
    assert moves(run(*events, classification_window_seconds=60))[1:] == [
        ("2024-04-01T10:00:00", "expansion", 1000)
    ]


def test_same_instant_events_in_recorded_order() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        updated("2024-02-01", items=[item(9000)]),
        updated("2024-02-01", items=[item(7000)]),
    )
    assert moves(t)[1] == ("2024-02-01", "expansion", 2000)


def test_every_change_balances_against_movements() -> None:
    t = run(
        started("2024-01-01", items=[item(5000)]),
        started("2024-01-01", sub="s2", items=[item(3000)]),
        updated("2024-02-01", items=[item(1000)]),
        cancel_scheduled("2024-02-10", cancel_at="2024-03-01", sub="s2"),
        canceled("2024-05-01"),
    )
    assert changes_balance(t)
    assert t.movements[-1].type == "churn"
