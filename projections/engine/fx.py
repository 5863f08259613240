"""FX rates by effective date, with inverse and cross rates, and exact conversion of minor units."""

from __future__ import annotations

import bisect
import datetime as dt
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from babel.numbers import get_currency_precision


@lru_cache(maxsize=None)
def minor_exponent(currency: str) -> int:
    """Digits after the decimal point of a currency's minor unit (ISO 4217, from babel)."""
    return get_currency_precision(currency)


def round_half_up(numerator: int, denominator: int) -> int:
    """Round numerator/denominator (denominator > 0) to the nearest integer, halves away from zero."""
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def convert_minor(amount: int, rate: Fraction, source: str, target: str) -> int:
    """`amount` minor units of `source` in minor units of `target` at `rate`, rounded half up once."""
    if source == target:
        return amount
    shift = minor_exponent(target) - minor_exponent(source)
    numerator = amount * rate.numerator
    denominator = rate.denominator
    if shift > 0:
        numerator *= 10**shift
    elif shift < 0:
        denominator *= 10**-shift
    return round_half_up(numerator, denominator)


class FxTable:
    """Published rates: 1 `base` = `rate` `quote` from `effective_date` until a newer one.

    `rate(base, quote, on)` uses the newest rate with effective_date <= on, trying the direct
    pair, then its inverse, then a cross rate through one intermediate currency.
    """

    def __init__(self) -> None:
        self._dates: dict[tuple[str, str], list[dt.date]] = {}
        self._rates: dict[tuple[str, str], list[Fraction]] = {}
        self._memo: dict[tuple[str, str, dt.date], Fraction | None] = {}
        self._changes: list[dt.date] = []

    def add(self, base: str, quote: str, effective_date: dt.date, rate: Decimal | str | Fraction) -> None:
        """Record a rate; a second rate for the same pair and date replaces the first."""
        value = Fraction(rate)
        if value <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        dates = self._dates.setdefault((base, quote), [])
        rates = self._rates.setdefault((base, quote), [])
        i = bisect.bisect_left(dates, effective_date)
        if i < len(dates) and dates[i] == effective_date:
            rates[i] = value
        else:
            dates.insert(i, effective_date)
            rates.insert(i, value)
        self._memo.clear()
        self._changes.append(effective_date)

    @property
    def version(self) -> int:
        """How many rates were added so far."""
        return len(self._changes)

    def earliest_change_since(self, version: int) -> dt.date | None:
        """The earliest effective date among rates added after `version`, if any. A rate
        effective on day D changes no lookup of a day before D (direct, inverse or cross)."""
        return min(self._changes[version:], default=None)

    def currencies(self) -> set[str]:
        """Every currency that appears in a rate."""
        return {c for pair in self._dates for c in pair}

    def _direct(self, base: str, quote: str, on: dt.date) -> tuple[dt.date, Fraction] | None:
        dates = self._dates.get((base, quote))
        if not dates:
            return None
        i = bisect.bisect_right(dates, on)
        if i == 0:
            return None
        return dates[i - 1], self._rates[(base, quote)][i - 1]

    def _pair(self, base: str, quote: str, on: dt.date) -> Fraction | None:
        direct = self._direct(base, quote, on)
        inverse = self._direct(quote, base, on)
        if direct and (not inverse or direct[0] >= inverse[0]):
            return direct[1]
        if inverse:
            return 1 / inverse[1]
        return None

    def rate(self, base: str, quote: str, on: dt.date) -> Fraction | None:
        """The rate converting `base` into `quote` in effect on day `on`, or None if unknown."""
        if base == quote:
            return Fraction(1)
        key = (base, quote, on)
        if key in self._memo:
            return self._memo[key]
        found = self._pair(base, quote, on)
        if found is None:
            for pivot in sorted(self.currencies() - {base, quote}):
                first = self._pair(base, pivot, on)
                second = self._pair(pivot, quote, on) if first is not None else None
                if first is not None and second is not None:
                    found = first * second
                    break
        self._memo[key] = found
        return found
