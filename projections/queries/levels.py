"""Set-based sums for periodic reports: what the database adds up, so a report reads a few
dozen rows instead of every interval and movement in its range.

- `levels_before`: for each boundary b, the sum and count of intervals in force just before b
  (valid_from < b <= valid_to), the same rule as `common.in_force_before`.
- `sums_by_period`: per period (and per value of some columns), the sum and count of rows whose
  instant lies in the period's reported span.

Both bucket a row by an instant with one `CASE` over the sorted boundaries (portable: SQLite and
PostgreSQL), then `GROUP BY` the bucket.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Sequence

from sqlalchemy import ColumnElement, Connection, case, func, literal, select, union_all

from projections.periods import Period


def threshold_index(instant: ColumnElement[Any], thresholds: Sequence[Any]) -> ColumnElement[int]:
    """How many of `thresholds` (ascending instants or dates) are <= `instant`."""
    if not thresholds:
        return literal(0)
    return case(*[(instant < t, i) for i, t in enumerate(thresholds)], else_=len(thresholds))


def levels_before(conn: Connection, table: Any, conditions: Sequence[ColumnElement[bool]],
                  boundaries: Sequence[dt.datetime], amount: ColumnElement[Any],
                  counted: ColumnElement[bool]) -> list[tuple[int, int]]:
    """For each boundary b (any order): (Σ amount, number of rows where `counted`) over the rows
    of `table` matching `conditions` with valid_from < b and (valid_to IS NULL or valid_to >= b)."""
    return grouped_levels_before(conn, table, conditions, boundaries, amount, counted).get((), [(0, 0)] * len(boundaries))


def grouped_levels_before(conn: Connection, table: Any, conditions: Sequence[ColumnElement[bool]],
                          boundaries: Sequence[dt.datetime], amount: ColumnElement[Any],
                          counted: ColumnElement[bool], keys: Sequence[ColumnElement[Any]] = (),
                          source: Any = None) -> dict[tuple[Any, ...], list[tuple[int, int]]]:
    """`levels_before` per value of `keys` (columns of `source`, default `table`, e.g. a join):
    {key values: [(Σ amount, count) per boundary]}; a key with no rows is absent.

    Each row adds its amount at valid_from and takes it away at valid_to; bucketed by how many
    boundaries are <= that instant, a prefix sum over the buckets gives every boundary's level.
    Rows that ended before the first boundary cancel out, so they need not be read."""
    if not boundaries:
        return {}
    thresholds = sorted(set(boundaries))
    t = table.c
    live = [*conditions, t.valid_from < thresholds[-1], t.valid_to.is_(None) | (t.valid_to >= thresholds[0])]
    one = case((counted, 1), else_=0)
    labelled = [key.label(f"k{i}") for i, key in enumerate(keys)]
    starts = select(threshold_index(t.valid_from, thresholds).label("j"), func.coalesce(amount, 0).label("amount"),
                    one.label("n"), *labelled).where(*live)
    ends = select(threshold_index(t.valid_to, thresholds).label("j"), -func.coalesce(amount, 0), -one, *labelled).where(
        *live, t.valid_to.is_not(None), t.valid_to < thresholds[-1])
    if source is not None:
        starts, ends = starts.select_from(source), ends.select_from(source)
    moves = union_all(starts, ends).subquery()
    key_columns = [moves.c[f"k{i}"] for i in range(len(keys))]
    deltas: dict[tuple[Any, ...], dict[int, tuple[int, int]]] = defaultdict(dict)
    for j, total, n, *values in conn.execute(
            select(moves.c.j, func.sum(moves.c.amount), func.sum(moves.c.n), *key_columns)
            .group_by(moves.c.j, *key_columns)):
        deltas[tuple(values)][int(j)] = (int(total or 0), int(n or 0))
    out = {}
    for key, by_bucket in deltas.items():
        level: dict[dt.datetime, tuple[int, int]] = {}
        total = count = 0
        for i, threshold in enumerate(thresholds):
            add_total, add_count = by_bucket.get(i, (0, 0))  # rows at instants below thresholds[i] ...
            total, count = total + add_total, count + add_count  # ... are in force before it
            level[threshold] = (total, count)
        out[key] = [level[b] for b in boundaries]
    return out


def period_index(instant: ColumnElement[Any], periods: Sequence[Period]) -> ColumnElement[int]:
    """The index of the period (ascending, contiguous) whose span holds `instant`, for instants
    from the first period's start on."""
    return threshold_index(instant, [p.start for p in periods[1:]])


def sums_by_period(conn: Connection, instant: ColumnElement[Any], amount: ColumnElement[Any],
                   keys: Sequence[ColumnElement[Any]], conditions: Sequence[ColumnElement[bool]],
                   periods: Sequence[Period], end: dt.datetime) -> dict[tuple[Any, ...], tuple[int, int]]:
    """{(period index, *key values): (Σ amount, row count)} of the rows matching `conditions`
    whose `instant` lies in [periods[0].start, end); `periods` ascending and contiguous, `end`
    the reported end of the last one."""
    index = period_index(instant, periods).label("i")
    query = (select(index, *keys, func.sum(amount), func.count())
             .where(*conditions, instant >= periods[0].start, instant < end)
             .group_by(index, *keys))
    out: dict[tuple[Any, ...], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for i, *rest in conn.execute(query):
        *values, total, count = rest
        out[(int(i), *values)] = (int(total or 0), int(count))
    return out


def positive(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """`column > 0` (NULL counts as not positive)."""
    return func.coalesce(column, 0) > 0

