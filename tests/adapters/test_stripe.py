"""Stripe adapter: signature verification and the mapping of each documented event shape."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.stripe import (
    MAPPED_TYPES,
    StripeMapping,
    StripeMappingError,
    StripeSignatureError,
    map_event,
    verify_and_map,
)
from ledger.embedded import EmbeddedLedger
from ledger.events import (
    CancellationScheduled,
    CancellationWithdrawn,
    InvoicePaid,
    InvoicePaymentFailed,
    RefundIssued,
    SubscriptionCanceled,
    SubscriptionRenewed,
    SubscriptionStarted,
    SubscriptionUpdated,
    encode_event,
)
from ledger.validation import decode_event

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec_test_secret"
NOW = 1_720_000_000  # 2024-07-03: after every fixture's `created`
NOW_DT = dt.datetime.fromtimestamp(NOW, dt.UTC)
UTC = dt.UTC


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(), parse_float=Decimal)


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(payload: bytes, timestamp: int = NOW, secret: str = SECRET) -> str:
    """The header Stripe sends: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<payload>">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def mapped(name: str) -> StripeMapping:
    payload = raw(name)
    return verify_and_map(payload, sign(payload), SECRET, now=NOW)


def at(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def monthly_mrr(terms: Any) -> Fraction:
    """MRR_SPEC §2 for one subscription's terms (licensed items, discount forever/repeating)."""
    factor = {"year": Fraction(1, 12), "month": Fraction(1), "week": Fraction(52, 12),
              "day": Fraction(365, 12)}
    total = sum(
        (i.unit_amount * i.quantity * factor[i.interval] / i.interval_count
         for i in terms.items if i.usage_type == "licensed"),
        Fraction(0),
    )
    d = terms.discount
    if d is not None and d.duration != "once":
        if d.kind == "percent":
            total -= total * Fraction(str(d.value)) / 100
        else:
            first = next(i for i in terms.items if i.usage_type == "licensed")
            total -= Fraction(int(d.value)) * factor[first.interval] / first.interval_count
    return max(total, Fraction(0))


# --- fixtures ------------------------------------------------------------------------------------


def test_multi_item_subscription_with_coupon() -> None:
    m = mapped("subscription_created_multi_item_coupon")
    assert (m.stripe_event_id, m.stripe_event_type, m.ignored) == (
        "evt_1OpMultiItemCoupon0001", "customer.subscription.created", False)
    assert m.warnings == []  # `discounts: [id]` repeats the expanded `discount`
    [event] = m.events
    assert isinstance(event, SubscriptionStarted)
    assert event.event_id == "evt_1OpMultiItemCoupon0001"
    assert (event.customer_id, event.subscription_id, event.source) == (
        "cus_Multi", "sub_1OpMulti", "stripe")
    assert event.occurred_at == at(2024, 3, 1)
    t = event.terms
    assert (t.status, t.currency) == ("active", "USD")
    assert [(i.price_id, i.unit_amount, i.quantity, i.interval, i.interval_count, i.usage_type)
            for i in t.items] == [
        ("price_seats_monthly", 1500, 10, "month", 1, "licensed"),
        ("price_addon_quarterly", 9000, 1, "month", 3, "licensed"),
        ("price_api_calls", 0, 0, "month", 1, "metered"),
    ]
    assert t.discount is not None
    assert (t.discount.kind, t.discount.value, t.discount.duration,
            t.discount.duration_in_intervals, t.discount.code) == (
        "percent", Decimal("20"), "repeating", 3, "SPRING20")
    assert (t.current_period_start, t.current_period_end) == (at(2024, 3, 1), at(2024, 4, 1))
    # 15.00×10 + 90.00/3 = 180.00, less 20 % = 144.00; the metered item adds nothing.
    assert monthly_mrr(t) == 14400


def test_annual_price_with_amount_coupon_new_api_shapes() -> None:
    [event] = mapped("subscription_created_annual").events
    assert isinstance(event, SubscriptionStarted)
    assert event.customer_id == "cus_Annual"  # expanded customer object
    t = event.terms
    assert t.currency == "EUR"
    assert [(i.unit_amount, i.quantity, i.interval) for i in t.items] == [(120000, 2, "year")]
    # periods from the item (API >= 2025-03-31), coupon from discount.source.coupon
    assert (t.current_period_start, t.current_period_end) == (at(2024, 3, 1), at(2025, 3, 1))
    assert t.discount is not None
    assert (t.discount.kind, t.discount.value, t.discount.duration, t.discount.code) == (
        "amount", Decimal(10000), "forever", "LAUNCH100")
    assert monthly_mrr(t) == Fraction(240000 - 10000, 12)


def test_trial_then_conversion_is_a_renewal() -> None:
    [started] = mapped("subscription_created_trial").events
    assert isinstance(started, SubscriptionStarted)
    assert started.terms.status == "trialing"
    assert started.terms.trial_end == at(2024, 3, 15)
    [renewed] = mapped("subscription_updated_trial_converted").events
    assert isinstance(renewed, SubscriptionRenewed)
    assert renewed.terms.status == "active"
    assert renewed.terms.current_period_start == at(2024, 3, 15)
    assert renewed.occurred_at == at(2024, 3, 15)
    assert monthly_mrr(renewed.terms) == 2900


def test_cancel_at_period_end_schedules_the_cancellation() -> None:
    m = mapped("subscription_updated_cancel_at_period_end")
    updated, scheduled = m.events
    assert isinstance(updated, SubscriptionUpdated)
    assert updated.terms.status == "active"
    assert isinstance(scheduled, CancellationScheduled)
    assert scheduled.event_id == "evt_1PqCancelScheduled:2"
    assert scheduled.cancel_at == at(2024, 4, 1)
    assert scheduled.occurred_at == updated.occurred_at == at(2024, 3, 9, 16)


def test_cancel_at_period_end_without_cancel_at_uses_the_period_end() -> None:
    event = load("subscription_updated_cancel_at_period_end")
    event["data"]["object"]["cancel_at"] = None
    _, scheduled = map_event(event, now=NOW_DT).events
    assert isinstance(scheduled, CancellationScheduled)
    assert scheduled.cancel_at == at(2024, 4, 1)


def test_withdrawn_cancellation() -> None:
    event = load("subscription_updated_cancel_at_period_end")
    sub = event["data"]["object"]
    sub.update(cancel_at=None, cancel_at_period_end=False, canceled_at=None)
    event["data"]["previous_attributes"] = {"cancel_at": 1711929600, "cancel_at_period_end": True}
    updated, withdrawn = map_event(event, now=NOW_DT).events
    assert isinstance(updated, SubscriptionUpdated)
    assert isinstance(withdrawn, CancellationWithdrawn)
    assert withdrawn.event_id == f"{event['id']}:2"


def test_past_due_legacy_shape() -> None:
    [event] = mapped("subscription_updated_past_due").events
    assert isinstance(event, SubscriptionUpdated)
    assert event.terms.status == "past_due"
    assert event.terms.current_period_start == at(2024, 4, 1)  # top-level period (old API)
    assert monthly_mrr(event.terms) == 9900  # past due still counts (MRR_SPEC §2)


def test_unpaid_counts_as_past_due() -> None:
    event = load("subscription_updated_past_due")
    event["data"]["object"]["status"] = "unpaid"
    [mapped_event] = map_event(event, now=NOW_DT).events
    assert mapped_event.terms.status == "past_due"  # type: ignore[attr-defined]


def test_deleted_cancels() -> None:
    [event] = mapped("subscription_deleted").events
    assert isinstance(event, SubscriptionCanceled)
    assert (event.subscription_id, event.customer_id, event.occurred_at) == (
        "sub_1PqCancel", "cus_Cancel", at(2024, 4, 1))


@pytest.mark.parametrize("kind", ["paused", "resumed", "trial_will_end"])
def test_paused_resumed_trial_will_end_restate_the_terms(kind: str) -> None:
    event = load("subscription_created_trial")
    event["type"] = f"customer.subscription.{kind}"
    event["data"]["object"]["status"] = {"paused": "paused", "resumed": "active"}.get(
        kind, "trialing")
    [mapped_event] = map_event(event, now=NOW_DT).events
    assert isinstance(mapped_event, SubscriptionUpdated)
    assert mapped_event.terms.status == event["data"]["object"]["status"]


@pytest.mark.parametrize("status", ["incomplete", "incomplete_expired"])
def test_incomplete_subscriptions_are_ignored(status: str) -> None:
    event = load("subscription_created_trial")
    event["data"]["object"]["status"] = status
    m = map_event(event, now=NOW_DT)
    assert m.ignored and m.events == [] and status in (m.reason or "")


def test_invoice_paid_new_api_parent() -> None:
    [event] = mapped("invoice_paid").events
    assert isinstance(event, InvoicePaid)
    assert (event.subscription_id, event.invoice_id, event.amount_paid, event.currency) == (
        "sub_1PqTrial", "in_1PqTrialFirst", 2900, "USD")
    assert event.event_id == "evt_1PqInvoicePaid"


def test_invoice_payment_failed_legacy_subscription_field() -> None:
    [event] = mapped("invoice_payment_failed").events
    assert isinstance(event, InvoicePaymentFailed)
    assert (event.customer_id, event.subscription_id, event.invoice_id, event.amount_due) == (
        "cus_PastDue", "sub_1OpPastDue", "in_1OpPastDue", 9900)


def test_one_off_invoice_is_ignored() -> None:
    event = load("invoice_paid")
    event["data"]["object"]["parent"] = None
    m = map_event(event, now=NOW_DT)
    assert m.ignored and "no subscription" in (m.reason or "")


def test_charge_refunded_maps_this_refund_only() -> None:
    [event] = mapped("charge_refunded").events
    assert isinstance(event, RefundIssued)
    # amount_refunded 3000 now, 1000 before: this refund is 2000; no charge.invoice -> charge id
    assert (event.invoice_id, event.amount, event.currency, event.customer_id) == (
        "ch_3PqRefund", 2000, "USD", "cus_Cancel")


def test_charge_refunded_legacy_invoice_reference() -> None:
    event = load("charge_refunded")
    event["data"]["object"]["invoice"] = "in_1PqOld"
    del event["data"]["previous_attributes"]
    [refund] = map_event(event, now=NOW_DT).events
    assert (refund.invoice_id, refund.amount) == ("in_1PqOld", 3000)  # type: ignore[attr-defined]


def test_isk_amounts_are_rescaled_to_cldr_minor_units() -> None:
    event = load("invoice_paid")
    event["data"]["object"].update(currency="isk", amount_paid=500000)
    [paid] = map_event(event, now=NOW_DT).events
    assert (paid.amount_paid, paid.currency) == (5000, "ISK")  # type: ignore[attr-defined]


def test_fractional_unit_amount_decimal_is_folded_into_the_quantity() -> None:
    event = load("subscription_created_trial")
    price = event["data"]["object"]["items"]["data"][0]["price"]
    price.update(unit_amount=None, unit_amount_decimal="33.335")
    event["data"]["object"]["items"]["data"][0]["quantity"] = 3
    [started] = map_event(event, now=NOW_DT).events
    [item] = started.terms.items  # type: ignore[attr-defined]
    assert (item.unit_amount, item.quantity) == (100, 1)  # 33.335 × 3 = 100.005 -> 100


def test_unexpanded_discount_ids_are_a_warning() -> None:
    event = load("subscription_created_trial")
    event["data"]["object"]["discounts"] = ["di_unexpanded"]
    m = map_event(event, now=NOW_DT)
    assert m.events[0].terms.discount is None  # type: ignore[attr-defined]
    assert any("di_unexpanded" in w for w in m.warnings)


def test_tiered_prices_are_refused_with_the_field() -> None:
    event = load("subscription_created_trial")
    price = event["data"]["object"]["items"]["data"][0]["price"]
    price.update(unit_amount=None, unit_amount_decimal=None, billing_scheme="tiered")
    with pytest.raises(StripeMappingError) as exc:
        map_event(event, now=NOW_DT)
    assert exc.value.path == "data.object.items.data[0].price.billing_scheme"


def test_a_mapped_event_the_ledger_would_reject_is_an_error() -> None:
    event = load("invoice_paid")
    event["data"]["object"]["currency"] = "zzz"
    with pytest.raises(StripeMappingError, match="currency"):
        map_event(event, now=NOW_DT)


# --- unknown types, validation, idempotency ------------------------------------------------------


def test_unknown_type_is_ignored_not_failed() -> None:
    payload = json.dumps({"id": "evt_cus", "object": "event", "type": "customer.created",
                          "created": NOW, "data": {"object": {"id": "cus_1"}}}).encode()
    m = verify_and_map(payload, sign(payload), SECRET, now=NOW)
    assert (m.ignored, m.events, m.stripe_event_type) == (True, [], "customer.created")
    assert m.reason == "event type not mapped"
    assert "customer.created" not in MAPPED_TYPES


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_every_fixture_maps_to_events_that_pass_validation(name: str) -> None:
    m = mapped(name)
    assert not m.ignored and m.events
    assert m.stripe_event_type in MAPPED_TYPES
    for event in m.events:
        assert decode_event(encode_event(event), now=NOW_DT) == event
    assert [e.event_id for e in m.events] == [
        m.stripe_event_id, *(f"{m.stripe_event_id}:{n}" for n in range(2, len(m.events) + 1))]


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_mapping_twice_gives_identical_events(name: str) -> None:
    first, second = mapped(name), mapped(name)
    assert [encode_event(e) for e in first.events] == [encode_event(e) for e in second.events]


async def test_replayed_webhook_is_a_duplicate_on_the_ledger(tmp_path: Path) -> None:
    payload = raw("subscription_updated_cancel_at_period_end")
    ledger = EmbeddedLedger(tmp_path / "ledger.sqlite")
    try:
        original = verify_and_map(payload, sign(payload), SECRET, now=NOW)
        first = await ledger.append_many(original.events)
        retry = verify_and_map(payload, sign(payload, NOW + 60), SECRET, now=NOW + 60)
        second = await ledger.append_many(retry.events)
    finally:
        await ledger.close()
    assert [r.status for r in first] == ["accepted", "accepted"]
    assert [r.status for r in second] == ["duplicate", "duplicate"]
    assert [r.offset for r in second] == [r.offset for r in first]


# --- signatures ----------------------------------------------------------------------------------


def test_valid_signature_with_several_v1_signatures() -> None:
    payload = raw("invoice_paid")
    header = sign(payload, secret="whsec_old") + "," + sign(payload).split(",")[1]
    assert verify_and_map(payload, header, SECRET, now=NOW).events


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=abc,v1=00",
        f"t={NOW}",
        f"t={NOW},v0=" + "0" * 64,
        f"t={NOW},v1=" + "0" * 64,
    ],
)
def test_invalid_signature_headers(header: str) -> None:
    with pytest.raises(StripeSignatureError, match="invalid Stripe-Signature"):
        verify_and_map(raw("invoice_paid"), header, SECRET, now=NOW)


