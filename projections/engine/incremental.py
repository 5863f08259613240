"""`CustomerEngine`: one customer's timeline kept current as its events are recorded.

A run from scratch costs O(history) per call, so re-running it for every new event makes a
customer's projection cost O(history²). The engine instead keeps a resumable run
(`timeline.start_run`) and feeds it only the new events when that provably gives the same result
as a run from scratch: every new event occurs after everything already applied, and no FX rate
added since could change a lookup the run made (its effective date is after every lookup day). Anything else (a late or backdated event, an event inside
the last classification window, a new rate for a customer with foreign-currency subscriptions,
another FX table or settings) rebuilds the run from all events, which is always correct.
"""

from __future__ import annotations

from typing import Sequence

from ledger.events import EventBase
from projections.engine.fx import FxTable
from projections.engine.model import Timeline
from projections.engine.settings import MrrSettings
from projections.engine.timeline import start_run


class CustomerEngine:
    """Feed batches of one customer's events (recorded order); `apply` returns the timeline as
    known after the batch, identical to `compute_timeline` over every event applied so far."""

    __slots__ = ("customer_id", "settings", "fx", "shared", "events", "_run", "resumed")

    def __init__(self, customer_id: str, settings: MrrSettings, fx: FxTable,
                 history: list[EventBase] | None = None) -> None:
        """`history`: a list the caller keeps and appends every applied event to before calling
        `apply` (the projector's customer state), so the engine need not keep a copy."""
        self.customer_id = customer_id
        self.settings = settings
        self.fx = fx
        self.shared = history is not None
        self.events: list[EventBase] = history if history is not None else []
        self._run = start_run(customer_id, settings, fx)
        self.resumed = 0  # how many `apply` calls continued the run instead of rebuilding it

    def apply(self, events: Sequence[EventBase]) -> Timeline:
        """Add a batch (recorded order; already in `history` when shared) and return the new
        timeline."""
        run = self._run
        changed = self.fx.earliest_change_since(run.fx_checked)
        stale = changed is not None and run.fx_lookup_max is not None and changed <= run.fx_lookup_max
        run.fx_checked = self.fx.version
        if not self.shared:
            self.events.extend(events)
        if not stale and run.can_continue(events):
            self.resumed += 1
            run.feed(events)
        else:
            run = self._run = start_run(self.customer_id, self.settings, self.fx)
            run.feed(self.events)
        return run.fork().finish()
