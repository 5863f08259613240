"""Rendering of money and ratios for reports: exact decimals as strings, never floats.

Money is integer minor units (or an exact Decimal of minor units for averages); it is rendered in
major units of its currency, rounded half up to the minor unit (`16667` USD → `"166.67"`). Ratios
are exact Decimals rendered with `RATIO_PLACES` decimal places, as fractions (0.05 = 5 %).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Union

from ledger.money import format_major as ledger_format_major

RATIO_PLACES = 4
_RATIO_QUANTUM = Decimal(1).scaleb(-RATIO_PLACES)

Number = Union[int, Decimal]


def format_major(minor: Number | None, currency: str) -> str | None:
    """Minor units as a decimal string in major units (`None` stays `None`); an exact Decimal of
    minor units (an average) is first rounded half up to a whole minor unit."""
    if minor is None:
        return None
    if isinstance(minor, Decimal):
        minor = int(minor.to_integral_value(rounding=ROUND_HALF_UP))
    return ledger_format_major(minor, currency)


def ratio(numerator: Number | None, denominator: Number | None) -> Decimal | None:
    """numerator / denominator exactly (28 significant digits); None when the denominator is 0
    or either side is undefined (None), so derived ratios stay null down the chain."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return Decimal(numerator) / Decimal(denominator)


def format_ratio(value: Decimal | None) -> str | None:
    if value is None:
        return None
    result = value.quantize(_RATIO_QUANTUM, rounding=ROUND_HALF_UP)
    if result == 0:
        result = abs(result)
    return f"{result:f}"
