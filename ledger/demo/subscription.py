"""A demo subscription's mutable state, and its `Terms` snapshot (the full state, never a delta)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from ledger.demo.calendar import add_months
from ledger.demo.catalog import (
    ADDONS,
    ANNUAL,
    BASE_PLANS,
    COUPONS_ANNUAL,
    COUPONS_MONTHLY,
    MONTHLY,
    Plan,
)
from ledger.events import Discount, Item, Terms

_ITEMS: dict[tuple[str, int, int, str], Item] = {}
"""Memo of immutable Items: the same price and quantity recur millions of times at scale."""


def _item(price_id: str, unit_amount: int, quantity: int, interval: str) -> Item:
    key = (price_id, unit_amount, quantity, interval)
    item = _ITEMS.get(key)
    if item is None:
        item = _ITEMS[key] = Item(price_id=price_id, unit_amount=unit_amount, quantity=quantity,
                                  interval=interval)  # type: ignore[arg-type]
    return item


class SubState:
    """What the billing system knows about one subscription right now."""

    __slots__ = ("subscription_id", "currency", "plan", "interval", "seats", "addons", "discount",
                 "discount_left", "status", "period_start", "period_end", "trial_end", "anchor_day",
                 "reports_periods")

    def __init__(self, subscription_id: str, currency: str, plan: Plan, interval: str,
                 seats: int) -> None:
        self.subscription_id = subscription_id
        self.currency = currency
        self.plan = plan
        self.interval = interval
        self.seats = seats
        self.addons: dict[str, int] = {}
        self.discount: Discount | None = None
        self.discount_left: int | None = None
        self.status = "active"
        self.period_start: dt.datetime | None = None
        self.period_end: dt.datetime | None = None
        self.trial_end: dt.datetime | None = None
        self.anchor_day = 1
        self.reports_periods = True
        """Whether the billing source puts `current_period_*` in terms (not all do)."""

    @property
    def months(self) -> int:
        """Months per billing interval."""
        return 1 if self.interval == MONTHLY else 12

    def set_discount(self, discount: Discount | None) -> None:
        """Apply a coupon; `once` lasts one invoice, `repeating` its number of intervals."""
        self.discount = discount
        if discount is None or discount.duration == "forever":
            self.discount_left = None
        else:
            self.discount_left = discount.duration_in_intervals or 1

    def start_period(self, start: dt.datetime) -> None:
        """Anchor billing on `start` and open the first period there."""
        self.anchor_day = start.day
        self.period_start = start
        self.period_end = add_months(start, self.months, self.anchor_day)

    def next_period(self) -> None:
        """Advance to the following billing period on the same anchor day."""
        assert self.period_end is not None
        self.period_start = self.period_end
        self.period_end = add_months(self.period_end, self.months, self.anchor_day)

    def items(self) -> list[Item]:
        """The priced items: the plan (per seat or flat) and its add-ons, same interval."""
        c, i = self.currency, self.interval
        quantity = self.seats if self.plan.per_seat else 1
        items = [_item(self.plan.price_id(c, i), self.plan.unit_amount(c, i), quantity, i)]
        for addon in ADDONS:
            qty = self.addons.get(addon.name)
            if qty:
                items.append(_item(addon.price_id(c, i), addon.unit_amount(c, i), qty, i))
        return items

    def terms(self) -> Terms:
        """The full current state, as a billing webhook would carry it."""
        periods = self.reports_periods
        return Terms(status=self.status, currency=self.currency,  # type: ignore[arg-type]
                     items=self.items(), discount=self.discount,
                     current_period_start=self.period_start if periods else None,
                     current_period_end=self.period_end if periods else None,
                     trial_end=self.trial_end)

    def invoice_amount(self) -> int:
        """What one invoice of the current terms costs (minor units, after the coupon)."""
        total = sum(item.unit_amount * item.quantity for item in self.items())
        d = self.discount
        if d is None:
            return total
        if d.kind == "percent":
            return int(total * (Decimal(100) - d.value) / 100)
        return max(0, total - int(d.value))


_PLAN_WEIGHTS = {"smb": (55, 40, 5), "mid_market": (10, 60, 30), "enterprise": (0, 30, 70)}
_ANNUAL_SHARE = {"smb": 0.15, "mid_market": 0.35, "enterprise": 0.65}
_SEATS = {"smb": (2, 6), "mid_market": (5, 25), "enterprise": (20, 120)}
COUPON_SHARE = 0.2


def new_subscription(rng: random.Random, subscription_id: str, segment: str,
                     currency: str) -> SubState:
    """A fresh subscription as this segment typically buys it: plan, cadence, seats, extras."""
    plan = rng.choices(BASE_PLANS, weights=_PLAN_WEIGHTS[segment])[0]
    interval = ANNUAL if rng.random() < _ANNUAL_SHARE[segment] else MONTHLY
    low, high = _SEATS[segment]
    seats = rng.randint(low, high) if plan.per_seat else 1
    s = SubState(subscription_id, currency, plan, interval, seats)
    if plan.tier == 2 and rng.random() < (0.6 if segment == "enterprise" else 0.35):
        s.addons["sso"] = 1
    if rng.random() < 0.15:
        s.addons["storage"] = rng.randint(1, 5)
    if rng.random() < COUPON_SHARE:
        s.set_discount(rng.choice(COUPONS_MONTHLY if interval == MONTHLY else COUPONS_ANNUAL))
    return s
