"""The bitemporal difference of one customer's current rows of one table against the engine's.

Rows that disappear are superseded at the step's recorded instant, new rows are inserted, equal
rows are untouched; a row inserted earlier in the same batch and superseded at the same instant
was never visible and is dropped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from projections.customer_state import CurrentRow, struct_to_row


def diff_rows(current: list[CurrentRow], new: Sequence[Any], at: dt.datetime,
              supersede: list[dict[str, Any]], inserts: list[dict[str, Any]]) -> list[Any]:
    """Make one table's current rows of a customer equal `new` (the engine's rows) as of `at`:
    queue stored rows to supersede in `supersede` and new rows in `inserts`, and update `current`.
    Returns the values of the stored rows superseded and of the rows inserted.

    A resumed engine run returns the very objects of the previous timeline for everything
    before its checkpoint, and surviving rows keep the new object, so most rows match by
    identity (cheap) and only the rest are compared by value (hashing every field)."""
    unmatched = {id(value): value for value in new}
    others = [row for row in current if unmatched.pop(id(row.value), None) is None]
    changed: list[Any] = []
    if not others and not unmatched:
        return changed
    pool: dict[Any, list[Any]] = {}
    for value in unmatched.values():  # engine order
        pool.setdefault(value, []).append(value)
    gone: set[int] = set()
    for row in others:
        equal = pool.get(row.value)
        if equal:
            row.value = equal.pop(0)  # same value; keep the engine's object for next time
            del unmatched[id(row.value)]
            continue
        gone.add(id(row))
        if row.pending is not None:
            # Inserted earlier in this batch; if at the same instant it was never visible.
            row.pending["superseded_at"] = at
            row.pending["_drop"] = row.pending["recorded_at"] == at
        else:
            supersede.append({"row_id": row.id, "at": at, "value": row.value})
            changed.append(row.value)
    if gone:  # survivors keep their (id) order
        current[:] = [row for row in current if id(row) not in gone]
    for value in unmatched.values():  # inserted rows in the engine's order
        pending = {**struct_to_row(value), "recorded_at": at, "superseded_at": None}
        inserts.append(pending)
        current.append(CurrentRow(value, pending=pending))
        changed.append(value)
    return changed



def diff_parts(settled: list[CurrentRow], others: list[CurrentRow], rows: list[Any], kept: int,
               tail: list[Any], at: dt.datetime, supersede: list[dict[str, Any]],
               inserts: list[dict[str, Any]]) -> list[Any]:
    """`diff_rows` of one table against an engine answer (`TimelineParts`: the run's `rows`, the
    first `kept` of them unchanged since the last answer, and its `tail`), where `settled` are
    the current rows of the last answer's `rows` in order and `others` the remaining current
    rows. Updates both lists the same way; returns what `diff_rows` returns."""
    if kept < len(settled):  # the run was rebuilt or rewound: these rows must be compared again
        others[:0] = settled[kept:]
        del settled[kept:]
    fresh = rows[len(settled):]
    if not fresh and not tail and not others:  # nothing before, nothing now (most tables, most steps)
        return []
    changed = diff_rows(others, fresh + tail, at, supersede, inserts)
    if fresh:  # every value now is the `value` of exactly one current row
        by_value = {id(row.value): row for row in others}
        settled.extend(by_value.pop(id(value)) for value in fresh)
        others[:] = [row for row in others if id(row.value) in by_value]
    return changed
