"""One customer's MRR timeline from its events (MRR_SPEC.md §2–§4): a small discrete-event run.

Events take effect at `occurred_at` (ties in recorded order). Time-driven effects (a scheduled
cancellation at `cancel_at`, auto-churn of a past-due subscription after the grace period) are
timers that fire at their own instant unless a withdrawing or paying event comes first; at the
same instant events go before timers. Everything due within `classification_window_seconds` of
the first due item is applied as one group, which yields at most one movement, dated at the
group's first instant.
"""

from __future__ import annotations

import datetime as dt
import heapq
from fractions import Fraction
from typing import Any, Callable, Sequence

from ledger.events import (
    CancellationScheduled,
    CancellationWithdrawn,
    EventBase,
    InvoicePaid,
    InvoicePaymentFailed,
    SubscriptionCanceled,
    SubscriptionRenewed,
    SubscriptionStarted,
    SubscriptionUpdated,
    Terms,
)
from projections.engine.fx import FxTable, convert_minor
from projections.engine.model import (
    CustomerInterval,
    FxImpact,
    Movement,
    SubscriptionInterval,
    Timeline,
)
from projections.engine.pricing import ZERO_STATUSES, billing_interval_label, list_mrr, plan_of
from projections.engine.settings import MrrSettings


_CANCEL = "cancel"
_ONE = Fraction(1)
_AUTO_CHURN = "auto_churn"


_SUBSCRIPTION_FIELDS = (
    "subscription_id", "terms", "list_mrr", "ended", "cancel_at", "past_due_since",
    "auto_churned", "rate", "emitted", "emitted_from", "state", "plan", "interval",
)


class _Subscription:
    """Mutable state of one subscription during a run."""

    __slots__ = _SUBSCRIPTION_FIELDS

    def __init__(self, subscription_id: str) -> None:
        self.subscription_id = subscription_id
        self.terms: Terms | None = None
        self.list_mrr = 0
        self.ended = False
        self.cancel_at: dt.datetime | None = None
        self.past_due_since: dt.datetime | None = None
        self.auto_churned = False
        self.rate: Fraction | None = None
        self.emitted: tuple | None = None
        self.emitted_from: dt.datetime | None = None
        self.state: tuple[int, Fraction | None, int | None] = (0, None, 0)
        self.plan = ""
        self.interval = ""

    def copy(self) -> "_Subscription":
        # Spelled out: a getattr/setattr loop over __slots__ cost 3x as much, and runs copy
        # their subscriptions for every tail and every mark.
        other = _Subscription(self.subscription_id)  # no __new__: the engine may be compiled (mypyc)
        other.terms = self.terms
        other.list_mrr = self.list_mrr
        other.ended = self.ended
        other.cancel_at = self.cancel_at
        other.past_due_since = self.past_due_since
        other.auto_churned = self.auto_churned
        other.rate = self.rate
        other.emitted = self.emitted
        other.emitted_from = self.emitted_from
        other.state = self.state
        other.plan = self.plan
        other.interval = self.interval
        return other

    def live(self) -> bool:
        return self.terms is not None and not self.ended and not self.auto_churned

    def native(self, on_request: bool) -> int:
        """MRR in the subscription's currency, after status and cancellation rules."""
        if not self.live():
            return 0
        if on_request and self.cancel_at is not None:
            return 0
        if self.terms.status in ZERO_STATUSES:  # type: ignore[union-attr]
            return 0
        return self.list_mrr

    def status(self) -> str:
        if self.past_due_since is not None:
            return "past_due"
        return self.terms.status  # type: ignore[union-attr]


def _copy_subs(subs: dict[str, _Subscription]) -> dict[str, _Subscription]:
    """Independent copies of a run's subscription states (same order)."""
    return {sub_id: sub.copy() for sub_id, sub in subs.items()}


_RUN_FIELDS = (
    "customer_id", "settings", "fx", "reporting", "on_request", "grace", "window", "subs",
    "timers", "timer_seq", "had_mrr", "mrr", "mrr_from", "customer_intervals",
    "subscription_intervals", "movements", "fx_impacts", "horizon", "fx_lookup_max",
    "fx_checked",
)


