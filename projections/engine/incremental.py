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
from typing import TYPE_CHECKING, Any, Sequence

from ledger.events import EventBase
from projections.engine.fx import FxTable
from projections.engine.model import Timeline
from projections.engine.settings import MrrSettings
from projections.engine.timeline import MRR_EVENT_TYPES, RunMark, as_timeline, start_run

if TYPE_CHECKING:
    from projections.engine.timeline import _Run

MARK_SPACING = dt.timedelta(days=7)
MARKS = 4
_NOTHING_KEPT: dict[str, int] = {name: 0 for name in Timeline.__struct_fields__ if name != "customer_id"}


class TimelineParts:
    """A customer's timeline as the run's output rows so far plus the tail `finish` would add,
    and how much of those output rows is unchanged since the engine's previous answer.

    Keyed by `Timeline` attribute: `rows[name][:kept[name]]` are the very objects the previous
    answer had first in `rows[name]` (a resumed run only appends; a rebuilt one keeps nothing),
    so a consumer that matched those already need only look at the rest and at `tail`. `rows`
    are the run's live lists: use them before the engine is fed again."""

    __slots__ = ("customer_id", "rows", "kept", "tail")

    def __init__(self, customer_id: str, rows: dict[str, list[Any]], kept: dict[str, int],
                 tail: dict[str, list[Any]]) -> None:
        self.customer_id = customer_id
        self.rows = rows
        self.kept = kept
        self.tail = tail

    def timeline(self) -> Timeline:
        """The whole timeline (what `compute_timeline` gives over the same events)."""
        return as_timeline(self.customer_id, self.rows, self.tail)


class CustomerEngine:
    """Feed batches of one customer's events (recorded order); `apply` returns the timeline as
    known after the batch, identical to `compute_timeline` over every event applied so far."""

    __slots__ = ("customer_id", "settings", "fx", "shared", "events", "_run", "_fed", "_marks",
                 "_answered", "resumed", "rewound")

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
        self._answered = _NOTHING_KEPT  # output lengths of the last answer
        self.resumed = 0  # how many `apply` calls continued the run instead of rebuilding it
        self.rewound = 0  # how many restarted it from a mark for an FX rate

    def apply(self, events: Sequence[EventBase]) -> Timeline:
        """Add a batch (recorded order; already in `history` when shared) and return the new
        timeline."""
        return self.advance(events).timeline()

    def advance(self, events: Sequence[EventBase]) -> TimelineParts:
        """`apply`, answered as `TimelineParts` (no copy of the history's rows)."""
        current = self._run
        run: _Run | None = current
        kept = self._answered
        changed = self.fx.earliest_change_since(current.fx_checked)
        if not self.shared:
            self.events.extend(events)
        if changed is not None and current.fx_lookup_max is not None and changed <= current.fx_lookup_max:
            run, kept = self._rewound(changed, kept)
        if run is not None and run.can_continue(events):
            self.resumed += 1
            self._maybe_mark(run, events)
            run.feed(events)
        else:
            run, kept = start_run(self.customer_id, self.settings, self.fx), _NOTHING_KEPT
            self._marks.clear()
            run.feed(self.events)
        run.fx_checked = self.fx.version
        self._run, self._fed = run, len(self.events)
        rows = run.outputs()
        self._answered = {name: len(values) for name, values in rows.items()}
        return TimelineParts(self.customer_id, rows, kept, run.tail())

    def catch_up(self) -> TimelineParts:
        """With a shared `history`: advance by the events appended to it since the last call."""
        return self.advance(self.events[self._fed:])

    def _rewound(self, rate_day: dt.date, kept: dict[str, int]) -> "tuple[_Run | None, dict[str, int]]":
        """The run restarted from the latest mark that no rate effective on `rate_day` can
        change, fed again with the events applied since (None without such a mark), and how
        many output rows of the last answer it still holds."""
        while self._marks and not self._marks[-1].unaffected_by(rate_day):
            self._marks.pop()
        if not self._marks:
            return None, _NOTHING_KEPT
        mark = self._marks[-1]
        run = mark.restore(self._run)
        held = {name: min(kept[name], len(values)) for name, values in run.outputs().items()}
        run.feed(self.events[mark.fed:self._fed])
        self.rewound += 1
        return run, held

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
