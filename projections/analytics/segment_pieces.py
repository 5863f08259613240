"""What segment reports read: each customer's pieces in a dimension, its movements and FX impacts.

Everything is visible at `known_at` (`visible`) and cut at `as_of`. Subscription dimensions read
`subscription_mrr`; `attribute:KEY` reads `customer_mrr` cut where the customer's KEY changes
(`customer_attributes`, recorded by `known_at`, effective by `as_of`; at equal `occurred_at` the
later recorded value wins, as in the customer report).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, or_, select

from projections import schema
from projections.analytics.segment_flows import Piece
from projections.queries.common import Scope, customer_intervals, for_customer, visible

COLUMNS = {"plan": "plan", "currency": "currency", "interval": "billing_interval",
           "billing_interval": "billing_interval"}
ATTRIBUTE = "attribute:"
NONE = "(none)"
Pieces = dict[str, list[Piece]]


def parse_dimension(text: str) -> str:
    """`plan`, `currency`, `interval` (= `billing_interval`) or `attribute:KEY`, canonical form."""
    if text in COLUMNS:
        return COLUMNS[text]
    if text.startswith(ATTRIBUTE) and text[len(ATTRIBUTE):].strip():
        return ATTRIBUTE + text[len(ATTRIBUTE):].strip()
    raise ValueError(f"unknown segment dimension {text!r}: use plan, currency, interval or attribute:KEY")


def load_pieces(conn: Connection, scope: Scope, dimension: str, start: dt.datetime, end: dt.datetime) -> Pieces:
    """Per customer, its pieces overlapping [start, end] in `dimension` (canonical)."""
    if dimension.startswith(ATTRIBUTE):
        return _attribute_pieces(conn, scope, dimension[len(ATTRIBUTE):], start, end)
    t = schema.subscription_mrr
    query = select(t.c.customer_id, t.c.subscription_id, t.c.valid_from, t.c.valid_to, t.c[dimension],
                   t.c.mrr, t.c.native_mrr, t.c.currency).where(
        visible(t, scope.known_at), *for_customer(t, scope), t.c.valid_from < end,
        or_(t.c.valid_to.is_(None), t.c.valid_to >= start))
    pieces: Pieces = defaultdict(list)
    for customer_id, sub, valid_from, valid_to, segment, mrr, native, currency in conn.execute(query):
        pieces[customer_id].append(Piece(sub, valid_from, valid_to, str(segment), mrr, native, currency))
    return pieces


def attribute_history(conn: Connection, scope: Scope, key: str) -> dict[str, tuple[list[dt.datetime], list[str]]]:
    """Per customer: the instants its `key` took a value (ascending) and those values."""
    a = schema.customer_attributes
    query = (select(a.c.customer_id, a.c.occurred_at, a.c.value)
             .where(a.c.key == key, a.c.recorded_at <= scope.known_at, a.c.occurred_at < scope.cutoff,
                    *for_customer(a, scope))
             .order_by(a.c.customer_id, a.c.occurred_at, a.c.recorded_at))
    history: dict[str, tuple[list[dt.datetime], list[str]]] = {}
    for customer_id, occurred_at, value in conn.execute(query):
        times, values = history.setdefault(customer_id, ([], []))
        if times and times[-1] == occurred_at:
            values[-1] = value  # same instant: the later recorded value wins
        else:
            times.append(occurred_at)
            values.append(value)
    return history


def value_at(history: tuple[list[dt.datetime], list[str]] | None, instant: dt.datetime) -> str:
    """The value effective at `instant` (set at or before it), `(none)` if never set by then."""
    if history is None:
        return NONE
    i = bisect.bisect_right(history[0], instant) - 1
    return history[1][i] if i >= 0 else NONE


def _attribute_pieces(conn: Connection, scope: Scope, key: str, start: dt.datetime, end: dt.datetime) -> Pieces:
    history = attribute_history(conn, scope, key)
    pieces: Pieces = defaultdict(list)
    for interval in customer_intervals(conn, scope, start, end):
        own = history.get(interval.customer_id)
        cuts = [interval.valid_from, *(t for t in (own[0] if own else ())
                                       if interval.valid_from < t and (interval.valid_to is None or t < interval.valid_to)),
                interval.valid_to]
        for lo, hi in zip(cuts, cuts[1:]):
            pieces[interval.customer_id].append(Piece("customer", lo, hi, value_at(own, lo), interval.mrr))
    return pieces


def load_events(conn: Connection, scope: Scope, start: dt.datetime, end: dt.datetime) -> tuple[Any, Any]:
    """Per customer per instant in [start, end): its movement (type, amount) and FX impact."""
    movements: dict[str, dict[dt.datetime, tuple[str, int]]] = defaultdict(dict)
    fx: dict[str, dict[dt.datetime, int]] = defaultdict(dict)
    m, f = schema.movements, schema.fx_impacts
    for customer_id, at, kind, amount in conn.execute(select(m.c.customer_id, m.c.effective_at, m.c.type, m.c.amount).where(
            visible(m, scope.known_at), *for_customer(m, scope), m.c.effective_at >= start, m.c.effective_at < end)):
        previous = movements[customer_id].get(at)
        movements[customer_id][at] = (kind, amount + (previous[1] if previous else 0))
    for customer_id, at, amount in conn.execute(select(f.c.customer_id, f.c.effective_at, f.c.amount).where(
            visible(f, scope.known_at), *for_customer(f, scope), f.c.effective_at >= start, f.c.effective_at < end)):
        fx[customer_id][at] = fx[customer_id].get(at, 0) + amount
    return movements, fx
