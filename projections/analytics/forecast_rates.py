"""Forecast rates: the trailing rates of the monthly MRR bridge, their spreads and band scenarios.

Part of the forecast (`projections.analytics.forecast` has the method): which rates there are,
how they are measured over the window, and their JSON form.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Sequence

from projections.queries.bridge import BridgeRow
from projections.queries.money import format_major, format_ratio, ratio

ABSOLUTE = ("new_business", "reactivation")
"""Rates in money per month (minor units), projected as they are."""
PROPORTIONAL = {"expansion_rate": ("expansion", 1), "contraction_rate": ("contraction", -1),
                "churn_rate": ("churn", -1)}
"""Rates as fractions of opening MRR: bridge column and the sign of the movement it yields."""
RATE_NAMES = ("new_business", "expansion_rate", "contraction_rate", "churn_rate", "reactivation")
_GOOD = {"new_business": 1, "reactivation": 1, "expansion_rate": 1, "contraction_rate": -1, "churn_rate": -1}
MOVEMENTS = ("new_business", "expansion", "contraction", "churn", "reactivation")


@dataclass(frozen=True)
class Rate:
    """One trailing rate: its value, the sample standard deviation of its monthly values, and
    those monthly values (None where the month's opening MRR is 0)."""

    name: str
    value: Decimal | None
    spread: Decimal | None
    monthly: tuple[tuple[str, Decimal | None], ...]

    def scenario(self, side: str) -> Decimal | None:
        """The rate in the `low` or `high` scenario: one spread worse / better, floored at 0."""
        if self.value is None or self.spread is None:
            return None
        sign = _GOOD[self.name] * (1 if side == "high" else -1)
        return max(Decimal(0), self.value + sign * self.spread)

    @property
    def is_money(self) -> bool:
        return self.name in ABSOLUTE


@dataclass(frozen=True)
class Rates:
    window: tuple[str, ...]
    rates: dict[str, Rate]

    def values(self, side: str = "point") -> dict[str, Decimal] | None:
        """Rates for the projection (None rates as 0); None when a band side is undefined."""
        if side == "point":
            return {n: r.value if r.value is not None else Decimal(0) for n, r in self.rates.items()}
        chosen = {n: r.scenario(side) for n, r in self.rates.items()}
        return None if any(v is None for v in chosen.values()) else chosen  # type: ignore[return-value]

    def warnings(self) -> list[str]:
        return [f"{name} is undefined (no opening MRR in the window): projected as 0"
                for name, rate in self.rates.items() if rate.value is None]


def _spread(values: Iterable[Decimal | None]) -> Decimal | None:
    defined = [v for v in values if v is not None]
    return statistics.stdev(defined) if len(defined) >= 2 else None


def trailing_rates(rows: Sequence[BridgeRow]) -> Rates:
    """The rates of the window `rows` (consecutive complete months)."""
    rates: dict[str, Rate] = {}
    labels = tuple(r.period.label for r in rows)
    opening = sum(r.opening_mrr for r in rows)
    for name in RATE_NAMES:
        if name in ABSOLUTE:
            monthly = [Decimal(getattr(r, name)) for r in rows]
            value = sum(monthly, Decimal(0)) / len(rows) if rows else None
        else:
            column, sign = PROPORTIONAL[name]
            monthly = [ratio(sign * getattr(r, column), r.opening_mrr) for r in rows]  # type: ignore[misc]
            value = ratio(sign * sum(getattr(r, column) for r in rows), opening)
        rates[name] = Rate(name, value, _spread(monthly), tuple(zip(labels, monthly)))
    return Rates(labels, rates)


def rates_json(rates: Rates, currency: str) -> dict[str, Any]:
    def fmt(rate: Rate, value: Decimal | None) -> str | None:
        return format_major(value, currency) if rate.is_money else format_ratio(value)

    return {name: {"value": fmt(r, r.value), "spread": fmt(r, r.spread), "low": fmt(r, r.scenario("low")),
                   "high": fmt(r, r.scenario("high")), "unit": currency if r.is_money else "fraction of opening MRR",
                   "monthly": [{"period": p, "value": fmt(r, v)} for p, v in r.monthly]}
            for name, r in rates.rates.items()}
