"""Ledger schema v1: the events the ledger accepts, as msgspec Structs.

One tagged union (`Event`, tag field ``type``) covers every event type of MRR_SPEC.md §1. The
Structs are the schema: decoding JSON into them is the first half of validation (types, required
fields, ranges); `ledger.validation` adds the checks a type cannot express (currency codes,
discount ranges, the future horizon, the body size).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION = 1

Id = Annotated[str, Meta(min_length=1, max_length=128)]
Instant = Annotated[dt.datetime, Meta(tz=True)]
# Integers stop at 2**53 - 1 so every JSON consumer (JavaScript included) reads them exactly and a
# hostile value such as 1e30 cannot reach (and overflow) the BIGINT columns of the projections.
MAX_SAFE_INTEGER = 2**53 - 1
MinorUnits = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
Count = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
CurrencyCode = Annotated[str, Meta(min_length=3, max_length=3)]
IntervalUnit = Literal["day", "week", "month", "year"]
Status = Literal["trialing", "active", "past_due", "paused"]
YearMonth = Annotated[str, Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


# gc=False on the event Structs: they hold only scalars, strings and lists/dicts of those, so they
# can never be in a reference cycle; untracked, the projector's cache of decoded events costs
# Python's cyclic garbage collector nothing to scan.
class Item(Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """One price on a subscription: `unit_amount` minor units per unit per billing interval."""

    price_id: Id
    unit_amount: MinorUnits
    quantity: Count
    interval: IntervalUnit
    interval_count: Annotated[int, Meta(ge=1)] = 1
    usage_type: Literal["licensed", "metered"] = "licensed"


class Discount(Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """A coupon: `value` is a percent in (0, 100] or minor units per invoice (kind `amount`)."""

    kind: Literal["percent", "amount"]
    value: Decimal
    duration: Literal["once", "repeating", "forever"]
    code: str | None = None
    duration_in_intervals: Annotated[int, Meta(ge=1)] | None = None


class Terms(Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """The full current state of a subscription (never a delta)."""

    status: Status
    currency: CurrencyCode
    items: Annotated[list[Item], Meta(min_length=1)]
    discount: Discount | None = None
    current_period_start: Instant | None = None
    current_period_end: Instant | None = None
    trial_end: Instant | None = None


class EventBase(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True, frozen=True, gc=False):
    """The envelope every event carries."""

    event_id: Id
    occurred_at: Instant
    schema_version: int = SCHEMA_VERSION
    recorded_at: Instant | None = None
    source: str | None = None


class CustomerEvent(EventBase, kw_only=True, frozen=True):
    """An event about one customer; `customer_id` is the Kafka key."""

    customer_id: Id


class CustomerAttributesSet(CustomerEvent, kw_only=True, frozen=True, tag="customer.attributes_set"):
    attributes: dict[str, str]


class SubscriptionStarted(CustomerEvent, kw_only=True, frozen=True, tag="subscription.started"):
    subscription_id: Id
    terms: Terms


class SubscriptionUpdated(CustomerEvent, kw_only=True, frozen=True, tag="subscription.updated"):
    subscription_id: Id
    terms: Terms


class SubscriptionRenewed(CustomerEvent, kw_only=True, frozen=True, tag="subscription.renewed"):
    subscription_id: Id
    terms: Terms


class CancellationScheduled(
    CustomerEvent, kw_only=True, frozen=True, tag="subscription.cancellation_scheduled"
):
    subscription_id: Id
    cancel_at: Instant


class CancellationWithdrawn(
    CustomerEvent, kw_only=True, frozen=True, tag="subscription.cancellation_withdrawn"
):
    subscription_id: Id


class SubscriptionCanceled(CustomerEvent, kw_only=True, frozen=True, tag="subscription.canceled"):
    subscription_id: Id


class InvoicePaymentFailed(CustomerEvent, kw_only=True, frozen=True, tag="invoice.payment_failed"):
    subscription_id: Id
    invoice_id: Id
    amount_due: MinorUnits
    currency: CurrencyCode


class InvoicePaid(CustomerEvent, kw_only=True, frozen=True, tag="invoice.paid"):
    subscription_id: Id
    invoice_id: Id
    amount_paid: MinorUnits
    currency: CurrencyCode


class RefundIssued(CustomerEvent, kw_only=True, frozen=True, tag="refund.issued"):
    invoice_id: Id
    amount: MinorUnits
    currency: CurrencyCode


class FxRatePublished(EventBase, kw_only=True, frozen=True, tag="fx.rate_published"):
    """Reference event (no customer): 1 `base` = `rate` `quote` from `effective_date` on."""

    base: CurrencyCode
    quote: CurrencyCode
    rate: Decimal
    effective_date: dt.date


class AcquisitionCostRecorded(
    EventBase, kw_only=True, frozen=True, tag="acquisition.cost_recorded"
):
    """Reference event (no customer): money spent to acquire customers in `period`."""

    amount: MinorUnits
    currency: CurrencyCode
    period: YearMonth
    channel: str


Event = Union[
    CustomerAttributesSet,
    SubscriptionStarted,
    SubscriptionUpdated,
    SubscriptionRenewed,
    CancellationScheduled,
    CancellationWithdrawn,
    SubscriptionCanceled,
    InvoicePaymentFailed,
    InvoicePaid,
    RefundIssued,
    FxRatePublished,
    AcquisitionCostRecorded,
]

EVENT_TYPES: dict[str, type] = {
    cls.__struct_config__.tag: cls for cls in Event.__args__  # type: ignore[attr-defined]
}

SUBSCRIPTION_TERMS_EVENTS = (SubscriptionStarted, SubscriptionUpdated, SubscriptionRenewed)
REFERENCE_EVENTS = (FxRatePublished, AcquisitionCostRecorded)


def event_type(event: EventBase) -> str:
    """The `type` tag of an event instance."""
    return type(event).__struct_config__.tag  # type: ignore[return-value]


def customer_of(event: EventBase) -> str | None:
    """The customer an event belongs to, or None for reference events."""
    return getattr(event, "customer_id", None)


_encoder = msgspec.json.Encoder(decimal_format="string")


def encode_event(event: EventBase) -> bytes:
    """Canonical JSON of an event (the bytes stored in the ledger)."""
    return _encoder.encode(event)


def json_schema() -> dict:
    """The JSON Schema of ledger events, generated from the Structs."""
    return msgspec.json.schema(Event)
