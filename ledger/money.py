"""Money and currencies: ISO 4217 codes and their minor units, from babel's CLDR data.

Amounts are integers in the currency's minor unit everywhere in the ledger; this module is the only
place that converts between minor units and decimal major units. Floats are refused: money never
passes through binary floating point.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

_CODE = re.compile(r"[A-Z]{3}")
# ISO 4217 reserves XXX for "no currency" and XTS for testing: neither can price a subscription.
_NOT_MONEY = frozenset({"XXX", "XTS"})


class UnknownCurrencyError(ValueError):
    """A currency code that is not an ISO 4217 code known to babel."""

    def __init__(self, code: object) -> None:
        super().__init__(f"unknown currency {code!r}")
        self.code = code


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    return frozenset(list_currencies()) - _NOT_MONEY


def is_known_currency(code: object) -> bool:
    """True for an upper-case ISO 4217 code known to babel (current or historic), e.g. "USD"."""
    return isinstance(code, str) and _CODE.fullmatch(code) is not None and code in _known_codes()


def minor_unit_exponent(code: str) -> int:
    """Decimal places of the currency's minor unit: JPY 0, USD 2, KWD 3 (CLDR `currency_fractions`).

    Raises UnknownCurrencyError for a code babel does not know (babel itself would answer 2).
    """
    if not is_known_currency(code):
        raise UnknownCurrencyError(code)
    return get_currency_precision(code)


def from_minor(amount_minor: int, currency: str) -> Decimal:
    """Exact major units of an amount in minor units: (16667, "USD") -> Decimal("166.67")."""
    _require_int(amount_minor)
    return Decimal(amount_minor).scaleb(-minor_unit_exponent(currency))


def format_major(amount_minor: int, currency: str) -> str:
    """Decimal string in major units with exactly the currency's places: (16667, "USD") -> "166.67",
    (-5, "USD") -> "-0.05", (1000, "JPY") -> "1000", (1234, "KWD") -> "1.234". Exact integer
    arithmetic, no rounding."""
    _require_int(amount_minor)
    exponent = minor_unit_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def to_minor(
    amount: Decimal | int | str, currency: str, *, rounding: str | None = ROUND_HALF_UP
) -> int:
    """Major units to integer minor units: (Decimal("166.67"), "USD") -> 16667.

    Extra places are rounded with `rounding` (default half up, i.e. ties away from zero, as
    MRR_SPEC.md §2 asks); `rounding=None` raises ValueError instead of rounding. Strings are parsed
    as decimals; floats raise TypeError.
    """
    if isinstance(amount, (bool, float)) or not isinstance(amount, (Decimal, int, str)):
        raise TypeError(
            f"money must be a Decimal, int or decimal string, not {type(amount).__name__}"
        )
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    exponent = minor_unit_exponent(currency)
    with localcontext() as ctx:
        # Enough precision that scaling is exact, whatever the size of the amount.
        ctx.prec = max(28, len(value.as_tuple().digits) + exponent + 2)
        scaled = value.scaleb(exponent)
        minor = scaled.to_integral_value(rounding=rounding or ROUND_HALF_UP)
    if rounding is None and minor != scaled:
        raise ValueError(f"{amount} has more than {exponent} decimal places for {currency}")
    return int(minor)


def _require_int(amount_minor: object) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"minor units must be an int, not {type(amount_minor).__name__}")
