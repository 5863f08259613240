"""Raw event dicts for ledger tests: valid by default, each test breaks one thing."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
HORIZON = dt.timedelta(days=366)


def started(event_id: str = "evt-1", **overrides: Any) -> dict[str, Any]:
    """A valid `subscription.started` (USD 100.00 a month)."""
    raw: dict[str, Any] = {
        "type": "subscription.started",
        "event_id": event_id,
        "occurred_at": "2024-03-01T00:00:00Z",
        "customer_id": "cus-1",
        "subscription_id": "sub-1",
        "source": "api",
        "terms": {
            "status": "active",
            "currency": "USD",
            "items": [
                {"price_id": "pro", "unit_amount": 10000, "quantity": 1, "interval": "month"}
            ],
        },
    }
    raw.update(overrides)
    return raw


def fx(event_id: str = "fx-1", **overrides: Any) -> dict[str, Any]:
    """A valid `fx.rate_published` (1 EUR = 1.0850 USD)."""
    raw = {
        "type": "fx.rate_published",
        "event_id": event_id,
        "occurred_at": "2024-03-01T00:00:00Z",
        "base": "EUR",
        "quote": "USD",
        "rate": "1.0850",
        "effective_date": "2024-03-01",
    }
    raw.update(overrides)
    return raw


def invoice_paid(event_id: str = "inv-1", **overrides: Any) -> dict[str, Any]:
    raw = {
        "type": "invoice.paid",
        "event_id": event_id,
        "occurred_at": "2024-03-01T00:00:00Z",
        "customer_id": "cus-1",
        "subscription_id": "sub-1",
        "invoice_id": "in-1",
        "amount_paid": 10000,
        "currency": "USD",
    }
    raw.update(overrides)
    return raw


def with_(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `raw` with the dotted `path` (list indices as numbers) set to `value`."""
    out = copy.deepcopy(raw)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return out


def line(raw: dict[str, Any]) -> str:
    return json.dumps(raw)
