"""One consistent snapshot of the business numbers, computed with the report queries.

Nothing here re-derives a KPI: the current and previous month come from `queries.bridge` and
`queries.kpis` exactly as `mrr report bridge|kpis --period month` computes them at the same
`as_of`/`known_at`; only the segment breakdown (`segments.py`) is a query of its own, and the last
`mrr verify` summary (`verify.py`) is one row of `projection_meta`, read in the same transaction.
Money stays in integer minor units (averages as exact Decimals) until `units.major` at export time.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from sqlalchemy import Connection

from projections.periods import Period, period_of
from projections.queries.bridge import BridgeRow, bridge
from projections.queries.common import Scope
from projections.queries.kpis import Kpis, kpis
from projections.metrics.segments import DIMENSIONS, mrr_by, top_n
from projections.metrics.verify import VerifyStatus, read_verify

DEFAULT_TOP_N = 20


@dataclass(frozen=True)
class BusinessSnapshot:
    """The numbers one refresh read; `taken_at` is wall-clock seconds (time.time())."""

    currency: str
    as_of: dt.datetime
    taken_at: float
    current: BridgeRow
    previous: BridgeRow
    current_kpis: Kpis
    previous_kpis: Kpis
    segments: dict[str, dict[str, int]] = field(default_factory=dict)
    """dimension (plan, billing_interval, currency) -> label value -> MRR minor units (top N + other)."""
    verify: VerifyStatus | None = None
    """The last `mrr verify` summary; None when no verify ever ran (no mrr_verify_* gauge then)."""


def month_periods(as_of: dt.datetime) -> tuple[Period, Period]:
    """(previous month, current month) of `as_of`, UTC."""
    current = period_of("month", as_of)
    previous = period_of("month", current.start - dt.timedelta(microseconds=1))
    return previous, current


def take_snapshot(conn: Connection, currency: str, *, as_of: dt.datetime | None = None,
                  top: int = DEFAULT_TOP_N) -> BusinessSnapshot:
    """Read the snapshot at `as_of` (default now), known now, on one connection."""
    now = dt.datetime.now(dt.timezone.utc)
    scope = Scope(as_of=as_of or now, known_at=now)
    previous, current = month_periods(scope.as_of)
    rows = bridge(conn, [previous, current], scope)
    previous_kpis, current_kpis = kpis(conn, rows, scope, currency)
    segments = {d: top_n(mrr_by(conn, scope, d), top) for d in DIMENSIONS}
    return BusinessSnapshot(currency, scope.as_of, time.time(), rows[1], rows[0],
                            current_kpis, previous_kpis, segments, read_verify(conn))
