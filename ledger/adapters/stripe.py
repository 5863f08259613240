"""Stripe webhooks -> ledger events: signature verification, then a pure mapping.

Entry point for the HTTP route (`POST /v1/webhooks/stripe`)::

    verify_and_map(payload: bytes, signature_header: str, secret: str, *,
                   tolerance: int = 300, now: int | None = None) -> StripeMapping

- `payload` is the raw request body, byte for byte (the signature covers it); `signature_header`
  the `Stripe-Signature` header; `secret` the endpoint's signing secret (`whsec_…`).
- The header is checked with the stripe library (`stripe.WebhookSignature.verify_header`); the
  timestamp must be at most `tolerance` seconds older than `now` (Unix seconds, default the clock,
  also used as the validation clock). Failures raise `StripeSignatureError` (answer 400).
- A signed payload that cannot be mapped (malformed JSON, a missing field, a mapped event the
  ledger would reject) raises `StripeMappingError` with `path` and `reason` (answer 400/422).
- Otherwise it returns a `StripeMapping`: the Stripe event id and type, the ledger events (already
  validated by `ledger.validation.decode_event`, ready for `LedgerWriter.append_many`), and
  `ignored` + `reason` for event types that are not mapped or carry nothing for the ledger
  (acknowledge with 2xx and count; never fail). `warnings` lists what was mapped approximately.

Idempotency: the Stripe event id is the ledger `event_id` of the first ledger event; further
events of the same Stripe event get `<id>:2`, `<id>:3`, … The mapping is a pure function of the
payload, so a retried webhook maps to identical events, which the ledger reports as `duplicate`.
`occurred_at` is the Stripe event's `created` (UTC) for every event. Rules: docs/stripe.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import stripe

from ledger.adapters.stripe_common import (
    Mapped,
    StripeMappingError,
    StripeSignatureError,
    StripeWebhookError,
    derived_id,
    instant,
)
from ledger.adapters.stripe_payments import CHARGE_EVENTS, INVOICE_EVENTS, map_charge, map_invoice
from ledger.adapters.stripe_subscriptions import SUBSCRIPTION_EVENTS, map_subscription
from ledger.events import EventBase
from ledger.validation import EventValidationError, decode_event

__all__ = [
    "MAPPED_TYPES",
    "StripeMapping",
    "StripeMappingError",
    "StripeSignatureError",
    "StripeWebhookError",
    "map_event",
    "verify_and_map",
    "verify_signature",
]

DEFAULT_TOLERANCE = 300

_Mapper = Callable[[str, dict[str, Any], dict[str, Any], str], Mapped]
_MAPPERS: dict[str, _Mapper] = {
    **{t: map_subscription for t in SUBSCRIPTION_EVENTS},
    **{t: map_invoice for t in INVOICE_EVENTS},
    **{t: map_charge for t in CHARGE_EVENTS},
}
MAPPED_TYPES = frozenset(_MAPPERS)
"""The Stripe event types this adapter maps; every other type is acknowledged and ignored."""

_TIMESTAMP = re.compile(r"(?:^|,)\s*t=(\d+)\s*(?:,|$)")


@dataclass(frozen=True)
class StripeMapping:
    """The outcome of one verified Stripe webhook."""

    stripe_event_id: str
    stripe_event_type: str
    events: list[EventBase] = field(default_factory=list)
    ignored: bool = False
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def verify_and_map(
    payload: bytes,
    signature_header: str,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> StripeMapping:
    """Verify the `Stripe-Signature` header of `payload`, then map it (see the module docstring)."""
    now = int(time.time()) if now is None else now
    verify_signature(payload, signature_header, secret, tolerance=tolerance, now=now)
    try:
        event = json.loads(payload, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StripeMappingError("body", f"malformed JSON: {exc}") from None
    return map_event(event, now=dt.datetime.fromtimestamp(now, dt.UTC))


def verify_signature(
    payload: bytes, signature_header: str, secret: str, *, tolerance: int, now: int
) -> None:
    """Raise StripeSignatureError unless a `v1` signature of the header matches `payload` under
    `secret` and its timestamp `t` is no more than `tolerance` seconds before `now`."""
    try:
        # The stripe library checks the HMAC (constant-time); the age is checked here against
        # `now`, because the library only knows the wall clock.
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance=None)
    except stripe.SignatureVerificationError as exc:
        raise StripeSignatureError(f"invalid Stripe-Signature: {exc.user_message or exc}") from None
    except UnicodeDecodeError:
        raise StripeSignatureError("invalid Stripe-Signature: the body is not UTF-8") from None
    match = _TIMESTAMP.search(signature_header)
    timestamp = int(match[1]) if match else None
    if timestamp is None:
        raise StripeSignatureError("invalid Stripe-Signature: no timestamp")
    if tolerance and timestamp < now - tolerance:
        raise StripeSignatureError(
            f"expired Stripe-Signature: timestamp {timestamp} is {now - timestamp} s old "
            f"(tolerance {tolerance} s)"
        )


def map_event(event: Any, *, now: dt.datetime) -> StripeMapping:
    """Map an already verified, parsed Stripe event (a dict) to validated ledger events.

    `now` is the validation clock (bounds `occurred_at`). Raises StripeMappingError.
    """
    if not isinstance(event, dict) or event.get("object") != "event":
        raise StripeMappingError("object", "expected a Stripe event (object 'event')")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise StripeMappingError("id", "is required")
    if not isinstance(event_type, str) or not event_type:
        raise StripeMappingError("type", "is required")
    mapper = _MAPPERS.get(event_type)
    if mapper is None:
        return StripeMapping(event_id, event_type, ignored=True, reason="event type not mapped")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise StripeMappingError("data.object", "is required")
    previous = data.get("previous_attributes") or {}
    mapped = mapper(event_type, obj, previous, instant(event.get("created"), "created"))
    if mapped.ignored_reason is not None:
        return StripeMapping(
            event_id, event_type, ignored=True, reason=mapped.ignored_reason,
            warnings=mapped.warnings,
        )
    events = [_validated(event_id, index, raw, now) for index, raw in enumerate(mapped.events)]
    return StripeMapping(event_id, event_type, events, warnings=mapped.warnings)


def _validated(
    stripe_event_id: str, index: int, raw: dict[str, Any], now: dt.datetime
) -> EventBase:
    raw = {"event_id": derived_id(stripe_event_id, index), **raw}
    try:
        return decode_event(raw, now=now)
    except EventValidationError as exc:
        raise StripeMappingError(
            f"ledger {raw['type']} event: {exc.path}", exc.reason
        ) from None
