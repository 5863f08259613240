"""Live projection equals replay: projecting a business as it was recorded (late events and late
FX rates included), the current rows after every catch-up are exactly the rows a from-scratch
engine run over the events recorded so far produces."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select

from ledger.demo import generate_business
from ledger.embedded import EmbeddedLedger
from ledger.events import FxRatePublished, customer_of
from projections.engine import FxTable, MrrSettings, compute_timeline
from projections.customer_state import ROW_KINDS, row_to_struct
from streams.bootstrap import open_store, project_pending
from streams.config import load_config


def replay(events) -> dict[str, set]:
    """Every row the engine derives from `events` (recorded order) from scratch."""
    fx = FxTable()
    history: dict[str, list] = defaultdict(list)
    for event in events:
        if isinstance(event, FxRatePublished):
            fx.add(event.base, event.quote, event.effective_date, event.rate)
        elif customer_of(event):
            history[customer_of(event)].append(event)
    rows: dict[str, set] = {table.name: set() for table, _, _ in ROW_KINDS}
    for customer_id, customer_events in history.items():
        timeline = compute_timeline(customer_id, customer_events, MrrSettings(), fx)
        for table, _, attribute in ROW_KINDS:
            rows[table.name] |= set(getattr(timeline, attribute))
    return rows


def current(conn) -> dict[str, set]:
    return {table.name: {row_to_struct(cls, row) for row in conn.execute(
                select(table).where(table.c.superseded_at.is_(None))).mappings()}
            for table, cls, _ in ROW_KINDS}


async def test_projection_equals_replay(tmp_path):
    arrivals = generate_business(seed=3, customers=60, months=14, start=dt.date(2023, 1, 1))
    config = load_config({"data_dir": str(tmp_path)}, environ={})
    by_time: dict[dt.datetime, list] = defaultdict(list)
    for arrival, event in arrivals:
        by_time[arrival].append(event)
    store = await open_store(config)
    recorded: list = []
    checks = 0
    try:
        async with EmbeddedLedger(tmp_path / "ledger.sqlite") as ledger:
            groups = list(by_time.items())
            for i, (arrival, events) in enumerate(groups):
                await ledger.append_many(events, now=arrival)
                recorded.extend(events)
                if i % 9 == 0 or i == len(groups) - 1:  # catch up now and then, as `mrr ingest` does
                    await project_pending(config, batch_size=40, store=store, ledger=ledger)
                    assert await store.read(current) == replay(recorded), f"after {arrival}"
                    checks += 1
        final = await store.read(current)
    finally:
        await store.close()
    assert checks > 20 and sum(len(v) for v in final.values()) > 300
    assert any(row.mrr is not None and row.currency != "USD" for row in final["subscription_mrr"])
