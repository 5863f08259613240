"""Report latency: the 24-month bridge, KPIs and cohorts read from projections in PostgreSQL.

Each report is the query function `mrr report` runs (`projections.queries`,
`projections.analytics.cohorts`) on one read transaction of a `ProjectionStore`, timed in this
process: what a report costs the database and Python once a process is up. `mrr report` as a
command adds its interpreter start-up and imports; `cli_bridge_seconds` times one such run.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ledger.demo.calendar import shift_month
from projections.analytics.cohorts import cohorts
from projections.queries import Scope, bridge, kpis, resolve_periods
from projections.queries.bridge import BridgeRow
from projections.store import ProjectionStore

MONTHS = 24
MRR = str(Path(sys.executable).with_name("mrr"))


def first_month(today: dt.date, months: int = MONTHS) -> str:
    """The label (YYYY-MM) of the first of the last `months` months, this one included."""
    year, month = shift_month(today.year, today.month, -(months - 1))
    return f"{year:04d}-{month:02d}"


def now_scope() -> Scope:
    """Reports as of now, as known now."""
    now = dt.datetime.now(dt.timezone.utc)
    return Scope(as_of=now, known_at=now)


def bridge_rows(conn: Any, scope: Scope) -> list[BridgeRow]:
    """The monthly bridge of the last 24 months."""
    periods = resolve_periods(conn, "month", scope, first_month(scope.as_of.date()), None)
    return bridge(conn, periods, scope)


def _kpis(conn: Any, scope: Scope, currency: str) -> Any:
    return kpis(conn, bridge_rows(conn, scope), scope, currency)


def _cohorts(conn: Any, scope: Scope, currency: str) -> Any:
    return cohorts(conn, resolve_periods(conn, "month", scope, first_month(scope.as_of.date()), None), scope)


REPORTS: dict[str, Callable[..., Any]] = {
    "bridge, 24 months": lambda conn, scope, currency: bridge_rows(conn, scope),
    "KPIs, 24 months": _kpis,
    "cohorts, 24 monthly cohorts": _cohorts,
}


async def measure(url: str, currency: str, repeats: int) -> dict[str, Any]:
    """Median milliseconds of each report over `repeats` runs (after one untimed warm-up run)."""
    store = ProjectionStore.from_url(url)
    results: dict[str, Any] = {}
    try:
        for name, query in REPORTS.items():
            await store.read(query, now_scope(), currency)
            times = []
            for _ in range(max(1, repeats)):
                started = time.perf_counter()
                await store.read(query, now_scope(), currency)
                times.append((time.perf_counter() - started) * 1000)
            results[name] = {"ms": round(statistics.median(times), 1), "all_ms": [round(t, 1) for t in times]}
    finally:
        await store.close()
    return results


def cli_bridge_seconds(url: str, bootstrap: str) -> float:
    """Wall time of one `mrr report bridge --json` process over the last 24 months."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env.update(MRR_DATABASE_URL=url, MRR_KAFKA_BOOTSTRAP=bootstrap)  # Kafka is the ledger: reports only read
    started = time.perf_counter()
    subprocess.run([MRR, "report", "bridge", "--json", "--from", first_month(dt.date.today())],
                   env=env, check=True, capture_output=True)
    return round(time.perf_counter() - started, 2)
