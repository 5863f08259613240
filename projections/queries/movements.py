"""The movement list: every MRR movement effective in the reported span, as known at `known_at`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Connection, select

from projections import schema
from projections.periods import Period
from projections.queries.common import Scope, for_customer, visible
from projections.queries.money import format_major


@dataclass(frozen=True)
class MovementRow:
    customer_id: str
    effective_at: dt.datetime
    type: str
    amount: int
    mrr_before: int
    mrr_after: int
    event_ids: tuple[str, ...]
    recorded_at: dt.datetime


def movements(conn: Connection, scope: Scope, periods: Sequence[Period] | None = None) -> list[MovementRow]:
    """Movements with effective_at in the periods' span (all history when None), up to `as_of`,
    ordered by effective_at then customer."""
    t = schema.movements
    query = select(
        t.c.customer_id, t.c.effective_at, t.c.type, t.c.amount, t.c.mrr_before, t.c.mrr_after,
        t.c.event_ids, t.c.recorded_at,
    ).where(visible(t, scope.known_at), *for_customer(t, scope), t.c.effective_at < scope.cutoff)
    if periods:
        query = query.where(t.c.effective_at >= periods[0].start,
                            t.c.effective_at < scope.end_of(periods[-1]))
    query = query.order_by(t.c.effective_at, t.c.customer_id, t.c.id)
    return [
        MovementRow(cid, at, kind, amount, before, after, tuple(ids), recorded)
        for cid, at, kind, amount, before, after, ids, recorded in conn.execute(query)
    ]


def movements_json(rows: Sequence[MovementRow], currency: str, scope: Scope) -> dict[str, Any]:
    """The `--json` shape of MRR_SPEC.md §7."""
    return {
        "currency": currency,
        "as_of": scope.as_of.isoformat(),
        "known_at": scope.known_at.isoformat(),
        "rows": [
            {"customer_id": r.customer_id, "effective_at": r.effective_at.isoformat(), "type": r.type,
             "amount": format_major(r.amount, currency),
             "mrr_before": format_major(r.mrr_before, currency),
             "mrr_after": format_major(r.mrr_after, currency),
             "event_ids": list(r.event_ids), "recorded_at": r.recorded_at.isoformat()}
            for r in rows
        ],
    }
