"""Every validation rule, each with the exact message producers see."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from ledger.events import FxRatePublished, InvoicePaid, SubscriptionStarted
from ledger.validation import EventValidationError, check_rules, decode_event, validate_batch
from tests.ledger.factory import HORIZON, NOW, fx, invoice_paid, started, with_


def reject(raw: Any, **kwargs: Any) -> str:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("horizon", HORIZON)
    with pytest.raises(EventValidationError) as info:
        decode_event(raw if isinstance(raw, (bytes, str)) else json.dumps(raw), **kwargs)
    return str(info.value)


def test_valid_event_decodes_to_its_struct() -> None:
    event = decode_event(json.dumps(started()), now=NOW, horizon=HORIZON)
    assert isinstance(event, SubscriptionStarted)
    assert event.terms.items[0].unit_amount == 10000
    assert event.occurred_at == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert event.schema_version == 1


@pytest.mark.parametrize("raw", [json.dumps(started()), json.dumps(started()).encode(), started()])
def test_accepts_bytes_str_and_dict(raw: Any) -> None:
    assert decode_event(raw, now=NOW).event_id == "evt-1"


def test_dict_input_is_not_mutated() -> None:
    raw = started(recorded_at="2024-03-01T00:00:00Z")
    decode_event(raw, now=NOW)
    assert raw["recorded_at"] == "2024-03-01T00:00:00Z"


def test_producer_recorded_at_is_ignored() -> None:
    event = decode_event(json.dumps(started(recorded_at="2020-01-01T00:00:00Z")), now=NOW)
    assert event.recorded_at is None
    # Even garbage is ignored rather than rejected: the field is not the producer's.
    assert decode_event(json.dumps(started(recorded_at="garbage")), now=NOW).recorded_at is None


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decode_event(started(), now=dt.datetime(2024, 1, 1))


SCHEMA_CASES = [
    # (raw, message)
    (with_(started(), "terms.items.0.unit_amount", -1), "terms.items[0].unit_amount: must be >= 0"),
    (with_(started(), "terms.items.0.quantity", -3), "terms.items[0].quantity: must be >= 0"),
    (
        with_(started(), "terms.items.0.interval_count", 0),
        "terms.items[0].interval_count: must be >= 1",
    ),
    (
        with_(started(), "terms.items.0.unit_amount", 2**60),
        "terms.items[0].unit_amount: must be <= 9007199254740991",
    ),
    (
        with_(started(), "terms.items.0.unit_amount", "100"),
        'terms.items[0].unit_amount: expected integer, got string "100"',
    ),
    (
        with_(started(), "terms.items.0.unit_amount", 12.5),
        "terms.items[0].unit_amount: expected integer, got number 12.5",
    ),
    (
        with_(started(), "terms.items.0.unit_amount", None),
        "terms.items[0].unit_amount: expected integer, got null",
    ),
    (with_(started(), "customer_id", 42), "customer_id: expected string, got integer 42"),
    (with_(started(), "terms.items", {"pro": 1}), "terms.items: expected array, got object"),
    (with_(started(), "terms.items", []), "terms.items: must have at least 1 item"),
    (with_(started(), "event_id", ""), "event_id: must have at least 1 character"),
    (with_(started(), "event_id", "x" * 129), "event_id: must have at most 128 characters"),
    (
        with_(started(), "terms.status", "cancelled"),
        "terms.status: must be one of 'active', 'past_due', 'paused', 'trialing', got 'cancelled'",
    ),
    (
        with_(started(), "terms.items.0.interval", "fortnight"),
        "terms.items[0].interval: must be one of 'day', 'month', 'week', 'year', got 'fortnight'",
    ),
    (
        with_(started(), "terms.items.0.usage_type", "tiered"),
        "terms.items[0].usage_type: must be one of 'licensed', 'metered', got 'tiered'",
    ),
    (
        with_(started(), "occurred_at", "2024-03-01T00:00:00"),
        "occurred_at: must include a UTC offset",
    ),
    (
        with_(started(), "terms.trial_end", "2024-03-01T00:00:00"),
        "terms.trial_end: must include a UTC offset",
    ),
    (
        with_(started(), "occurred_at", "yesterday"),
        "occurred_at: must be an RFC 3339 timestamp such as 2024-03-01T00:00:00Z",
    ),
    (
        with_(started(), "occurred_at", 1709251200),
        "occurred_at: expected RFC 3339 timestamp, got integer 1709251200",
    ),
    (with_(started(), "surprise", 1), "surprise: unknown field"),
    (with_(started(), "terms.items.0.tax", 1), "terms.items[0].tax: unknown field"),
    ({k: v for k, v in started().items() if k != "event_id"}, "event_id: is required"),
    ({k: v for k, v in started().items() if k != "customer_id"}, "customer_id: is required"),
    (
        with_(started(), "terms", {"status": "active", "items": started()["terms"]["items"]}),
        "terms.currency: is required",
    ),
    ({k: v for k, v in started().items() if k != "type"}, "type: is required"),
    (
        with_(started(), "type", "subscription.exploded"),
        "type: unknown event type 'subscription.exploded'",
    ),
    (with_(started(), "type", 7), "type: expected string, got integer"),
    (with_(started(), "schema_version", 2), "schema_version: unsupported version 2 (supported: 1)"),
    (with_(started(), "schema_version", 0), "schema_version: unsupported version 0 (supported: 1)"),
    (with_(started(), "schema_version", "1"), "schema_version: expected integer, got string"),
    (
        with_(fx(), "rate", "one"),
        'rate: must be a decimal number (a JSON number or a string such as "12.5")',
    ),
    (
        with_(fx(), "effective_date", "2024-02-30"),
        "effective_date: must be a date such as 2024-03-01",
    ),
    (
        {
            "type": "acquisition.cost_recorded",
            "event_id": "a",
            "occurred_at": "2024-03-01T00:00:00Z",
            "amount": 100,
            "currency": "USD",
            "period": "2024-3",
            "channel": "ads",
        },
        "period: must be a month such as 2024-03 (YYYY-MM)",
    ),
    (
        {
            "type": "customer.attributes_set",
            "event_id": "a",
            "occurred_at": "2024-03-01T00:00:00Z",
            "customer_id": "c",
            "attributes": {"country": 1},
        },
        "attributes[...]: expected string, got integer",
    ),
    (
        {
            "type": "fx.rate_published",
            "event_id": "a",
            "occurred_at": "2024-03-01T00:00:00Z",
            "customer_id": "c",
            "base": "EUR",
            "quote": "USD",
            "rate": "1",
            "effective_date": "2024-03-01",
        },
        "customer_id: unknown field",
    ),
]


@pytest.mark.parametrize(("raw", "message"), SCHEMA_CASES)
def test_schema_rules(raw: dict[str, Any], message: str) -> None:
    assert reject(raw) == message


RULE_CASES = [
    (with_(started(), "terms.currency", "XYZ"), "terms.currency: unknown currency 'XYZ'"),
    (
        with_(started(), "terms.currency", "usd"),
        "terms.currency: currency codes are upper-case: 'USD', not 'usd'",
    ),
    (with_(started(), "terms.currency", "XXX"), "terms.currency: unknown currency 'XXX'"),
    (with_(started(), "terms.currency", "US"), "terms.currency: must have at least 3 characters"),
    (with_(invoice_paid(), "currency", "ABC"), "currency: unknown currency 'ABC'"),
    (
        {
            "type": "refund.issued",
            "event_id": "r",
            "occurred_at": "2024-03-01T00:00:00Z",
            "customer_id": "c",
            "invoice_id": "in",
            "amount": 5,
            "currency": "QQQ",
        },
        "currency: unknown currency 'QQQ'",
    ),
    (
        {
            "type": "acquisition.cost_recorded",
            "event_id": "a",
            "occurred_at": "2024-03-01T00:00:00Z",
            "amount": 100,
            "currency": "ZZZ",
            "period": "2024-03",
            "channel": "ads",
        },
        "currency: unknown currency 'ZZZ'",
    ),
    (with_(fx(), "base", "ABC"), "base: unknown currency 'ABC'"),
    (with_(fx(), "quote", "ABC"), "quote: unknown currency 'ABC'"),
    (with_(fx(), "quote", "EUR"), "quote: must differ from base (EUR)"),
    (with_(fx(), "rate", "0"), "rate: must be a finite number > 0, got 0"),
    (with_(fx(), "rate", -1.5), "rate: must be a finite number > 0, got -1.5"),
    (with_(fx(), "rate", "Infinity"), "rate: must be a finite number > 0, got Infinity"),
    (
        with_(started(), "terms.discount", {"kind": "percent", "value": 0, "duration": "forever"}),
        "terms.discount.value: must be in (0, 100] for a percent discount, got 0",
    ),
    (
        with_(
            started(),
            "terms.discount",
            {"kind": "percent", "value": "100.01", "duration": "forever"},
        ),
        "terms.discount.value: must be in (0, 100] for a percent discount, got 100.01",
    ),
    (
        with_(
            started(), "terms.discount", {"kind": "percent", "value": "NaN", "duration": "forever"}
        ),
        "terms.discount.value: must be a finite number",
    ),
    (
        with_(
            started(), "terms.discount", {"kind": "amount", "value": "12.5", "duration": "forever"}
        ),
        "terms.discount.value: must be a positive integer of minor units for an amount discount,"
        " got 12.5",
    ),
    (
        with_(
            started(), "terms.discount", {"kind": "amount", "value": -100, "duration": "forever"}
        ),
        "terms.discount.value: must be a positive integer of minor units for an amount discount,"
        " got -100",
    ),
    (
        with_(
            started(), "terms.discount", {"kind": "amount", "value": 100, "duration": "repeating"}
        ),
        "terms.discount.duration_in_intervals: is required when duration is 'repeating'",
    ),
    (
        with_(
            started(),
            "terms.discount",
            {"kind": "amount", "value": 100, "duration": "once", "duration_in_intervals": 3},
        ),
        "terms.discount.duration_in_intervals: is only allowed when duration is 'repeating'",
    ),
    (
        with_(started(), "terms.discount", {"kind": "percent", "value": True, "duration": "once"}),
        "terms.discount.value: expected decimal number, got boolean true",
    ),
    (
        with_(
            with_(started(), "terms.current_period_start", "2024-04-01T00:00:00Z"),
            "terms.current_period_end",
            "2024-03-01T00:00:00Z",
        ),
        "terms.current_period_end: must be after current_period_start",
    ),
    (
        with_(started(), "occurred_at", "1969-12-31T23:59:59Z"),
        "occurred_at: must not be before 1970-01-01T00:00:00+00:00",
    ),
    (
        with_(started(), "occurred_at", "2025-06-02T00:00:01Z"),
        "occurred_at: 2025-06-02T00:00:01+00:00 is more than 366 days in the future "
        "(latest accepted: 2025-06-02T00:00:00+00:00)",
    ),
]


@pytest.mark.parametrize(("raw", "message"), RULE_CASES)
def test_rules_the_structs_cannot_express(raw: dict[str, Any], message: str) -> None:
    assert reject(raw) == message


@pytest.mark.parametrize(
    "discount",
    [
        {"kind": "percent", "value": 100, "duration": "forever"},
        {"kind": "percent", "value": "0.01", "duration": "once"},
        {"kind": "percent", "value": 33.3, "duration": "repeating", "duration_in_intervals": 3},
        {"kind": "amount", "value": 500, "duration": "forever", "code": "WELCOME"},
        {"kind": "amount", "value": "500", "duration": "forever"},
    ],
)
def test_valid_discounts(discount: dict[str, Any]) -> None:
    event = decode_event(json.dumps(with_(started(), "terms.discount", discount)), now=NOW)
    assert event.terms.discount.value == Decimal(str(discount["value"]))  # exact, never via float


def test_json_numbers_stay_exact_decimals() -> None:
    event = decode_event(
        '{"type":"fx.rate_published","event_id":"f","occurred_at":"2024-03-01T00:00:00Z",'
        '"base":"EUR","quote":"USD","rate":1.0850000000000000001,"effective_date":"2024-03-01"}',
        now=NOW,
    )
    assert isinstance(event, FxRatePublished)
    assert event.rate == Decimal("1.0850000000000000001")


def test_horizon_edge_is_accepted_and_configurable() -> None:
    assert decode_event(
        with_(started(), "occurred_at", "2025-06-02T00:00:00Z"), now=NOW, horizon=HORIZON
    )
    assert reject(
        with_(started(), "occurred_at", "2024-06-02T00:00:00Z"), horizon=dt.timedelta(hours=1)
    ) == (
        "occurred_at: 2024-06-02T00:00:00+00:00 is more than 1:00:00 in the future "
        "(latest accepted: 2024-06-01T01:00:00+00:00)"
    )


def test_offsets_other_than_utc_are_accepted() -> None:
    event = decode_event(with_(invoice_paid(), "occurred_at", "2024-03-01T09:00:00+09:00"), now=NOW)
    assert isinstance(event, InvoicePaid)
    assert event.occurred_at == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"type": "subscription.started",', "body: malformed JSON: input data was truncated"),
        ("{} trailing", "body: malformed JSON: trailing characters (byte 4)"),
        (b'{"event_id": "\xff"}', "body: malformed JSON: invalid UTF-8"),
        ("[1, 2]", "body: expected a JSON object, got array"),
        ('"event"', "body: expected a JSON object, got string"),
        ("  ", "body: is empty"),
    ],
)
def test_malformed_bodies(raw: str | bytes, message: str) -> None:
    assert reject(raw) == message


def test_body_size_limit() -> None:
    big = started(source="x" * 70000)
    size = len(json.dumps(big, separators=(",", ":")).encode())
    assert (
        reject(json.dumps(big, separators=(",", ":")))
        == f"body: {size} bytes exceeds the 65536-byte limit"
    )
    assert reject(big | {"event_id": "e"}, max_bytes=1000).startswith("body: ")
    # just under the limit passes
    padded = started(
        source="x" * (65536 - len(json.dumps(started(source=""), separators=(",", ":"))))
    )
    assert len(json.dumps(padded, separators=(",", ":"))) == 65536
    assert decode_event(json.dumps(padded, separators=(",", ":")), now=NOW)


def test_dict_bodies_are_measured_as_json() -> None:
    with pytest.raises(
        EventValidationError, match=r"^body: \d+ bytes exceeds the 65536-byte limit$"
    ):
        decode_event(started(source="x" * 70000), now=NOW)


def test_error_carries_path_and_reason() -> None:
    with pytest.raises(EventValidationError) as info:
        decode_event(with_(started(), "terms.items.0.unit_amount", -1), now=NOW)
    assert (info.value.path, info.value.reason) == ("terms.items[0].unit_amount", "must be >= 0")


def test_validate_batch_keeps_good_events_and_reports_bad_ones() -> None:
    result = validate_batch(
        [
            json.dumps(started("a")),
            "{",
            json.dumps(with_(started("c"), "terms.currency", "XYZ")),
            fx(),
        ],
        now=NOW,
    )
    assert [index for index, _ in result.events] == [0, 3]
    assert [(index, str(error)) for index, error in result.errors] == [
        (1, "body: malformed JSON: input data was truncated"),
        (2, "terms.currency: unknown currency 'XYZ'"),
    ]


def test_check_rules_runs_on_structs() -> None:
    event = decode_event(started(), now=NOW)
    with pytest.raises(EventValidationError, match="occurred_at"):
        check_rules(event, now=NOW - dt.timedelta(days=1000), horizon=HORIZON)
