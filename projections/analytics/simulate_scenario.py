"""Price-change scenario: what `mrr simulate price` changes (plan, change, start, months, churn
uplift), validated, with the assumptions it prints and the percentage parser of its options.

Part of the simulation (`projections.analytics.simulate` has the rules).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from projections.periods import Period, next_period, period_of


@dataclass(frozen=True)
class PriceChange:
    plan: str
    change: Decimal
    """+0.10 is +10 %; must be > -1."""
    start: dt.datetime
    months: int = 12
    churn_uplift: Decimal = Decimal(0)
    """Extra monthly churn of the repriced subscriptions, as a fraction (0.02 = 2 % a month)."""

    def __post_init__(self) -> None:
        if self.change <= -1:
            raise ValueError("--change must be above -100%")
        if not 0 <= self.churn_uplift <= 1:
            raise ValueError("--churn-uplift must be between 0% and 100%")
        if self.months < 1:
            raise ValueError("--months must be at least 1")

    @property
    def periods(self) -> list[Period]:
        first = period_of("month", self.start)
        periods = [first]
        while len(periods) < self.months:
            periods.append(next_period(periods[-1]))
        return periods

    def uplift_instants(self) -> list[dt.datetime]:
        return [self.start] + [p.start for p in self.periods[1:]]

    def assumptions(self) -> list[str]:
        factor = f"{1 + self.change:f}"
        when = _when(self.start)
        out = [
            f"every item with price_id {self.plan!r}: unit_amount x {factor}, rounded half-even to the minor unit",
            f"subscriptions with that price before {when} are repriced at {when}; terms events from then on "
            "carry the new price",
        ]
        if self.churn_uplift:
            out.append(f"churn uplift: each month from {when}, an extra {self.churn_uplift * 100:f} % of the "
                       "repriced subscriptions still paying cancel at the start of the month (fractions carried; "
                       "chosen in SHA-256 order of the subscription id)")
        out.append("nothing else changes: no other churn, new business or FX rates than the events known; "
                   "months after the last event show the current book rolled forward")
        return out


def _when(instant: dt.datetime) -> str:
    utc = instant.astimezone(dt.timezone.utc)
    return utc.date().isoformat() if utc.time() == dt.time() else utc.isoformat()


def parse_percent(text: str, name: str) -> Decimal:
    """`+10%`, `-5.5%`, `0%` -> Decimal fraction (0.10, -0.055, 0)."""
    value = text.strip()
    if not value.endswith("%"):
        raise ValueError(f"{name} must be a percentage like +10% (got {text!r})")
    try:
        return Decimal(value[:-1].strip()) / 100
    except ArithmeticError:
        raise ValueError(f"{name} must be a percentage like +10% (got {text!r})") from None