class _Run:
    """The discrete-event run over one customer's events."""

    # Slots: runs are kept per customer by the projector's cache; without a __dict__ each is one
    # object fewer for Python's cyclic garbage collector to scan.
    __slots__ = _RUN_FIELDS

    def __init__(self, customer_id: str, settings: MrrSettings, fx: FxTable) -> None:
        self.customer_id = customer_id
        self.settings = settings
        self.fx = fx
        self.reporting = settings.reporting_currency
        self.on_request = settings.churn_recognition == "on_request"
        self.grace = (
            None if settings.past_due_grace_days is None
            else dt.timedelta(days=settings.past_due_grace_days)
        )
        self.window = dt.timedelta(seconds=settings.classification_window_seconds)
        self.subs: dict[str, _Subscription] = {}
        self.timers: list[tuple[dt.datetime, int, str, str, object, str]] = []
        self.timer_seq = 0
        self.had_mrr = False
        self.mrr = 0
        self.mrr_from: dt.datetime | None = None
        self.customer_intervals: list[CustomerInterval] = []
        self.subscription_intervals: list[SubscriptionInterval] = []
        self.movements: list[Movement] = []
        self.fx_impacts: list[FxImpact] = []
        self.horizon: dt.datetime | None = None
        """The last applied group's horizon: everything due up to it has been applied."""
        self.fx_lookup_max: dt.date | None = None
        """The latest day a rate was looked up for (a rate effective later changes nothing)."""
        self.fx_checked = fx.version
        """`fx.version` when the run's lookups were last known to be current."""

    # --- conversion -------------------------------------------------------------------------
    def _lock_rate(self, sub: _Subscription, terms: Terms, occurred_at: dt.datetime) -> None:
        if terms.currency == self.reporting:
            sub.rate = _ONE
            return
        start = terms.current_period_start or occurred_at
        day = start.astimezone(dt.timezone.utc).date()
        if self.fx_lookup_max is None or day > self.fx_lookup_max:
            self.fx_lookup_max = day
        sub.rate = self.fx.rate(terms.currency, self.reporting, day)

    def _reporting(self, native: int, sub: _Subscription) -> int | None:
        if native == 0:
            return 0
        if sub.rate is None:
            return None
        return convert_minor(native, sub.rate, sub.terms.currency, self.reporting)  # type: ignore[union-attr]

    # --- timers -----------------------------------------------------------------------------
    def _push_timer(self, when: dt.datetime, kind: str, sub_id: str, token: object, cause: str) -> None:
        self.timer_seq += 1
        heapq.heappush(self.timers, (when, self.timer_seq, kind, sub_id, token, cause))

    def _fire(self, kind: str, sub: _Subscription, token: object) -> bool:
        if kind == _CANCEL:
            if sub.cancel_at != token or sub.ended:
                return False
            sub.ended = True
            sub.cancel_at = None
            return True
        if sub.past_due_since != token or not sub.live():
            return False
        sub.auto_churned = True
        return True

    # --- events -----------------------------------------------------------------------------
    def _sub(self, sub_id: str) -> _Subscription:
        sub = self.subs.get(sub_id)
        if sub is None:
            sub = self.subs[sub_id] = _Subscription(sub_id)
        return sub

    def _start(self, sub: _Subscription, event: SubscriptionStarted) -> None:
        self._set_terms(sub, event.terms, event.occurred_at, relock=True)
        sub.ended = sub.auto_churned = False
        sub.cancel_at = sub.past_due_since = None

    def _renew(self, sub: _Subscription, event: SubscriptionRenewed) -> None:
        self._set_terms(sub, event.terms, event.occurred_at, relock=True)
        sub.ended = sub.auto_churned = False

    def _update(self, sub: _Subscription, event: SubscriptionUpdated) -> None:
        relock = sub.terms is None or sub.terms.currency != event.terms.currency
        self._set_terms(sub, event.terms, event.occurred_at, relock=relock)
        if event.terms.status != "past_due" and sub.past_due_since is not None:
            sub.past_due_since = None
            sub.auto_churned = False

    def _schedule_cancel(self, sub: _Subscription, event: CancellationScheduled) -> None:
        if sub.live():
            sub.cancel_at = max(event.cancel_at, event.occurred_at)
            self._push_timer(sub.cancel_at, _CANCEL, sub.subscription_id, sub.cancel_at, event.event_id)

    def _withdraw_cancel(self, sub: _Subscription, event: CancellationWithdrawn) -> None:
        sub.cancel_at = None

    def _cancel(self, sub: _Subscription, event: SubscriptionCanceled) -> None:
        sub.ended = True
        sub.cancel_at = sub.past_due_since = None

    def _payment_failed(self, sub: _Subscription, event: InvoicePaymentFailed) -> None:
        if sub.live() and sub.past_due_since is None:
            sub.past_due_since = event.occurred_at
            if self.grace is not None:
                self._push_timer(event.occurred_at + self.grace, _AUTO_CHURN, sub.subscription_id,
                                 event.occurred_at, event.event_id)

    def _paid(self, sub: _Subscription, event: InvoicePaid) -> None:
        sub.past_due_since = None
        sub.auto_churned = False

    def _set_terms(self, sub: _Subscription, terms: Terms, at: dt.datetime, relock: bool) -> None:
        if relock and terms.currency != self.reporting:
            self._lock_rate(sub, terms, at)
        elif relock:
            sub.rate = _ONE
        previous = sub.terms
        sub.terms = terms
        if previous is not None and previous.items == terms.items and previous.discount == terms.discount:
            return  # same prices (a renewal, a status change): MRR, plan and interval are unchanged
        sub.list_mrr = list_mrr(terms, self.settings.once_discounts_reduce_mrr)
        sub.plan = plan_of(terms)
        sub.interval = billing_interval_label(terms)

    # --- the run ----------------------------------------------------------------------------
    def _refresh(self, sub: _Subscription) -> tuple[int, Fraction | None, int | None]:
        native = sub.native(self.on_request)
        sub.state = (native, sub.rate, self._reporting(native, sub))
        return sub.state

    def feed(self, events: Sequence[EventBase]) -> None:
        """Apply `events` (recorded order) and every timer due up to the last of them.

        Timers due later stay pending, so more events may be fed afterwards, provided they all
        occur after `horizon` (`can_continue`); `finish` then gives the same timeline as one run
        over every event. Feeding one event at a time costs O(that event), not O(history).
        """
        ordered = sorted((e for e in events if type(e) in _APPLY), key=_occurred)
        self._advance(ordered, drain=False)

    def can_continue(self, events: Sequence[EventBase]) -> bool:
        """Whether `feed(events)` now equals a run from scratch over all events: each new event
        occurs after the last applied group (else it belongs in or before that group)."""
        horizon = self.horizon
        return horizon is None or all(e.occurred_at > horizon for e in events if type(e) in _APPLY)

    def finish(self) -> Timeline:
        """Fire the pending timers, close the open intervals and return the timeline (once)."""
        self._advance([], drain=True)
        self._close_all()
        return self.timeline()

    def mark(self, fed: int) -> "RunMark":
        """A snapshot to restart from later (`RunMark.restore`); `fed`: events fed so far."""
        return RunMark(self, fed)

    def outputs(self) -> dict[str, list[Any]]:
        """The run's output rows so far, per `Timeline` attribute: the run's own lists, which
        only ever grow while it is fed (read them before feeding it again)."""
        return {name: getattr(self, name) for name in _OUTPUTS}

    def _clone(self) -> _Run:
        """A run sharing every attribute of this one (the callers replace what they change)."""
        other = _Run(self.customer_id, self.settings, self.fx)  # no __new__: the engine may be compiled (mypyc)
        for name in _RUN_FIELDS:
            setattr(other, name, getattr(self, name))
        return other

    def tail(self) -> dict[str, list[Any]]:
        """The rows `finish` would add to `outputs()` (pending timers fired, open intervals
        closed), per `Timeline` attribute, without changing this run: it can be fed further.
        Costs O(subscriptions + pending timers), not O(history)."""
        other = self._clone()
        other.subs = _copy_subs(self.subs)
        other.timers = list(self.timers)
        for name in _OUTPUTS:
            setattr(other, name, [])  # the outputs are only appended to: collect just the tail
        other._advance([], drain=True)
        other._close_all()
        return other.outputs()

    def _advance(self, ordered: list[EventBase], drain: bool) -> None:
        i, n = 0, len(ordered)
        timers = self.timers
        window = self.window
        while i < n or (drain and timers):
            t_event = ordered[i].occurred_at if i < n else None
            t_timer = timers[0][0] if timers else None
            start: dt.datetime = (  # one of the two is set while the loop runs
                t_event if t_timer is None or (t_event is not None and t_event <= t_timer) else t_timer)  # type: ignore[assignment]
            horizon = start + window if window else start
            touched: dict[str, tuple] = {}
            causes: list[str] = []
            while True:
                t_event = ordered[i].occurred_at if i < n else None
                t_timer = timers[0][0] if timers else None
                if t_event is not None and t_event <= horizon and (t_timer is None or t_event <= t_timer):
                    event = ordered[i]
                    i += 1
                    sub = self._sub(event.subscription_id)  # type: ignore[attr-defined]
                    if sub.subscription_id not in touched:
                        touched[sub.subscription_id] = sub.state
                    _APPLY[type(event)](self, sub, event)
                    causes.append(event.event_id)
                elif t_timer is not None and t_timer <= horizon:
                    _, _, kind, sub_id, token, cause = heapq.heappop(timers)
                    sub = self.subs[sub_id]
                    if sub_id not in touched:
                        touched[sub_id] = sub.state
                    if self._fire(kind, sub, token):
                        causes.append(cause)
                else:
                    break
            self._settle(start, touched, causes)
            self.horizon = horizon

    def _settle(self, at: dt.datetime, touched: dict[str, tuple], causes: list[str]) -> None:
        fx = 0
        change = 0
        subs = self.subs
        for sub_id, (native, rate, reporting) in touched.items():
            sub = subs[sub_id]
            after = self._refresh(sub)
            new_rate = after[1]
            if native and rate is not None and new_rate is not None and new_rate is not rate and new_rate != rate:
                fx += convert_minor(native, new_rate, sub.terms.currency, self.reporting) - reporting  # type: ignore[union-attr,operator]
            change += (after[2] or 0) - (reporting or 0)
            self._emit_subscription(sub, at, after)
        if not change and not fx:
            return
        before_total = self.mrr
        after_total = before_total + change
        ids = tuple(dict.fromkeys(causes))
        if fx:
            self.fx_impacts.append(FxImpact(self.customer_id, at, fx, ids))
        delta = change - fx
        if delta:
            self.movements.append(
                Movement(self.customer_id, at, self._classify(before_total, after_total, delta),
                         delta, before_total, after_total, ids)
            )
        if change:
            self._close_customer_interval(at)
            self.mrr, self.mrr_from = after_total, at
        if after_total > 0:
            self.had_mrr = True

    def _classify(self, before: int, after: int, delta: int) -> str:
        if before == 0:
            return "reactivation" if self.had_mrr else "new_business"
        if after == 0:
            return "churn"
        return "expansion" if delta > 0 else "contraction"

    def _close_customer_interval(self, at: dt.datetime | None) -> None:
        if self.mrr and self.mrr_from is not None:
            self.customer_intervals.append(CustomerInterval(self.customer_id, self.mrr_from, at, self.mrr))

    def _emit_subscription(self, sub: _Subscription, at: dt.datetime, state: tuple) -> None:
        native, _, reporting = state
        key = None
        if sub.live():
            terms = sub.terms
            key = (sub.status(), terms.currency, native, reporting, sub.plan, sub.interval)  # type: ignore[union-attr]
        if key == sub.emitted:
            return
        self._close_subscription_interval(sub, at)
        sub.emitted, sub.emitted_from = key, at

    def _close_subscription_interval(self, sub: _Subscription, at: dt.datetime | None) -> None:
        if sub.emitted is None or sub.emitted_from is None:
            return
        status, currency, native, reporting, plan, interval = sub.emitted
        self.subscription_intervals.append(
            SubscriptionInterval(self.customer_id, sub.subscription_id, sub.emitted_from, at,
                                 status, currency, native, reporting, plan, interval)
        )

    def _close_all(self) -> None:
        self._close_customer_interval(None)
        for sub in self.subs.values():
            self._close_subscription_interval(sub, None)

    def timeline(self) -> Timeline:
        return as_timeline(self.customer_id, self.outputs())


