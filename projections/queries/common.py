"""What every report shares: the bitemporal scope, visibility filters and the interval sweep.

Semantics (see docs/reports.md):
- `as_of` is a business instant: nothing effective after it is reported. A period that contains
  `as_of` ends there (its closing MRR is the MRR in force at `as_of`).
- `known_at` is a recorded instant: only rows recorded at or before it and not yet superseded
  then are seen, so a report can be reproduced as it was on any past day.
- Opening MRR of a period is the MRR in force just before its start; closing, just before its
  end; movements belong to the period when `start <= effective_at < end`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import ColumnElement, Connection, Table, and_, func, or_, select, union_all

from projections import schema
from projections.periods import Period, iter_periods, parse_bound, period_of

EPSILON = dt.timedelta(microseconds=1)


class BridgeImbalanceError(AssertionError):
    """opening + movements + fx_impact != closing: the projections are inconsistent."""


@dataclass(frozen=True)
class Scope:
    """Who and when a report looks at."""

    as_of: dt.datetime
    known_at: dt.datetime
    customer_id: str | None = None

    @property
    def cutoff(self) -> dt.datetime:
        """The exclusive end of business time: instants <= as_of are in."""
        return self.as_of + EPSILON

    def end_of(self, period: Period) -> dt.datetime:
        """The exclusive end of `period` as far as this scope reports it."""
        return min(period.end, self.cutoff)


def visible(table: Table, known_at: dt.datetime) -> ColumnElement[bool]:
    """Rows of a bitemporal table as known at `known_at`."""
    return and_(
        table.c.recorded_at <= known_at,
        or_(table.c.superseded_at.is_(None), table.c.superseded_at > known_at),
    )


def for_customer(table: Table, scope: Scope) -> list[ColumnElement[bool]]:
    return [] if scope.customer_id is None else [table.c.customer_id == scope.customer_id]


@dataclass(frozen=True)
class Interval:
    customer_id: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    mrr: int


def customer_intervals(
    conn: Connection, scope: Scope, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[Interval]:
    """Visible customer MRR intervals overlapping the closed span [start, end] (None: unbounded)."""
    t = schema.customer_mrr
    query = select(t.c.customer_id, t.c.valid_from, t.c.valid_to, t.c.mrr).where(
        visible(t, scope.known_at), *for_customer(t, scope)
    )
    if end is not None:
        query = query.where(t.c.valid_from < end)
    if start is not None:
        query = query.where(or_(t.c.valid_to.is_(None), t.c.valid_to >= start))
    return [Interval(*row) for row in conn.execute(query)]


def in_force_before(intervals: Iterable[Any], boundaries: Sequence[dt.datetime]) -> list[tuple[int, int]]:
    """For each boundary b (ascending): (Σ mrr, count with mrr > 0) of intervals in force just
    before b, i.e. valid_from < b <= valid_to. One sweep, O((n + b) log n)."""
    items = list(intervals)
    starts = sorted(items, key=lambda i: i.valid_from)
    ends = sorted((i for i in items if i.valid_to is not None), key=lambda i: i.valid_to)
    total = count = 0
    si = ei = 0
    result: list[tuple[int, int]] = []
    for b in boundaries:
        while si < len(starts) and starts[si].valid_from < b:
            total += starts[si].mrr or 0
            count += 1 if (starts[si].mrr or 0) > 0 else 0
            si += 1
        while ei < len(ends) and ends[ei].valid_to < b:
            total -= ends[ei].mrr or 0
            count -= 1 if (ends[ei].mrr or 0) > 0 else 0
            ei += 1
        result.append((total, count))
    return result


def first_instant(conn: Connection, scope: Scope) -> dt.datetime | None:
    """The earliest business instant any visible row speaks about (the default `--from`)."""
    c, m, f = schema.customer_mrr, schema.movements, schema.fx_impacts
    parts = [
        select(func.min(c.c.valid_from).label("t")).where(visible(c, scope.known_at), *for_customer(c, scope)),
        select(func.min(m.c.effective_at).label("t")).where(visible(m, scope.known_at), *for_customer(m, scope)),
        select(func.min(f.c.effective_at).label("t")).where(visible(f, scope.known_at), *for_customer(f, scope)),
    ]
    u = union_all(*parts).subquery()
    value = conn.execute(select(func.min(u.c.t))).scalar_one_or_none()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite loses the column type through UNION
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def resolve_periods(
    conn: Connection, kind: str, scope: Scope, from_: str | None = None, to: str | None = None
) -> list[Period]:
    """The periods a report covers: `--from`..`--to` inclusive, never past `as_of`.

    Without `--from`: from the first period with data; without `--to`: through the period
    containing `as_of`.
    """
    now_period = period_of(kind, scope.as_of)
    last = parse_bound(kind, to, upper=True) if to else now_period
    if last.start > now_period.start:
        last = now_period
    if from_:
        first = parse_bound(kind, from_, upper=False)
    else:
        start = first_instant(conn, scope)
        if start is None:
            return []
        first = period_of(kind, start)
    return list(iter_periods(first, last))


def report_envelope(currency: str, kind: str, scope: Scope, rows: list[dict[str, Any]],
                    **extra: Any) -> dict[str, Any]:
    """The keys every periodic report's `--json` starts with (MRR_SPEC.md §7), then `rows`."""
    return {"currency": currency, "period": kind, "as_of": scope.as_of.isoformat(),
            "known_at": scope.known_at.isoformat(), **extra, "rows": rows}
