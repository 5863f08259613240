"""`customer.subscription.*` Stripe events -> ledger subscription events.

- `created` -> `subscription.started`.
- `updated`, `paused`, `resumed`, `trial_will_end` -> `subscription.renewed` when the current
  period advanced (per `previous_attributes`), else `subscription.updated`.
- after either: `subscription.cancellation_scheduled` if a cancellation is set, or
  `subscription.cancellation_withdrawn` if `previous_attributes` shows one was set before.
- `deleted` (or any with status `canceled`) -> `subscription.canceled`.

Statuses `incomplete` / `incomplete_expired` (first payment never made) are ignored: the
subscription has not started; a later `updated` to `active` starts it (the engine starts a
subscription on an `updated` of an unknown one).
"""

from __future__ import annotations

from typing import Any

from ledger.adapters.stripe_common import (
    Mapped,
    StripeMappingError,
    envelope,
    instant,
    object_id,
)
from ledger.adapters.stripe_terms import TERMS_STATUS, build_terms, period

SUBSCRIPTION_EVENTS = frozenset(
    f"customer.subscription.{kind}"
    for kind in ("created", "updated", "deleted", "paused", "resumed", "trial_will_end")
)
_NOT_STARTED = ("incomplete", "incomplete_expired")


def map_subscription(
    stripe_type: str, sub: dict[str, Any], previous: dict[str, Any], occurred_at: str
) -> Mapped:
    """Map one `customer.subscription.*` event (`sub` = `data.object`)."""
    status = sub.get("status")
    subscription_id = object_id(sub.get("id"), "data.object.id")
    customer_id = object_id(sub.get("customer"), "data.object.customer")
    common = {"subscription_id": subscription_id}
    if status in _NOT_STARTED:
        return Mapped.ignore(f"subscription status {status!r}: it never started (no payment yet)")
    if stripe_type == "customer.subscription.deleted" or status == "canceled":
        return Mapped([envelope("subscription.canceled", customer_id, occurred_at, **common)])
    if status not in TERMS_STATUS:
        raise StripeMappingError("data.object.status", f"unknown subscription status {status!r}")
    warnings: list[str] = []
    terms = build_terms(sub, TERMS_STATUS[status], warnings)
    if stripe_type == "customer.subscription.created":
        kind = "subscription.started"
    elif _period_advanced(sub, previous):
        kind = "subscription.renewed"
    else:
        kind = "subscription.updated"
    events = [envelope(kind, customer_id, occurred_at, terms=terms, **common)]
    cancel_at = _scheduled_cancellation(sub)
    if cancel_at is not None:
        events.append(
            envelope(
                "subscription.cancellation_scheduled",
                customer_id,
                occurred_at,
                cancel_at=instant(cancel_at, "data.object.cancel_at"),
                **common,
            )
        )
    elif _had_cancellation(previous):
        events.append(
            envelope("subscription.cancellation_withdrawn", customer_id, occurred_at, **common)
        )
    return Mapped(events, warnings=warnings)


def _scheduled_cancellation(sub: dict[str, Any]) -> int | None:
    """`cancel_at`, else the current period end when `cancel_at_period_end`, else None."""
    if sub.get("cancel_at") is not None:
        return sub["cancel_at"]
    if sub.get("cancel_at_period_end"):
        end = period(sub, "current_period_end")
        if end is None:
            raise StripeMappingError(
                "data.object.current_period_end", "is required with cancel_at_period_end"
            )
        return end
    return None


def _had_cancellation(previous: dict[str, Any]) -> bool:
    """True when `previous_attributes` shows a cancellation that is no longer set."""
    return previous.get("cancel_at") is not None or previous.get("cancel_at_period_end") is True


def _period_advanced(sub: dict[str, Any], previous: dict[str, Any]) -> bool:
    """True when `previous_attributes` holds an earlier current period start (a renewal)."""
    before = period(previous, "current_period_start") if previous else None
    now = period(sub, "current_period_start")
    return isinstance(before, int) and isinstance(now, int) and now > before
