"""Per-customer MRR snapshot per period end (dbt mrr-playbook style, MRR_SPEC.md §6).

For each customer and period (default month): MRR just before the period end (at `as_of` for
the current period), the previous period's value and the net category between the two:
`new_business` (0 → >0, first time), `reactivation` (0 → >0 again), `expansion`, `contraction`,
`churn` (>0 → 0) or null (unchanged). Rows run from the customer's first period ending with
MRR through the period after its last one (the churn row), zero-MRR gap periods included with
category null. Categories look only at period ends: a customer whose MRR started and stopped
inside one period has no snapshot rows (the bridge still shows both movements).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import Connection

from projections.periods import Period
from projections.queries.common import report_envelope, Interval, Scope, customer_intervals
from projections.queries.money import format_major


@dataclass(frozen=True)
class SnapshotRow:
    period: Period
    customer_id: str
    mrr: int
    previous_mrr: int
    category: str | None

    @property
    def change(self) -> int:
        return self.mrr - self.previous_mrr


def category(previous: int, current: int, had_mrr: bool) -> str | None:
    """The net category of a change between two period ends."""
    if previous == 0 and current > 0:
        return "reactivation" if had_mrr else "new_business"
    if previous > 0 and current == 0:
        return "churn"
    if current > previous:
        return "expansion"
    if current < previous:
        return "contraction"
    return None


def _value_before(intervals: list[Interval], starts: list, boundary: Any) -> int:
    """MRR of one customer just before `boundary` (its intervals never overlap)."""
    i = bisect.bisect_left(starts, boundary) - 1
    if i < 0:
        return 0
    interval = intervals[i]
    return interval.mrr if interval.valid_to is None or interval.valid_to >= boundary else 0


def customer_series(intervals: list[Interval], periods: Sequence[Period], scope: Scope) -> list[int]:
    """One customer's MRR at each period end."""
    intervals = sorted(intervals, key=lambda i: i.valid_from)
    starts = [i.valid_from for i in intervals]
    return [_value_before(intervals, starts, scope.end_of(p)) for p in periods]


def snapshot(
    conn: Connection, periods: Sequence[Period], scope: Scope, output: Sequence[Period] | None = None
) -> list[SnapshotRow]:
    """Snapshot rows computed over `periods` (all history needed for categories), returned for the
    periods in `output` (default all), ordered by period then customer."""
    if not periods:
        return []
    wanted = {p.label for p in (output if output is not None else periods)}
    by_customer: dict[str, list[Interval]] = defaultdict(list)
    for interval in customer_intervals(conn, scope, None, scope.end_of(periods[-1])):
        by_customer[interval.customer_id].append(interval)
    rows: list[SnapshotRow] = []
    for customer_id, intervals in by_customer.items():
        rows.extend(_customer_rows(customer_id, customer_series(intervals, periods, scope), periods, wanted))
    rows.sort(key=lambda r: (r.period.start, r.customer_id))
    return rows


def _customer_rows(
    customer_id: str, series: list[int], periods: Sequence[Period], wanted: set[str]
) -> list[SnapshotRow]:
    positive = [i for i, v in enumerate(series) if v > 0]
    if not positive:
        return []
    first, last = positive[0], min(positive[-1] + 1, len(series) - 1)
    rows: list[SnapshotRow] = []
    previous, had_mrr = 0, False
    for i in range(first, last + 1):
        current = series[i]
        if periods[i].label in wanted:
            rows.append(SnapshotRow(periods[i], customer_id, current, previous,
                                    category(previous, current, had_mrr)))
        had_mrr = had_mrr or current > 0
        previous = current
    return rows


def snapshot_json(rows: Sequence[SnapshotRow], currency: str, kind: str, scope: Scope) -> dict[str, Any]:
    """The `--json` shape of MRR_SPEC.md §7."""
    return report_envelope(currency, kind, scope, [
            {"period": r.period.label, "customer_id": r.customer_id,
             "mrr": format_major(r.mrr, currency),
             "previous_mrr": format_major(r.previous_mrr, currency),
             "change": format_major(r.change, currency), "category": r.category}
            for r in rows
        ])
