"""One customer at one instant: its MRR, the subscriptions in force and its attributes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from projections import schema
from projections.queries.common import Scope, visible
from projections.queries.money import format_major


@dataclass(frozen=True)
class SubscriptionRow:
    subscription_id: str
    status: str
    mrr: int | None
    currency: str
    native_mrr: int
    plan: str
    billing_interval: str
    valid_from: dt.datetime


@dataclass
class CustomerView:
    customer_id: str
    mrr: int
    subscriptions: list[SubscriptionRow] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def unconverted(self) -> int:
        return sum(1 for s in self.subscriptions if s.mrr is None)


def _in_force(table: Any, scope: Scope) -> list[Any]:
    return [
        visible(table, scope.known_at),
        table.c.customer_id == scope.customer_id,
        table.c.valid_from <= scope.as_of,
        table.c.valid_to.is_(None) | (table.c.valid_to > scope.as_of),
    ]


def customer(conn: Connection, scope: Scope) -> CustomerView:
    """The customer `scope.customer_id` in force at `as_of`, as known at `known_at`."""
    if scope.customer_id is None:
        raise ValueError("the customer report needs a customer id")
    c, s = schema.customer_mrr, schema.subscription_mrr
    mrr = conn.execute(select(c.c.mrr).where(*_in_force(c, scope))).scalar_one_or_none() or 0
    view = CustomerView(scope.customer_id, mrr)
    query = select(s.c.subscription_id, s.c.status, s.c.mrr, s.c.currency, s.c.native_mrr, s.c.plan,
                   s.c.billing_interval, s.c.valid_from).where(*_in_force(s, scope)).order_by(s.c.subscription_id)
    view.subscriptions = [SubscriptionRow(*row) for row in conn.execute(query)]
    view.attributes = attributes(conn, scope)
    return view


def attributes(conn: Connection, scope: Scope) -> dict[str, str]:
    """The latest value of each attribute effective at `as_of` and recorded by `known_at`."""
    a = schema.customer_attributes
    query = (
        select(a.c.key, a.c.value)
        .where(a.c.customer_id == scope.customer_id, a.c.occurred_at <= scope.as_of,
               a.c.recorded_at <= scope.known_at)
        .order_by(a.c.occurred_at, a.c.recorded_at)
    )
    return {key: value for key, value in conn.execute(query)}


def customer_json(view: CustomerView, currency: str, scope: Scope) -> dict[str, Any]:
    """The `--json` shape of MRR_SPEC.md §7."""
    return {
        "customer_id": view.customer_id,
        "as_of": scope.as_of.isoformat(),
        "known_at": scope.known_at.isoformat(),
        "currency": currency,
        "mrr": format_major(view.mrr, currency),
        "unconverted_subscriptions": view.unconverted,
        "attributes": view.attributes,
        "subscriptions": [
            {"subscription_id": s.subscription_id, "status": s.status,
             "mrr": format_major(s.mrr, currency), "currency": s.currency,
             "native_mrr": format_major(s.native_mrr, s.currency), "plan": s.plan,
             "billing_interval": s.billing_interval, "valid_from": s.valid_from.isoformat()}
            for s in view.subscriptions
        ],
    }