def as_timeline(customer_id: str, rows: dict[str, list[Any]], tail: dict[str, list[Any]] | None = None) -> Timeline:
    """A `Timeline` of output rows per attribute (`_Run.outputs`), followed by `tail`'s."""
    def rows_of(name: str) -> list[Any]:
        return rows[name] + tail[name] if tail is not None else rows[name]

    return Timeline(
        customer_id=customer_id,
        customer_intervals=tuple(rows_of("customer_intervals")),
        subscription_intervals=tuple(sorted(rows_of("subscription_intervals"))),
        movements=tuple(rows_of("movements")),
        fx_impacts=tuple(rows_of("fx_impacts")),
    )


_OUTPUTS = ("customer_intervals", "subscription_intervals", "movements", "fx_impacts")
_MARKED = ("timer_seq", "had_mrr", "mrr", "mrr_from", "horizon", "fx_lookup_max")


class RunMark:
    """A run's state at one point, without copying its output rows: they only ever grow, so the
    run it was taken of (or any run restored from it and fed further) still holds them first."""

    __slots__ = ("fed", "horizon", "fx_lookup_max", "_values", "_subs", "_timers", "_lengths")

    def __init__(self, run: _Run, fed: int) -> None:
        self.fed = fed
        self.horizon = run.horizon
        self.fx_lookup_max = run.fx_lookup_max
        self._values = tuple(getattr(run, name) for name in _MARKED)
        self._subs = _copy_subs(run.subs)
        self._timers = list(run.timers)
        self._lengths = tuple(len(getattr(run, name)) for name in _OUTPUTS)

    def unaffected_by(self, rate_day: dt.date) -> bool:
        """Whether every rate lookup before the mark was for a day before `rate_day`."""
        return self.fx_lookup_max is None or self.fx_lookup_max < rate_day

    def restore(self, descendant: _Run) -> _Run:
        """A new run in the marked state; `descendant` is the marked run or one derived from it."""
        run = descendant._clone()
        for name, value in zip(_MARKED, self._values):
            setattr(run, name, value)
        run.subs = _copy_subs(self._subs)
        run.timers = list(self._timers)
        for name, length in zip(_OUTPUTS, self._lengths):
            setattr(run, name, getattr(descendant, name)[:length])
        return run


_APPLY: dict[type, Callable[[_Run, _Subscription, Any], None]] = {
    SubscriptionStarted: _Run._start,
    SubscriptionRenewed: _Run._renew,
    SubscriptionUpdated: _Run._update,
    CancellationScheduled: _Run._schedule_cancel,
    CancellationWithdrawn: _Run._withdraw_cancel,
    SubscriptionCanceled: _Run._cancel,
    InvoicePaymentFailed: _Run._payment_failed,
    InvoicePaid: _Run._paid,
}
MRR_EVENT_TYPES = tuple(_APPLY)


def _occurred(event: EventBase) -> dt.datetime:
    return event.occurred_at


def compute_timeline(
    customer_id: str, events: Sequence[EventBase], settings: MrrSettings, fx: FxTable
) -> Timeline:
    """The customer's timeline from scratch; `events` are its events in recorded order."""
    run = _Run(customer_id, settings, fx)
    run.feed(events)
    return run.finish()


def start_run(customer_id: str, settings: MrrSettings, fx: FxTable) -> _Run:
    """A fresh resumable run (`feed`, `can_continue`, `outputs`, `tail`, `finish`); see
    `CustomerEngine`."""
    return _Run(customer_id, settings, fx)
