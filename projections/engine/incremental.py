"""`CustomerEngine`: one customer's timeline kept current as its events are recorded.

A run from scratch costs O(history) per call, so re-running it for every new event makes a
customer's projection cost O(history²). The engine instead keeps a resumable run
(`timeline.start_run`) and feeds it only the new events when that provably gives the same result
as a run from scratch: every new event occurs after everything already applied, and no FX rate
added since could change a lookup the run made (its effective date is after every lookup day).
Anything else (a late or backdated event, an event inside the last classification window, a new
rate for a customer with foreign-currency subscriptions, another FX table or settings) rebuilds
the run from all events, which is always correct.

A new FX rate effective on day D only invalidates what the run did from its first rate lookup
for a day >= D on. So the engine keeps a few marks of its run (one per `MARK_SPACING` of business
time, the last `MARKS`): a rate restarts the run from the latest mark made before any such
lookup and feeds the events since, instead of re-running the whole history.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Sequence

from ledger.events import EventBase
from projections.engine.fx import FxTable
from projections.engine.model import Timeline
from projections.engine.settings import MrrSettings
from projections.engine.timeline import MRR_EVENT_TYPES, RunMark, start_run

if TYPE_CHECKING:
    from projections.engine.timeline import _Run

MARK_SPACING = dt.timedelta(days=7)
MARKS = 4


class CustomerEngine:
    """Feed batches of one customer's events (recorded order); `apply` returns the timeline as
    known after the batch, identical to `compute_timeline` over every event applied so far."""

    __slots__ = ("customer_id", "settings", "fx", "shared", "events", "_run", "_fed", "_marks",
                 "resumed", "rewound")

    def __init__(self, customer_id: str, settings: MrrSettings, fx: FxTable,
                 history: list[EventBase] | None = None) -> None:
        """`history`: a list the caller keeps and appends events to, then calls `catch_up`
        (the projector's customer state), so the engine need not keep a copy."""
        self.customer_id = customer_id
        self.settings = settings
        self.fx = fx
        self.shared = history is not None
        self.events: list[EventBase] = history if history is not None else []
        self._run = start_run(customer_id, settings, fx)
        self._fed = 0  # how many of `events` the run has applied
        self._marks: list[RunMark] = []
        self.resumed = 0  # how many `apply` calls continued the run instead of rebuilding it
        self.rewound = 0  # how many restarted it from a mark for an FX rate

    def apply(self, events: Sequence[EventBase]) -> Timeline:
        """Add a batch (recorded order; already in `history` when shared) and return the new
        timeline."""
        run: _Run | None = self._run
        changed = self.fx.earliest_change_since(run.fx_checked)
        if not self.shared:
            self.events.extend(events)
        if changed is not None and run.fx_lookup_max is not None and changed <= run.fx_lookup_max:
            run = self._rewound(changed)
        if run is not None and run.can_continue(events):
            self.resumed += 1
            self._maybe_mark(run, events)
            run.feed(events)
        else:
            run = start_run(self.customer_id, self.settings, self.fx)
            self._marks.clear()
            run.feed(self.events)
        run.fx_checked = self.fx.version
        self._run, self._fed = run, len(self.events)
        return run.fork().finish()

    def catch_up(self) -> Timeline:
        """With a shared `history`: apply the events appended to it since the last call."""
        return self.apply(self.events[self._fed:])

    def _rewound(self, rate_day: dt.date) -> "_Run | None":
        """The run restarted from the latest mark that no rate effective on `rate_day` can
        change, fed again with the events applied since; None without such a mark."""
        while self._marks and not self._marks[-1].unaffected_by(rate_day):
            self._marks.pop()
        if not self._marks:
            return None
        mark = self._marks[-1]
        run = mark.restore(self._run)
        run.feed(self.events[mark.fed:self._fed])
        self.rewound += 1
        return run

    def _maybe_mark(self, run: "_Run", events: Sequence[EventBase]) -> None:
        """Mark the run before feeding `events` when they start a new `MARK_SPACING` stretch."""
        if run.horizon is None:
            return
        first = min((e.occurred_at for e in events if type(e) in MRR_EVENT_TYPES), default=None)
        if first is None:
            return
        if self._marks and first - self._marks[-1].horizon < MARK_SPACING:  # type: ignore[operator]
            return
        self._marks.append(run.mark(self._fed))
        if len(self._marks) > MARKS:
            del self._marks[0]
