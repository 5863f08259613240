"""One subscription's life in the demo: trial, changes, renewals, pauses, failed payments, the end.

`run_subscription` walks billing period by period, deciding with the customer's `rng` what
happens, and emits events into the customer's `CustomerLog` (which drops anything at or after the
simulation horizon, so a life simply stops being recorded there).
"""

from __future__ import annotations

import datetime as dt
import random

from ledger.demo.calendar import add_months
from ledger.demo.catalog import BASE_PLANS
from ledger.demo.log import CustomerLog
from ledger.demo.subscription import SubState
from ledger.events import (
    CancellationScheduled,
    CancellationWithdrawn,
    InvoicePaid,
    InvoicePaymentFailed,
    RefundIssued,
    SubscriptionCanceled,
    SubscriptionRenewed,
    SubscriptionStarted,
    SubscriptionUpdated,
)

ACTIVE, CHURNED, SWITCHED, TRIAL_LOST = "active", "churned", "switched", "trial_lost"

TRIAL = dt.timedelta(days=14)
TRIAL_CONVERSION = 0.7
IMMEDIATE_CANCEL_SHARE = 0.25
WITHDRAW_SHARE = 0.15
CHANGE_PER_MONTH = 0.06
SWITCH_TO_ANNUAL = 0.01
PAUSE = 0.008
ANNUAL_TRUE_UP = 0.3
PAYMENT_FAILURE = 0.025
PAYMENT_RECOVERY = 0.7
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def _change(rng: random.Random, s: SubState) -> None:
    """One mid-period plan change: seats up or down, plan up or down, an add-on on or off."""
    r = rng.random()
    tier = s.plan.tier
    if r < 0.45 and s.plan.per_seat:
        s.seats += rng.randint(1, max(1, s.seats // 4))
    elif r < 0.65 and s.plan.per_seat and s.seats > 1:
        s.seats -= rng.randint(1, max(1, s.seats // 5))
    elif r < 0.82 and tier is not None and tier < 2:
        s.plan = BASE_PLANS[tier + 1]
        s.seats = max(s.seats, rng.randint(2, 5))
    elif r < 0.88 and tier is not None and tier > 0:
        s.plan = BASE_PLANS[tier - 1]
        s.seats = 1 if tier == 1 else s.seats
    elif r < 0.96 and tier is not None:
        name = "storage" if "sso" in s.addons else "sso"
        s.addons[name] = s.addons.get(name, 0) + 1 if name == "storage" else 1
    elif s.addons:
        del s.addons[sorted(s.addons)[0]]
    else:
        s.seats += 1


def _changes(rng: random.Random, log: CustomerLog, s: SubState, start: dt.datetime,
             until: dt.datetime) -> None:
    """Mid-period changes on [start, until), at most one per month slot, in time order."""
    slots = s.months
    span = (until - start) / slots
    for slot in range(slots):
        if rng.random() < CHANGE_PER_MONTH:
            at = start + span * (slot + rng.random())
            _change(rng, s)
            log.emit(at, SubscriptionUpdated, True, subscription_id=s.subscription_id,
                     terms=s.terms())


def _start(rng: random.Random, log: CustomerLog, s: SubState, start: dt.datetime,
           trial: bool) -> bool:
    """Start (possibly with a trial); False if the trial ends without converting."""
    sid = s.subscription_id
    if not trial:
        s.start_period(start)
        log.emit(start, SubscriptionStarted, False, subscription_id=sid, terms=s.terms())
        return True
    s.status, s.trial_end = "trialing", start + TRIAL
    s.period_start, s.period_end = start, s.trial_end
    log.emit(start, SubscriptionStarted, False, subscription_id=sid, terms=s.terms())
    if rng.random() >= TRIAL_CONVERSION:
        log.emit(s.trial_end, SubscriptionCanceled, True, subscription_id=sid)
        return False
    s.status = "active"
    s.start_period(s.trial_end)
    log.emit(s.trial_end, SubscriptionUpdated, True, subscription_id=sid, terms=s.terms())
    return True


def _cancel_during(rng: random.Random, log: CustomerLog, s: SubState,
                   invoice: str) -> tuple[str, dt.datetime] | None:
    """This period ends the subscription: immediately, or scheduled for the period end (and maybe
    withdrawn). Returns the outcome, or None if the customer changed their mind."""
    ps, pe, sid = s.period_start, s.period_end, s.subscription_id
    assert ps is not None and pe is not None
    span = pe - ps
    if rng.random() < IMMEDIATE_CANCEL_SHARE:
        at = ps + span * rng.uniform(0.05, 0.95)
        _changes(rng, log, s, ps, at)
        log.emit(at, SubscriptionCanceled, True, subscription_id=sid)
        if rng.random() < (0.6 if s.months == 12 else 0.2):
            unused = int(s.invoice_amount() * ((pe - at) / span))
            if unused > 0:
                log.emit(at + HOUR * rng.randint(1, 48), RefundIssued, True, invoice_id=invoice,
                         amount=unused, currency=s.currency)
        return CHURNED, at
    at = ps + span * rng.uniform(0.1 if s.months == 1 else 0.7, 0.95)
    _changes(rng, log, s, ps, at)
    withdrawn = rng.random() < WITHDRAW_SHARE  # then the request may not arrive after its withdrawal
    log.emit(at, CancellationScheduled, not withdrawn, subscription_id=sid, cancel_at=pe)
    if withdrawn:
        log.emit(at + (pe - at) * rng.uniform(0.1, 0.9), CancellationWithdrawn, False,
                 subscription_id=sid)
        return None
    log.emit(pe, SubscriptionCanceled, True, subscription_id=sid)
    return CHURNED, pe


def _failed_payment(rng: random.Random, log: CustomerLog, s: SubState, invoice: str,
                    at: dt.datetime) -> dt.datetime | None:
    """A renewal invoice fails; paid within days, or the subscription is canceled (returned)."""
    sid, amount, cur = s.subscription_id, s.invoice_amount(), s.currency
    log.emit(at + HOUR, InvoicePaymentFailed, True, subscription_id=sid, invoice_id=invoice,
             amount_due=amount, currency=cur)
    if rng.random() < PAYMENT_RECOVERY:
        log.emit(at + DAY * rng.uniform(1, 6), InvoicePaid, True, subscription_id=sid,
                 invoice_id=invoice, amount_paid=amount, currency=cur)
        return None
    ended = at + DAY * rng.uniform(10, 20)
    log.emit(ended, SubscriptionCanceled, True, subscription_id=sid)
    return ended


def run_subscription(rng: random.Random, log: CustomerLog, s: SubState, start: dt.datetime, *,
                     trial: bool, renewals: bool, hazard: float) -> tuple[str, dt.datetime]:
    """Simulate until the subscription ends or the horizon; `hazard` is the churn probability per
    billing period, `renewals` whether the source reports monthly renewals and current periods
    (annual renewals are always reported)."""
    s.reports_periods = renewals
    if not _start(rng, log, s, start, trial):
        assert s.trial_end is not None
        return TRIAL_LOST, s.trial_end
    sid, number = s.subscription_id, 0
    while s.period_start is not None and s.period_start < log.end:
        pe, invoice = s.period_end, f"in_{sid}_{number}"
        assert pe is not None
        if rng.random() < hazard:
            ended = _cancel_during(rng, log, s, invoice)
            if ended is not None:
                return ended
        else:
            _changes(rng, log, s, s.period_start, pe)
        number += 1
        changed = False
        if s.discount_left is not None:
            s.discount_left -= 1
            if s.discount_left == 0:
                s.set_discount(None)
                changed = True
        if s.months == 1 and s.plan.tier and rng.random() < SWITCH_TO_ANNUAL:
            log.emit(pe, SubscriptionCanceled, False, subscription_id=sid)
            return SWITCHED, pe
        if s.months == 1 and rng.random() < PAUSE:
            s.status, s.period_start, s.period_end = "paused", pe, None
            log.emit(pe, SubscriptionUpdated, True, subscription_id=sid, terms=s.terms())
            resume = add_months(pe, rng.randint(1, 3))
            s.status = "active"
            s.start_period(resume)
            log.emit(resume, SubscriptionUpdated, False, subscription_id=sid, terms=s.terms())
            continue
        if s.months == 12 and s.plan.per_seat and rng.random() < ANNUAL_TRUE_UP:
            s.seats = max(1, s.seats + rng.randint(-s.seats // 5, max(1, s.seats // 3)))
            changed = True
        s.next_period()
        if renewals or s.months == 12:
            log.emit(pe, SubscriptionRenewed, True, subscription_id=sid, terms=s.terms())
        elif changed:
            log.emit(pe, SubscriptionUpdated, True, subscription_id=sid, terms=s.terms())
        if rng.random() < PAYMENT_FAILURE:
            ended_at = _failed_payment(rng, log, s, f"in_{sid}_{number}", pe)
            if ended_at is not None:
                return CHURNED, ended_at
    return ACTIVE, log.end


__all__ = ["ACTIVE", "CHURNED", "SWITCHED", "TRIAL_LOST", "run_subscription"]
