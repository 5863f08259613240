"""Segments: per period and segment, the MRR bridge, customers and ARPA (MRR_SPEC.md §6).

A dimension is a column of `subscription_mrr` (`plan`, `currency`, `billing_interval`: one
customer can be in several segments, each with the MRR of its subscriptions there) or a customer
attribute (`attribute:KEY`: a customer is in the segment of its latest value effective at the
instant, `(none)` without one). Every row balances: opening + new_business + expansion +
contraction + churn + reactivation + moved_in + moved_out + fx_impact = closing, and over all
segments each movement type adds up to the bridge (transfers net to 0). How a customer's change
splits across segments: `segment_flows`. Segments outside the top N by closing MRR are merged
into `(other)` (computed as one segment, so its customer count is exact).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Sequence

from sqlalchemy import Connection

from projections.analytics.segment_flows import Flow, SegmentImbalanceError, customer_flows
from projections.analytics.segment_pieces import Pieces, load_events, load_pieces
from projections.engine.model import MOVEMENT_TYPES
from projections.periods import Period
from projections.queries.common import Scope, report_envelope
from projections.queries.money import format_major, format_ratio, ratio

OTHER = "(other)"
PARTS = (*MOVEMENT_TYPES, "moved_in", "moved_out", "fx_impact")
COUNTED = {"new_business": "new_customers", "churn": "churned_customers", "reactivation": "reactivated_customers"}


@dataclass
class SegmentRow:
    period: Period
    segment: str
    opening_mrr: int = 0
    closing_mrr: int = 0
    customers_opening: int = 0
    customers: int = 0
    parts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED.values(), 0))

    @property
    def arpa(self) -> Decimal | None:
        return ratio(self.closing_mrr, self.customers)

    def check(self) -> None:
        if self.opening_mrr + sum(self.parts.values()) != self.closing_mrr:
            raise SegmentImbalanceError(f"segment {self.segment!r} {self.period.label} does not balance: "
                                        f"opening {self.opening_mrr} + {self.parts} != closing {self.closing_mrr}")


@dataclass
class SegmentReport:
    dimension: str
    segments: list[str]
    """Ranked: by closing MRR of the last period, then by activity, then name; `(other)` last."""
    rows: list[SegmentRow]
    movers: list[SegmentRow]
    """Whole range per segment before top-N merging (`period` = the last), largest |change| first."""
    totals: list[SegmentRow] = field(default_factory=list)
    """Whole range per reported segment, in `segments` order."""


def _rows(flows: Sequence[Flow], periods: Sequence[Period], scope: Scope, segment: str) -> list[SegmentRow]:
    flows = sorted(flows, key=lambda f: f.at)
    times = [f.at for f in flows]
    level, count = [0], [0]
    for f in flows:
        level.append(level[-1] + f.delta)
        count.append(count[-1] + f.customers)
    rows = []
    for p in periods:
        lo, hi = bisect.bisect_left(times, p.start), bisect.bisect_left(times, scope.end_of(p))
        row = SegmentRow(p, segment, level[lo], level[hi], count[lo], count[hi])
        for f in flows[lo:hi]:
            for key, amount in f.amounts.items():
                row.parts[key] += amount
                if key in COUNTED:
                    row.counts[COUNTED[key]] += 1
        row.check()
        rows.append(row)
    return rows


def _run(pieces: Pieces, events: Any, periods: Sequence[Period], scope: Scope,
         label: Callable[[str], str]) -> dict[str, list[SegmentRow]]:
    start, end = periods[0].start, scope.end_of(periods[-1])
    movements, fx = events
    flows: dict[str, list[Flow]] = defaultdict(list)
    for customer_id, own in pieces.items():
        mapped = [dataclasses.replace(p, segment=label(p.segment)) for p in own]
        for f in customer_flows(mapped, movements.get(customer_id, {}), fx.get(customer_id, {}), start, end,
                                customer_id):
            flows[f.segment].append(f)
    result = {s: _rows(fs, periods, scope, s) for s, fs in flows.items()}
    return {s: rows for s, rows in result.items()
            if any(r.opening_mrr or r.closing_mrr or any(r.parts.values()) for r in rows)}


def _activity(rows: list[SegmentRow]) -> int:
    return sum(abs(v) for r in rows for v in r.parts.values())


def _summary(rows: list[SegmentRow]) -> SegmentRow:
    first, last = rows[0], rows[-1]
    total = SegmentRow(last.period, last.segment, first.opening_mrr, last.closing_mrr, first.customers_opening,
                       last.customers)
    for r in rows:
        for key, amount in r.parts.items():
            total.parts[key] += amount
        for key, n in r.counts.items():
            total.counts[key] += n
    return total


def segments(conn: Connection, periods: Sequence[Period], scope: Scope, dimension: str,
             top: int = 10) -> SegmentReport:
    """Segment rows of `periods` (ascending, contiguous) by `dimension`; `top` > 0 keeps the N
    largest segments and merges the rest into `(other)`."""
    if not periods:
        return SegmentReport(dimension, [], [], [])
    pieces = load_pieces(conn, scope, dimension, periods[0].start, scope.end_of(periods[-1]))
    events = load_events(conn, scope, periods[0].start, scope.end_of(periods[-1]))
    by_segment = _run(pieces, events, periods, scope, lambda s: s)
    ranked = sorted(by_segment, key=lambda s: (-by_segment[s][-1].closing_mrr, -_activity(by_segment[s]), s))
    summaries = [_summary(rows) for rows in by_segment.values()]
    movers = sorted((m for m in summaries if m.closing_mrr != m.opening_mrr),
                    key=lambda m: (-abs(m.closing_mrr - m.opening_mrr), m.segment))
    if top and len(ranked) > top:
        keep = set(ranked[:top])
        by_segment = _run(pieces, events, periods, scope, lambda s: s if s in keep else OTHER)
        ranked = [s for s in ranked[:top] if s in by_segment] + ([OTHER] if OTHER in by_segment else [])
        movers = movers[:top]
    order = {s: i for i, s in enumerate(ranked)}
    rows = sorted((r for rs in by_segment.values() for r in rs), key=lambda r: (r.period.start, order[r.segment]))
    return SegmentReport(dimension, ranked, rows, movers, [_summary(by_segment[s]) for s in ranked])


def segment_row_json(r: SegmentRow, currency: str, with_period: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"period": r.period.label} if with_period else {}
    out.update({"segment": r.segment, "opening_mrr": format_major(r.opening_mrr, currency),
                **{k: format_major(v, currency) for k, v in r.parts.items()},
                "closing_mrr": format_major(r.closing_mrr, currency),
                "customers_opening": r.customers_opening, "customers": r.customers,
                "arpa": format_major(r.arpa, currency), **r.counts})
    return out


def segments_json(report: SegmentReport, currency: str, kind: str, scope: Scope, top: int) -> dict[str, Any]:
    """Envelope + `dimension`, `segments` (ranked), `rows` (period × segment), `totals` (whole
    range per segment: first opening, summed movements, last closing) and `movers` (whole range,
    before merging into `(other)`), both with `change` and `growth_rate` = change / opening."""

    def whole(m: SegmentRow) -> dict[str, Any]:
        change = m.closing_mrr - m.opening_mrr
        return {**segment_row_json(m, currency, with_period=False), "change": format_major(change, currency),
                "growth_rate": format_ratio(ratio(change, m.opening_mrr))}

    return report_envelope(currency, kind, scope, [segment_row_json(r, currency) for r in report.rows],
                           customer_id=scope.customer_id, dimension=report.dimension, top=top,
                           segments=report.segments, totals=[whole(t) for t in report.totals],
                           movers=[whole(m) for m in report.movers])

