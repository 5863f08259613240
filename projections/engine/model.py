"""What the pure MRR engine produces: plain, immutable rows with no recorded-time columns.

All money is integer minor units. `mrr` fields are in the reporting currency; `native_mrr` is in
the subscription's own currency. Instants are timezone-aware UTC datetimes; `valid_to` is
exclusive and None means "until further notice". Rows compare by value, which is how the projector
finds what a recomputation changed (bitemporal diff).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from msgspec import Struct

MovementType = Literal["new_business", "expansion", "contraction", "churn", "reactivation"]
MOVEMENT_TYPES: tuple[str, ...] = ("new_business", "expansion", "contraction", "churn", "reactivation")


# gc=False: rows hold only scalars and tuples of strings (no reference cycles possible), and the
# projector keeps hundreds of thousands of them; untracked, the cyclic GC never scans them.
class CustomerInterval(Struct, frozen=True, order=True, gc=False):
    """The customer's MRR (reporting currency) in force on [valid_from, valid_to)."""

    customer_id: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    mrr: int


class SubscriptionInterval(Struct, frozen=True, order=True, gc=False):
    """One subscription's state on [valid_from, valid_to); `mrr` None means no FX rate known."""

    customer_id: str
    subscription_id: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    status: str
    currency: str
    native_mrr: int
    mrr: int | None
    plan: str
    billing_interval: str


class Movement(Struct, frozen=True, order=True, gc=False):
    """A change of customer MRR at one instant, net of FX impact. `amount` is signed."""

    customer_id: str
    effective_at: dt.datetime
    type: str
    amount: int
    mrr_before: int
    mrr_after: int
    event_ids: tuple[str, ...]


class FxImpact(Struct, frozen=True, order=True, gc=False):
    """Change of a customer's reporting-currency MRR caused only by a new FX rate at renewal."""

    customer_id: str
    effective_at: dt.datetime
    amount: int
    event_ids: tuple[str, ...]


class Timeline(Struct, frozen=True):
    """Everything the engine derives for one customer, as of all events it was given."""

    customer_id: str
    customer_intervals: tuple[CustomerInterval, ...] = ()
    subscription_intervals: tuple[SubscriptionInterval, ...] = ()
    movements: tuple[Movement, ...] = ()
    fx_impacts: tuple[FxImpact, ...] = ()
