"""MRR settings of MRR_SPEC.md §4, defaults first."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct


class MrrSettings(Struct, frozen=True, forbid_unknown_fields=True):
    """How MRR is computed; every choice real products make differently."""

    reporting_currency: str = "USD"
    """ISO 4217 code every MRR figure is converted to."""
    churn_recognition: Literal["at_period_end", "on_request"] = "at_period_end"
    """`at_period_end`: churn when the subscription ends; `on_request`: when cancellation is scheduled."""
    past_due_grace_days: Annotated[int, Meta(ge=0)] | None = None
    """None: a past-due subscription counts until the billing system cancels it; N: auto-churn N days
    after the first failed payment unless paid first."""
    once_discounts_reduce_mrr: bool = False
    """Whether a `once` discount reduces MRR."""
    classification_window_seconds: Annotated[int, Meta(ge=0)] = 0
    """Events of one customer within this many seconds of each other yield at most one movement."""
