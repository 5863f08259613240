from decimal import ROUND_DOWN, Decimal

import pytest

from ledger.money import (
    UnknownCurrencyError,
    format_major,
    from_minor,
    is_known_currency,
    minor_unit_exponent,
    to_minor,
)


@pytest.mark.parametrize(
    ("code", "exponent"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3)]
)
def test_minor_unit_exponent_comes_from_babel(code: str, exponent: int) -> None:
    assert minor_unit_exponent(code) == exponent


@pytest.mark.parametrize("code", ["USD", "JPY", "KWD", "CHF", "GBP"])
def test_known_currencies(code: str) -> None:
    assert is_known_currency(code)


@pytest.mark.parametrize("code", ["XYZ", "usd", "US", "USDD", "", None, 840, "XXX", "XTS"])
def test_unknown_currencies(code: object) -> None:
    assert not is_known_currency(code)


def test_unknown_currency_has_no_exponent() -> None:
    # babel alone would answer 2 for any code; we refuse instead.
    with pytest.raises(UnknownCurrencyError, match="unknown currency 'XYZ'"):
        minor_unit_exponent("XYZ")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (16667, "USD", "166.67"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (0, "USD", "0.00"),
        (-16667, "USD", "-166.67"),
        (1000, "JPY", "1000"),
        (-7, "JPY", "-7"),
        (1234, "KWD", "1.234"),
        (1, "KWD", "0.001"),
        (10**30 + 1, "USD", "10000000000000000000000000000.01"),
    ],
)
def test_format_major_is_exact(minor: int, currency: str, text: str) -> None:
    assert format_major(minor, currency) == text


def test_format_major_refuses_non_integers() -> None:
    with pytest.raises(TypeError):
        format_major(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_major(True, "USD")


def test_from_minor() -> None:
    assert from_minor(16667, "USD") == Decimal("166.67")
    assert from_minor(1000, "JPY") == Decimal(1000)
    assert str(from_minor(1234, "KWD")) == "1.234"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("166.67"), "USD", 16667),
        (Decimal("166.665"), "USD", 16667),  # half up
        (Decimal("166.664"), "USD", 16666),
        (Decimal("-0.005"), "USD", -1),  # ties away from zero
        (Decimal("1000"), "JPY", 1000),
        (Decimal("999.5"), "JPY", 1000),
        (Decimal("1.2345"), "KWD", 1235),
        ("12.5", "USD", 1250),
        (7, "USD", 700),
        (Decimal("123456789012345678901234567890.12"), "USD", 12345678901234567890123456789012),
    ],
)
def test_to_minor(amount: object, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor  # type: ignore[arg-type]


def test_to_minor_rounding_modes() -> None:
    assert to_minor(Decimal("1.239"), "USD", rounding=ROUND_DOWN) == 123
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        to_minor(Decimal("1.239"), "USD", rounding=None)
    assert to_minor(Decimal("1.23"), "USD", rounding=None) == 123


def test_to_minor_refuses_floats_and_nan() -> None:
    with pytest.raises(TypeError):
        to_minor(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_minor(Decimal("NaN"), "USD")
    with pytest.raises(UnknownCurrencyError):
        to_minor(Decimal(1), "XYZ")
