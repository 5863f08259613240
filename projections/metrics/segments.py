"""MRR in force now by plan, billing interval or subscription currency, bounded to the top N.

Reads the visible `subscription_mrr` intervals in force at `as_of` (the same instant rule as the
bridge's closing MRR: valid_from <= as_of < valid_to). Unconverted subscriptions (no FX rate,
`mrr` NULL) are left out, as in every total. Values beyond the N largest are summed into one
`other` bucket, so the number of label values stays at most N + 1 whatever the catalogue size.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, or_, select

from projections import schema
from projections.queries.common import Scope, visible

OTHER = "other"
"""The bucket of everything outside the top N (a real plan called `other` is merged into it)."""

DIMENSIONS = ("plan", "billing_interval", "currency")
MAX_LABEL_LENGTH = 128
"""Label values are cut to this length (plan names are producer-chosen strings)."""


def mrr_by(conn: Connection, scope: Scope, dimension: str) -> dict[str, int]:
    """Σ reporting-currency MRR (minor units) of subscriptions in force at `scope.as_of`, by
    `dimension` (a column of `subscription_mrr`)."""
    t = schema.subscription_mrr
    column = t.c[dimension]
    query = (
        select(column, func.sum(t.c.mrr))
        .where(
            visible(t, scope.known_at),
            t.c.mrr.is_not(None),
            t.c.valid_from < scope.cutoff,
            or_(t.c.valid_to.is_(None), t.c.valid_to >= scope.cutoff),
        )
        .group_by(column)
    )
    return {str(key): int(total or 0) for key, total in conn.execute(query)}


def top_n(values: dict[str, int], n: int) -> dict[str, int]:
    """The `n` largest values (ties by name) plus `other` holding the rest (present only when
    something is left over); zero-MRR keys are dropped."""
    ranked = sorted(((k, v) for k, v in values.items() if v != 0), key=lambda kv: (-kv[1], kv[0]))
    out: dict[str, int] = {}
    for key, value in ranked[:n]:
        label = OTHER if key == OTHER else key[:MAX_LABEL_LENGTH]
        out[label] = out.get(label, 0) + value
    rest = sum(v for _, v in ranked[n:])
    if rest or len(ranked) > n:
        out[OTHER] = out.get(OTHER, 0) + rest
    return out
