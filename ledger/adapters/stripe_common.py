"""Helpers shared by the Stripe mappers: errors, ids, timestamps, money and the event envelope.

Stripe objects arrive as plain dicts (the webhook JSON, numbers with a fraction parsed as
`Decimal`). Nothing here calls Stripe's API: a mapping is a pure function of the payload.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ledger.money import minor_unit_exponent, to_minor

SOURCE = "stripe"

# Stripe's minor unit differs from CLDR's (babel, `ledger.money`) for these currencies: Stripe
# takes ISK amounts as if ISK had two decimals (ISK 5 is 500); CLDR, and so the ledger, has none.
STRIPE_EXPONENT_OVERRIDES = {"ISK": 2}


class StripeWebhookError(ValueError):
    """Base of every error `verify_and_map` raises."""


class StripeSignatureError(StripeWebhookError):
    """The `Stripe-Signature` header is missing, malformed, does not match, or is too old."""


class StripeMappingError(StripeWebhookError):
    """A signed payload that cannot be turned into valid ledger events (`path`: what, `reason`)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def object_id(value: Any, path: str) -> str:
    """The id of an expandable field: a string id, or the `id` of an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise StripeMappingError(path, "is required (an id or an expanded object with an id)")
    return value


def optional_id(value: Any) -> str | None:
    """Like `object_id`, but None when absent."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def instant(value: Any, path: str) -> str:
    """A Unix timestamp (seconds) as an RFC 3339 UTC string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise StripeMappingError(path, f"expected a Unix timestamp, got {value!r}")
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat()


def optional_instant(value: Any, path: str) -> str | None:
    """`instant`, or None for a null or absent timestamp."""
    return None if value is None else instant(value, path)


def currency_code(value: Any, path: str) -> str:
    """Stripe's lower-case ISO code, upper-cased (validation then checks it is known)."""
    if not isinstance(value, str) or not value:
        raise StripeMappingError(path, "is required")
    return value.upper()


def ledger_minor(amount: int | Decimal, currency: str, path: str) -> int:
    """An amount in Stripe's minor unit, in the ledger's minor unit (babel/CLDR), half up."""
    if isinstance(amount, bool) or not isinstance(amount, (int, Decimal)):
        raise StripeMappingError(path, f"expected an integer amount, got {amount!r}")
    shift = STRIPE_EXPONENT_OVERRIDES.get(currency)
    if shift is None and isinstance(amount, int):
        return amount
    try:
        stripe_exponent = shift if shift is not None else minor_unit_exponent(currency)
        return to_minor(Decimal(amount).scaleb(-stripe_exponent), currency)
    except ValueError as exc:
        raise StripeMappingError(path, str(exc)) from None


def derived_id(stripe_event_id: str, index: int) -> str:
    """Ledger `event_id` of the index-th (0-based) ledger event of one Stripe event:
    `evt_123`, then `evt_123:2`, `evt_123:3`, …"""
    return stripe_event_id if index == 0 else f"{stripe_event_id}:{index + 1}"


def envelope(
    event_type: str, customer_id: str, occurred_at: str, **body: Any
) -> dict[str, Any]:
    """A ledger event as a dict, without `event_id` (numbered once all events are known)."""
    return {
        "type": event_type,
        "customer_id": customer_id,
        "occurred_at": occurred_at,
        "source": SOURCE,
        **body,
    }


class Mapped:
    """What one Stripe object maps to: ledger event dicts, or the reason it is ignored, plus
    warnings (mapped, but something could not be represented exactly)."""

    __slots__ = ("events", "ignored_reason", "warnings")

    def __init__(
        self,
        events: list[dict[str, Any]] | None = None,
        ignored_reason: str | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.events = events or []
        self.ignored_reason = ignored_reason
        self.warnings = warnings or []

    @classmethod
    def ignore(cls, reason: str) -> Mapped:
        """Nothing to append, for `reason`."""
        return cls(ignored_reason=reason)
