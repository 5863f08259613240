"""Running the engine in tests and reading its output tersely."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Iterable

from projections.engine import FxTable, MrrSettings, Timeline, compute_timeline


def run(*events: Any, fx: FxTable | None = None, customer: str = "c1", **settings: Any) -> Timeline:
    return compute_timeline(customer, list(events), MrrSettings(**settings), fx or FxTable())


def moves(timeline: Timeline) -> list[tuple[str, str, int]]:
    """(instant, type, amount) per movement; instant as `2024-03-01` or with time when not midnight."""
    return [(_label(m.effective_at), m.type, m.amount) for m in timeline.movements]


def _label(instant: dt.datetime) -> str:
    if instant.time() == dt.time(0):
        return instant.date().isoformat()
    return instant.strftime("%Y-%m-%dT%H:%M:%S")


def mrr_at(timeline: Timeline, instant: dt.datetime) -> int:
    """Customer MRR in force at `instant`."""
    for interval in timeline.customer_intervals:
        if interval.valid_from <= instant and (interval.valid_to is None or instant < interval.valid_to):
            return interval.mrr
    return 0


def fx_table(*rates: tuple[str, str, str, str]) -> FxTable:
    table = FxTable()
    for base, quote, day, rate in rates:
        table.add(base, quote, dt.date.fromisoformat(day), Decimal(rate))
    return table


def changes_balance(timeline: Timeline) -> bool:
    """Every change of customer MRR equals the movements plus FX impact at that instant."""
    instants: dict[dt.datetime, int] = {}
    for m in timeline.movements:
        instants[m.effective_at] = instants.get(m.effective_at, 0) + m.amount
    for f in timeline.fx_impacts:
        instants[f.effective_at] = instants.get(f.effective_at, 0) + f.amount
    edges = {i.valid_from for i in timeline.customer_intervals} | {
        i.valid_to for i in timeline.customer_intervals if i.valid_to is not None}
    eps = dt.timedelta(microseconds=1)
    for instant in edges | set(instants):
        if mrr_at(timeline, instant) - mrr_at(timeline, instant - eps) != instants.get(instant, 0):
            return False
    return True


def all_balanced(timelines: Iterable[Timeline]) -> bool:
    return all(changes_balance(t) for t in timelines)
