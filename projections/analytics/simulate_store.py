"""Simulation inputs from the projection store: settings, the affected customers, their event
histories, and the stored intervals and movements the simulation is compared with.

Part of the simulation (`projections.analytics.simulate`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import msgspec
from sqlalchemy import Connection, select

from ledger.events import SUBSCRIPTION_TERMS_EVENTS, EventBase
from ledger.upcast import decode_stored
from projections import bulk, schema
from projections.engine import MrrSettings
from projections.queries.common import Scope, for_customer, visible
from projections.store import read_meta

_TERMS_TYPES = tuple(cls.__struct_config__.tag for cls in SUBSCRIPTION_TERMS_EVENTS)  # type: ignore[attr-defined]


def stored_settings(conn: Connection, currency: str) -> MrrSettings:
    stored = read_meta(conn, "settings")
    return MrrSettings(reporting_currency=currency) if stored is None else msgspec.json.decode(stored, type=MrrSettings)


def customers_with_price(conn: Connection, scope: Scope, plan: str) -> list[str]:
    """Customers with a terms event (recorded by `known_at`) that has an item priced `plan`."""
    t = schema.events
    needle = f'"price_id":{msgspec.json.encode(plan).decode()}'  # stored bodies are canonical JSON
    query = select(t.c.customer_id, t.c.body).where(
        t.c.type.in_(_TERMS_TYPES), t.c.recorded_at <= scope.known_at, t.c.body.contains(needle, autoescape=True),
        *for_customer(t, scope))
    found = set()
    for cid, body in conn.execute(query):
        if cid not in found and any(i.price_id == plan for i in decode_stored(body.encode()).terms.items):  # type: ignore[attr-defined]
            found.add(cid)
    return sorted(found)


def load_histories(conn: Connection, customer_ids: Sequence[str], known_at: dt.datetime) -> dict[str, list[EventBase]]:
    """Each customer's events recorded by `known_at`, in recorded order (as the projector read them)."""
    t = schema.events
    out: dict[str, list[EventBase]] = {cid: [] for cid in customer_ids}
    query = select(t.c.customer_id, t.c.body).where(t.c.recorded_at <= known_at).order_by(
        t.c.recorded_at, t.c.partition, t.c.offset)
    for result in bulk.select_in(conn, t.c.customer_id, list(customer_ids), query.where):
        for cid, body in result:
            out[cid].append(decode_stored(body.encode()))
    return out


def stored_rows(conn: Connection, table: Any, customer_ids: Sequence[str], scope: Scope, columns: Sequence[str]) -> list[Any]:
    """The stored rows (`columns` of `table`) of `customer_ids`, as known at `scope.known_at`."""
    query = select(*(table.c[c] for c in columns)).where(visible(table, scope.known_at))
    return [row for result in bulk.select_in(conn, table.c.customer_id, list(customer_ids), query.where)
            for row in result]


def all_subscription_rows(conn: Connection, scope: Scope, columns: Sequence[str]) -> list[Any]:
    """Every stored subscription interval in `scope` (`columns`), as known at `scope.known_at`."""
    t = schema.subscription_mrr
    return list(conn.execute(select(*(t.c[c] for c in columns)).where(visible(t, scope.known_at), *for_customer(t, scope))))
