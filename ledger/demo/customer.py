"""One demo customer's whole history: who they are, their subscriptions, churn and comebacks."""

from __future__ import annotations

import datetime as dt
import random

from ledger.demo.calendar import add_months
from ledger.demo.catalog import (
    ANALYTICS,
    ANNUAL,
    CHANNEL_WEIGHTS,
    CHANNELS,
    MARKETS,
    MONTHLY,
    SEGMENTS,
)
from ledger.demo.lifecycle import CHURNED, SWITCHED, TRIAL_LOST, run_subscription
from ledger.demo.log import Arrival, CustomerLog
from ledger.demo.subscription import SubState, new_subscription
from ledger.events import CustomerAttributesSet

_COUNTRIES = [m[:2] for m in MARKETS]
_COUNTRY_WEIGHTS = [m[2] for m in MARKETS]
_SEGMENT_NAMES = [s[0] for s in SEGMENTS]
_SEGMENT_WEIGHTS = [s[1] for s in SEGMENTS]
_NEXT_SEGMENT = {"smb": "mid_market", "mid_market": "enterprise", "enterprise": "enterprise"}

# Churn probability per billing period: (monthly plans, annual plans at each renewal).
HAZARD = {"smb": (0.035, 0.22), "mid_market": (0.02, 0.14), "enterprise": (0.012, 0.08)}
TRIAL_SHARE = 0.3
RENEWAL_WEBHOOK_SHARE = 0.8
SECOND_PRODUCT_SHARE = 0.06
REACTIVATION_SHARE = 0.15
SEGMENT_CHANGE_SHARE = 0.04


def simulate_customer(rng: random.Random, index: int, signup: dt.datetime, end: dt.datetime,
                      late_rate: float, out: list[Arrival]) -> str:
    """Append the customer's (arrival, event) pairs to `out`; return their acquisition channel."""
    cid = f"cus_{index:06d}"
    (country, currency), = rng.choices(_COUNTRIES, weights=_COUNTRY_WEIGHTS)
    segment = rng.choices(_SEGMENT_NAMES, weights=_SEGMENT_WEIGHTS)[0]
    channel = rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS[segment])[0]
    # Customers billed through Stripe report every renewal and the current period in terms;
    # API-billed ones report only annual renewals and no periods (a stale period would mislead).
    renewals = rng.random() < RENEWAL_WEBHOOK_SHARE
    log = CustomerLog(cid, "stripe" if renewals else "api", end)
    attributes = {"country": country, "segment": segment, "channel": channel}
    log.emit(signup, CustomerAttributesSet, True, attributes=attributes)
    if rng.random() < SEGMENT_CHANGE_SHARE:
        grown = dict(attributes, segment=_NEXT_SEGMENT[segment])
        log.emit(signup + dt.timedelta(days=rng.uniform(60, 500)), CustomerAttributesSet, True,
                 attributes=grown)

    def hazard(s: SubState) -> float:
        monthly, annual = HAZARD[segment]
        return monthly if s.interval == MONTHLY else annual

    number = 0
    sub = new_subscription(rng, f"sub_{cid}_{number}", segment, currency)
    trial = sub.interval == MONTHLY and rng.random() < TRIAL_SHARE
    outcome, at = run_subscription(rng, log, sub, signup, trial=trial, renewals=renewals,
                                   hazard=hazard(sub))
    if segment != "smb" and rng.random() < SECOND_PRODUCT_SHARE:
        extra = SubState(f"sub_{cid}_x", currency, ANALYTICS, MONTHLY, rng.randint(1, 10))
        run_subscription(rng, log, extra, signup + dt.timedelta(days=rng.uniform(20, 400)),
                         trial=False, renewals=renewals, hazard=0.04)
    comebacks = 0
    while at < end:
        number += 1
        if outcome == SWITCHED:  # monthly → annual: one subscription replaces another at once
            sub = _annual_copy(sub, f"sub_{cid}_{number}")
            start = at
        elif (outcome in (CHURNED, TRIAL_LOST) and comebacks < 2
              and rng.random() < REACTIVATION_SHARE):
            comebacks += 1
            sub = new_subscription(rng, f"sub_{cid}_{number}", segment, currency)
            start = add_months(at, rng.randint(1, 8))
        else:
            break
        outcome, at = run_subscription(rng, log, sub, start, trial=False, renewals=renewals,
                                       hazard=hazard(sub))
    log.finish(rng, late_rate, out)
    return channel


def _annual_copy(old: SubState, subscription_id: str) -> SubState:
    """The same plan, seats and add-ons on annual billing, without the old coupon."""
    new = SubState(subscription_id, old.currency, old.plan, ANNUAL, old.seats)
    new.addons = dict(old.addons)
    return new
