"""`SnapshotRefresher`: reads a new `BusinessSnapshot` every `interval` seconds in the background.

An asyncio task on the store's event loop; each refresh is one read transaction
(`ProjectionStore.read`), so the gauges of one scrape are mutually consistent. A failed refresh
is logged and counted (`mrr_metrics_refresh_errors_total`) and the previous snapshot is kept, so
`mrr_metrics_snapshot_age_seconds` grows and can be alerted on.
"""

from __future__ import annotations

import asyncio
import logging
import time

from projections.metrics.collector import BusinessCollector
from projections.metrics.snapshot import DEFAULT_TOP_N, take_snapshot
from projections.store import ProjectionStore

log = logging.getLogger(__name__)


class SnapshotRefresher:
    """Keeps `collector.snapshot` fresh from `store`."""

    def __init__(self, store: ProjectionStore, collector: BusinessCollector, currency: str, *,
                 interval: float = 15.0, top: int = DEFAULT_TOP_N) -> None:
        self.store = store
        self.collector = collector
        self.currency = currency
        self.interval = interval
        self.top = top

    async def refresh(self) -> None:
        """Read one snapshot now and swap it in; raises on failure (after counting it)."""
        started = time.monotonic()
        try:
            snapshot = await self.store.read(lambda conn: take_snapshot(conn, self.currency, top=self.top))
        except Exception:
            self.collector.refresh_errors += 1
            raise
        self.collector.refresh_seconds = time.monotonic() - started
        self.collector.snapshot = snapshot

    async def run(self) -> None:
        """Refresh forever (until cancelled); failures are logged and retried next interval."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving the previous snapshot
                log.warning("business metrics refresh failed (keeping the previous snapshot): %s", exc)
            await asyncio.sleep(self.interval)
