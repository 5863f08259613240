"""A customer's event log during simulation: collects events in business time, then stamps ids
and arrival (recorded) times, a small share of them late."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from ledger.events import EventBase

Arrival = tuple[dt.datetime, EventBase]


class CustomerLog:
    """Pending events of one customer; anything at or after `end` (the horizon) is dropped."""

    __slots__ = ("customer_id", "source", "end", "_pending")

    def __init__(self, customer_id: str, source: str, end: dt.datetime) -> None:
        self.customer_id = customer_id
        self.source = source
        self.end = end
        self._pending: list[tuple[dt.datetime, int, type, bool, dict[str, Any]]] = []

    def emit(self, at: dt.datetime, cls: type, late_ok: bool, **body: Any) -> None:
        """Record an event of type `cls` occurring at `at`. `late_ok` lets it arrive late; never
        for a `subscription.started` or a withdrawal, so nothing arrives before what it refers to."""
        if at < self.end:
            entry = (at.replace(microsecond=0), len(self._pending), cls, late_ok, body)
            self._pending.append(entry)

    def finish(self, rng: random.Random, late_rate: float, out: list[Arrival]) -> None:
        """Order by business time, number the events, and append (arrival, event) pairs to `out`.

        On-time events arrive seconds to minutes after they occur, in order; a late one arrives
        2 to 45 days later, after events that happened after it (a restatement)."""
        self._pending.sort(key=lambda p: (p[0], p[1]))
        cid, source = self.customer_id, self.source
        last: dt.datetime | None = None
        for number, (at, _, cls, late_ok, body) in enumerate(self._pending):
            event = cls(event_id=f"demo:{cid}:{number:03d}", customer_id=cid, occurred_at=at,
                        source=source, **body)
            if late_ok and rng.random() < late_rate:
                arrival = at + dt.timedelta(seconds=rng.randint(2 * 86400, 45 * 86400))
            else:
                arrival = at + dt.timedelta(seconds=rng.randint(1, 300))
                if last is not None and arrival < last:
                    arrival = last
                last = arrival
            out.append((arrival, event))
        self._pending.clear()
