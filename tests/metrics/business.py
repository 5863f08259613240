"""A small business whose movements fall in the current and previous month, wherever `now` is.

Instants are placed relative to the start of the current month: inside the current month they
sit at fractions of the time elapsed so far (always <= now), so the current month has new
business, expansion, contraction, churn and reactivation whatever the date.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec

from ledger.events import Event
from projections.periods import period_of
from tests.engine.builders import item, terms

UTC = dt.timezone.utc


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def business(now: dt.datetime | None = None) -> list[Event]:
    """About a dozen events: USD and EUR subscriptions, monthly and yearly plans."""
    now = now or dt.datetime.now(UTC)
    month = period_of("month", now).start
    prev = period_of("month", month - dt.timedelta(days=1)).start
    older = period_of("month", prev - dt.timedelta(days=1)).start

    def cur(k: int) -> dt.datetime:  # k/10 of the current month so far (at least 1 s in)
        return month + max((now - month) * k / 10, dt.timedelta(seconds=k / 10))

    events: list[dict[str, Any]] = []

    def add(type_: str, when: dt.datetime, customer: str | None, **body: Any) -> None:
        data = {"type": type_, "event_id": f"m-{len(events)}", "occurred_at": _iso(when), **body}
        if customer:
            data["customer_id"] = customer
        events.append(data)

    def sub(type_: str, when: dt.datetime, customer: str, sid: str, *items: dict, **kw: Any) -> None:
        add(type_, when, customer, subscription_id=sid, terms=terms(*items, **kw))

    add("fx.rate_published", older, None, base="EUR", quote="USD", rate="1.1", effective_date=older.date().isoformat())
    sub("subscription.started", older + dt.timedelta(days=2), "c1", "s1", item(10000, price="basic"))
    sub("subscription.started", older + dt.timedelta(days=3), "c2", "s2", item(5000, price="basic"))
    sub("subscription.started", older + dt.timedelta(days=4), "c3", "s3", item(240000, interval="year", price="pro"))
    sub("subscription.started", prev + dt.timedelta(days=1), "c4", "s4", item(9000, price="team"), currency="EUR")
    sub("subscription.started", prev + dt.timedelta(days=2), "c5", "s5", item(3000, price="basic"))
    add("subscription.canceled", prev + dt.timedelta(days=5), "c5", subscription_id="s5")
    # current month
    sub("subscription.updated", cur(1), "c1", "s1", item(15000, price="basic"))          # expansion
    sub("subscription.updated", cur(2), "c3", "s3", item(120000, interval="year", price="pro"))  # contraction
    add("subscription.canceled", cur(3), "c2", subscription_id="s2")                     # churn
    sub("subscription.started", cur(4), "c5", "s6", item(4000, price="basic"))           # reactivation
    sub("subscription.started", cur(5), "c6", "s7", item(7000, price="team"))            # new business
    sub("subscription.started", cur(6), "c7", "s8", item(2500, qty=2, price="basic"), currency="GBP")  # unconverted
    return [msgspec.convert(e, Event) for e in events]


def jsonl(events: list[Event]) -> bytes:
    return b"\n".join(msgspec.json.encode(e) for e in events) + b"\n"


def ingest_events(env: dict[str, str], cwd: Path, body: bytes | None = None, timeout: float = 120) -> None:
    """`mrr ingest events.jsonl` in `cwd` as a subprocess, after writing `body` there (None: the
    file is written already); the ingest must succeed."""
    from tests.worker.support import MRR

    if body is not None:
        (cwd / "events.jsonl").write_bytes(body)
    out = subprocess.run([MRR, "ingest", "events.jsonl"], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr


def mrr_json(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    """`mrr report ... --json` as a subprocess (the real CLI, its own clock)."""
    from tests.worker.support import MRR

    out = subprocess.run([MRR, "report", *args, "--json"], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def current_row(report: dict[str, Any]) -> dict[str, Any]:
    """The report row of the current month."""
    label = period_of("month", dt.datetime.now(UTC)).label
    rows = [r for r in report["rows"] if r["period"] == label]
    assert rows, report
    return rows[0]


async def scrape(env: dict[str, str]) -> Any:
    """A `CollectorRegistry` holding a business collector refreshed once from the projections
    `env` configures (reporting currency USD)."""
    from prometheus_client import CollectorRegistry

    from projections.metrics import BusinessCollector, SnapshotRefresher
    from streams.bootstrap import open_store
    from streams.config import load_config

    store = await open_store(load_config(environ=env))
    try:
        collector = BusinessCollector()
        await SnapshotRefresher(store, collector, "USD").refresh()
    finally:
        await store.close()
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
