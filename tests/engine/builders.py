"""Terse builders of ledger events for engine tests."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import msgspec

from ledger.events import Event

_ids = itertools.count(1)


def at(text: str) -> dt.datetime:
    """`2024-03-01` or `2024-03-01T10:00` as a UTC instant."""
    if "T" not in text:
        text += "T00:00"
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def item(amount: int, qty: int = 1, interval: str = "month", count: int = 1,
         usage: str = "licensed", price: str = "plan") -> dict[str, Any]:
    return {"price_id": price, "unit_amount": amount, "quantity": qty, "interval": interval,
            "interval_count": count, "usage_type": usage}


def terms(*items: dict, status: str = "active", currency: str = "USD",
          discount: dict | None = None, period_start: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "currency": currency, "items": list(items) or [item(1000)],
                            "discount": discount}
    if period_start:
        body["current_period_start"] = at(period_start).isoformat()
    return body


def event(type_: str, when: str, customer: str = "c1", **body: Any) -> Event:
    data = {"type": type_, "event_id": body.pop("event_id", f"e{next(_ids)}"),
            "occurred_at": at(when).isoformat(), **body}
    if not type_.startswith(("fx.", "acquisition.")):
        data["customer_id"] = customer
    return msgspec.convert(data, Event)


def started(when: str, sub: str = "s1", customer: str = "c1", **kw: Any) -> Event:
    return event("subscription.started", when, customer, subscription_id=sub, terms=terms(*kw.pop("items", ()), **kw))


def updated(when: str, sub: str = "s1", customer: str = "c1", **kw: Any) -> Event:
    return event("subscription.updated", when, customer, subscription_id=sub, terms=terms(*kw.pop("items", ()), **kw))


def renewed(when: str, sub: str = "s1", customer: str = "c1", **kw: Any) -> Event:
    return event("subscription.renewed", when, customer, subscription_id=sub, terms=terms(*kw.pop("items", ()), **kw))


def canceled(when: str, sub: str = "s1", customer: str = "c1") -> Event:
    return event("subscription.canceled", when, customer, subscription_id=sub)


def cancel_scheduled(when: str, cancel_at: str, sub: str = "s1", customer: str = "c1") -> Event:
    return event("subscription.cancellation_scheduled", when, customer, subscription_id=sub,
                 cancel_at=at(cancel_at).isoformat())


def cancel_withdrawn(when: str, sub: str = "s1", customer: str = "c1") -> Event:
    return event("subscription.cancellation_withdrawn", when, customer, subscription_id=sub)


def payment_failed(when: str, sub: str = "s1", customer: str = "c1", invoice: str = "in1") -> Event:
    return event("invoice.payment_failed", when, customer, subscription_id=sub, invoice_id=invoice,
                 amount_due=1000, currency="USD")


def paid(when: str, sub: str = "s1", customer: str = "c1", invoice: str = "in1") -> Event:
    return event("invoice.paid", when, customer, subscription_id=sub, invoice_id=invoice,
                 amount_paid=1000, currency="USD")
