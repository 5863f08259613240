"""What a bridge adds up, read two ways: from the rows, or from the totals kept ahead of time.

`BridgeSums` holds, for contiguous periods, the MRR level (and customers with MRR > 0) at each
period's start and reported end, the unconverted subscriptions at each end, and the movements
(per type) and FX impacts within each period.

- `from_rows` adds up the visible rows in the database (`queries.levels`): any scope.
- `from_totals` reads `bridge_totals` (`projections.totals`): a few thousand rows whatever the
  number of customers. It serves reports of every customer as known at or after the totals'
  last change, over periods that start and end at UTC midnights, except that the last period
  may end at any instant (a report as of now): that day's part is read from the rows, through
  the indexes on valid_from, valid_to and effective_at. Otherwise it answers None and the bridge
  reads the rows. Both give the same numbers (tests/projections/test_bridge_totals.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import ColumnElement, Connection, case, func, literal, select, true

from projections import schema
from projections.periods import Period
from projections.queries.common import Scope, for_customer, visible
from projections.queries.levels import levels_before, positive, sums_by_period, threshold_index
from projections.totals import FX_IMPACT, LEVELS

UTC = dt.timezone.utc


@dataclass
class BridgeSums:
    """Sums for periods p[0..n): `levels[2i]`/`levels[2i+1]` are (MRR, customers) in force just
    before p[i]'s start and reported end, `unconverted[i]` the unconverted subscriptions before
    its end, `movements[(i, type)]` and `fx[i]` (amount, rows) within it."""

    levels: list[tuple[int, int]]
    unconverted: list[int]
    movements: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    fx: dict[int, tuple[int, int]] = field(default_factory=dict)


def from_rows(conn: Connection, periods: Sequence[Period], ends: Sequence[dt.datetime], scope: Scope) -> BridgeSums:
    """The sums added up from the visible rows."""
    c, s = schema.customer_mrr, schema.subscription_mrr
    boundaries = [instant for p, end in zip(periods, ends) for instant in (p.start, end)]
    levels = levels_before(conn, c, [visible(c, scope.known_at), *for_customer(c, scope)], boundaries,
                           c.c.mrr, positive(c.c.mrr))
    unconverted = levels_before(conn, s, [visible(s, scope.known_at), *for_customer(s, scope), s.c.mrr.is_(None)],
                                list(ends), literal(0), true())
    m, f = schema.movements, schema.fx_impacts
    movements = sums_by_period(conn, m.c.effective_at, m.c.amount, [m.c.type],
                               [visible(m, scope.known_at), *for_customer(m, scope)], periods, ends[-1])
    fx = sums_by_period(conn, f.c.effective_at, f.c.amount, [],
                        [visible(f, scope.known_at), *for_customer(f, scope)], periods, ends[-1])
    return BridgeSums(levels, [n for _, n in unconverted], dict(movements), {i: v for (i,), v in fx.items()})


def _midnight(instant: dt.datetime) -> dt.datetime:
    day = instant.astimezone(UTC).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _aligned(instant: dt.datetime) -> bool:
    return _midnight(instant) == instant


def from_totals(conn: Connection, periods: Sequence[Period], ends: Sequence[dt.datetime],
                scope: Scope) -> BridgeSums | None:
    """The sums read from `bridge_totals`, or None where they cannot answer (see the module)."""
    if scope.customer_id is not None or not all(_aligned(p.start) for p in periods) \
            or not all(_aligned(e) for e in ends[:-1]):
        return None
    t = schema.bridge_totals
    changed = conn.execute(select(func.max(t.c.changed_at))).scalar_one_or_none()
    if changed is None or scope.known_at < changed:
        return None
    last = ends[-1]
    cut = _midnight(last)  # the totals cover days before it; the rows the rest of that day
    thresholds = sorted({p.start.date() for p in periods} | {e.date() for e in ends[:-1]} | {cut.date()})
    bucket = threshold_index(t.c.day, thresholds)
    by_bucket: dict[str, list[tuple[int, int]]] = {}
    for j, measure, amount, rows in conn.execute(
            select(bucket, t.c.measure, func.sum(t.c.amount), func.sum(t.c.row_count))
            .where(t.c.day < thresholds[-1]).group_by(bucket, t.c.measure)):
        by_bucket.setdefault(measure, [(0, 0)] * len(thresholds))[int(j)] = (int(amount), int(rows))
    # bucket j holds the days in [thresholds[j-1], thresholds[j]): a prefix sum gives, for each
    # threshold, everything on the days before it
    before_day: dict[str, dict[dt.date, tuple[int, int]]] = {}
    for measure, buckets in by_bucket.items():
        total = (0, 0)
        before_day[measure] = {}
        for threshold, value in zip(thresholds, buckets):
            total = _plus(total, value)
            before_day[measure][threshold] = total

    def before(measure: str, day: dt.date) -> tuple[int, int]:
        """The sum over the days before `day` (a threshold): a level in force just before it."""
        return before_day.get(measure, {}).get(day, (0, 0))

    def within(measure: str, start: dt.date, end: dt.date) -> tuple[int, int]:
        """The sum over the days [start, end)."""
        (a, n), (a0, n0) = before(measure, end), before(measure, start)
        return a - a0, n - n0

    partial = _partial_day(conn, cut, last, scope) if last != cut else None
    sums = BridgeSums(levels=[], unconverted=[])
    for i, (period, end) in enumerate(zip(periods, ends)):
        final = i == len(periods) - 1
        whole_end = cut if final else end
        sums.levels.append(before("mrr", period.start.date()))
        closing = before("mrr", whole_end.date())
        unconverted = before("unconverted", whole_end.date())[1]
        flows = {kind: within(kind, period.start.date(), whole_end.date())
                 for kind in by_bucket if kind not in LEVELS}
        if final and partial is not None:
            closing = _plus(closing, partial.pop("mrr", (0, 0)))
            unconverted += partial.pop("unconverted", (0, 0))[1]
            for kind, value in partial.items():
                flows[kind] = _plus(flows.get(kind, (0, 0)), value)
        sums.levels.append(closing)
        sums.unconverted.append(unconverted)
        for kind, value in flows.items():
            if value == (0, 0):
                continue
            if kind == FX_IMPACT:
                sums.fx[i] = value
            else:
                sums.movements[(i, kind)] = value
    return sums


def _plus(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _partial_day(conn: Connection, start: dt.datetime, end: dt.datetime, scope: Scope) -> dict[str, tuple[int, int]]:
    """What the visible rows add to each measure over [start, end), within one day."""
    c, s, m, f = schema.customer_mrr, schema.subscription_mrr, schema.movements, schema.fx_impacts
    out: dict[str, tuple[int, int]] = {}

    def level_change(table: Any, conditions: list[ColumnElement[bool]], amount: ColumnElement[Any],
                     counted: ColumnElement[bool]) -> tuple[int, int]:
        one = case((counted, 1), else_=0)
        total = (0, 0)
        for column, sign in ((table.c.valid_from, 1), (table.c.valid_to, -1)):
            a, n = conn.execute(select(func.coalesce(func.sum(func.coalesce(amount, 0)), 0),
                                       func.coalesce(func.sum(one), 0))
                                .where(*conditions, column >= start, column < end)).one()
            total = total[0] + sign * int(a), total[1] + sign * int(n)
        return total

    out["mrr"] = level_change(c, [visible(c, scope.known_at)], c.c.mrr, positive(c.c.mrr))
    out["unconverted"] = level_change(s, [visible(s, scope.known_at), s.c.mrr.is_(None)], literal(0), true())
    for kind, amount, rows in conn.execute(
            select(m.c.type, func.sum(m.c.amount), func.count())
            .where(visible(m, scope.known_at), m.c.effective_at >= start, m.c.effective_at < end)
            .group_by(m.c.type)):
        out[kind] = (int(amount), int(rows))
    amount, rows = conn.execute(select(func.coalesce(func.sum(f.c.amount), 0), func.count())
                                .where(visible(f, scope.known_at), f.c.effective_at >= start,
                                       f.c.effective_at < end)).one()
    if rows:
        out[FX_IMPACT] = (int(amount), int(rows))
    return out