def test_wrong_secret_or_tampered_payload() -> None:
    payload = raw("invoice_paid")
    with pytest.raises(StripeSignatureError):
        verify_and_map(payload, sign(payload, secret="whsec_other"), SECRET, now=NOW)
    tampered = payload.replace(b"2900", b"2901")
    with pytest.raises(StripeSignatureError):
        verify_and_map(tampered, sign(payload), SECRET, now=NOW)


def test_expired_timestamp() -> None:
    payload = raw("invoice_paid")
    header = sign(payload, NOW - 301)
    with pytest.raises(StripeSignatureError, match="expired"):
        verify_and_map(payload, header, SECRET, now=NOW)
    assert verify_and_map(payload, header, SECRET, now=NOW, tolerance=600).events
    assert verify_and_map(payload, sign(payload, NOW - 300), SECRET, now=NOW).events


def test_signed_but_malformed_payload_is_a_mapping_error() -> None:
    payload = b'{"id": "evt_1", "object": "event"'
    with pytest.raises(StripeMappingError, match="malformed JSON"):
        verify_and_map(payload, sign(payload), SECRET, now=NOW)
    payload = json.dumps({"object": "event", "id": "evt_1", "type": "invoice.paid",
                          "created": NOW, "data": {}}).encode()
    with pytest.raises(StripeMappingError, match="data.object"):
        verify_and_map(payload, sign(payload), SECRET, now=NOW)


def test_fixtures_are_not_mutated_by_mapping() -> None:
    event = load("subscription_created_multi_item_coupon")
    before = copy.deepcopy(event)
    map_event(event, now=NOW_DT)
    assert event == before
