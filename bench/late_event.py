"""One late event, restated and reflected in a report: the incremental path's latency.

On projections a replay left in PostgreSQL, for each of `count` existing customers (a stable
pseudo-random pick), one event arrives late: a subscription of 100.00 a month in the reporting
currency that started a year ago, recorded now. A fresh `Projector` (the customer is not in its
cache, as after a worker restart) applies it as its own batch at the partition's next offset, and
then the 24-month bridge is read. Timed: `apply_batch` (load the customer, re-run its history
from the backdated instant, write the restated rows, movements and offsets in one transaction)
and the bridge read. `reflected` checks that the current month's closing MRR rose by exactly the
new subscription's MRR. The Kafka hop and the worker's batch wait are not in this figure; the
worker's latency phases measure those.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid
import zlib
from typing import Any

from sqlalchemy import text

from bench.reports import bridge_rows, now_scope
from ledger.events import Item, SubscriptionStarted, Terms
from ledger.kafka.writer import key_of
from ledger.ports import LedgerRecord
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.store import ProjectionStore

MONTHLY_AMOUNT = 10_000
PICK = text("SELECT customer_id FROM customer_mrr WHERE superseded_at IS NULL"
            " GROUP BY customer_id ORDER BY md5(customer_id) LIMIT :n")


def late_subscription(customer_id: str, currency: str, now: dt.datetime) -> SubscriptionStarted:
    """A monthly subscription of MONTHLY_AMOUNT that started a year before `now`, recorded now."""
    return SubscriptionStarted(
        event_id=f"bench-late-{uuid.uuid4().hex}", customer_id=customer_id,
        occurred_at=now - dt.timedelta(days=365), recorded_at=now,
        subscription_id=f"bench-late-{uuid.uuid4().hex[:12]}",
        terms=Terms(status="active", currency=currency,
                    items=[Item(price_id="bench-late", unit_amount=MONTHLY_AMOUNT, quantity=1,
                                interval="month")]))


async def measure(url: str, currency: str, partitions: int, count: int) -> dict[str, Any]:
    """Median milliseconds to apply one late event and to read the bridge after it."""
    store = ProjectionStore.from_url(url)
    applied, reported, reflected = [], [], 0
    try:
        customers = await store.read(lambda conn: [r[0] for r in conn.execute(PICK, {"n": count})])
        for customer in customers:
            before = (await store.read(bridge_rows, now_scope()))[-1].closing_mrr
            event = late_subscription(customer, currency, dt.datetime.now(dt.timezone.utc))
            partition = zlib.crc32(key_of(event)) % partitions
            offset = (await store.offsets()).get(partition, 0)
            projector = Projector(store, MrrSettings())
            started = time.perf_counter()
            await projector.apply_batch([LedgerRecord(partition, offset, event)], {})
            middle = time.perf_counter()
            rows = await store.read(bridge_rows, now_scope())
            done = time.perf_counter()
            applied.append((middle - started) * 1000)
            reported.append((done - middle) * 1000)
            reflected += rows[-1].closing_mrr - before == MONTHLY_AMOUNT
    finally:
        await store.close()
    total = [a + r for a, r in zip(applied, reported)]
    return {"events": len(total), "apply_ms": round(statistics.median(applied), 1),
            "report_ms": round(statistics.median(reported), 1),
            "total_ms": round(statistics.median(total), 1), "all_total_ms": [round(t, 1) for t in total],
            "reflected": f"{reflected}/{len(total)}"}
