"""Subscription-periods CSV (the dbt mrr-playbook seed format) → ledger events.

Columns: `subscription_id`, `customer_id`, `start_date` (inclusive), `end_date` (exclusive, empty
while the period is open), `monthly_amount` (major units, e.g. `49.99`), optionally `currency`
(ISO 4217, default USD) and `interval` (`month` or `year`, default month). Each period becomes a
`subscription.started` at `start_date` 00:00 UTC and, when it has an end, a
`subscription.canceled` at `end_date` 00:00 UTC; both with deterministic ids
(`periods:<subscription_id>:start` / `:end`), so importing the same file twice is a no-op.

`monthly_amount` is the period's MRR whatever the billing interval: a `year` period is one item
billed yearly at 12 × the monthly amount. The amount is converted to minor units exactly (Decimal
and the currency's ISO 4217 exponent); an amount with more decimals than the currency has is an
error, never rounded.

The file is validated as a whole: every bad row is reported with its line number and nothing is
returned, because a partial import of periods would invent churn (a customer missing one period).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Iterable

from babel.numbers import get_currency_precision, list_currencies
from msgspec import Struct

from ledger.events import EventBase, Item, SubscriptionCanceled, SubscriptionStarted, Terms

REQUIRED_COLUMNS = ("subscription_id", "customer_id", "start_date", "end_date", "monthly_amount")
INTERVALS = ("month", "year")
SOURCE = "csv"
_UTC = dt.timezone.utc


class Period(Struct, frozen=True):
    """One validated row: `unit_amount` in minor units per billing interval."""

    line: int
    subscription_id: str
    customer_id: str
    start: dt.date
    end: dt.date | None
    currency: str
    interval: str
    unit_amount: int


class RowError(Struct, frozen=True):
    """A rejected row: its line in the file (the header is line 1) and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class PeriodsFileError(ValueError):
    """The file has bad rows; `errors` lists every one of them."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors[:5])
                         + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""))


def _date(raw: str, column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{column} {raw!r} is not a date (YYYY-MM-DD)") from None


def _minor_units(raw: str, currency: str, per_interval_months: int) -> int:
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"monthly_amount {raw!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"monthly_amount {raw!r} must be a finite number >= 0")
    minor = amount * per_interval_months * 10 ** get_currency_precision(currency)
    if minor != minor.to_integral_value():
        raise ValueError(f"monthly_amount {raw!r} has more decimals than {currency} allows")
    return int(minor)


def _parse_row(line: int, row: dict[str, str | None]) -> Period:
    value = {k: (v or "").strip() for k, v in row.items() if k is not None}
    if None in row:
        raise ValueError("more fields than the header has")
    for column in ("subscription_id", "customer_id", "start_date", "monthly_amount"):
        if not value.get(column):
            raise ValueError(f"{column} is empty")
    for column in ("subscription_id", "customer_id"):
        if len(value[column]) > 100:
            raise ValueError(f"{column} is longer than 100 characters")
    currency = (value.get("currency") or "USD").upper()
    if currency not in list_currencies():
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    interval = (value.get("interval") or "month").lower()
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r} must be one of {', '.join(INTERVALS)}")
    start = _date(value["start_date"], "start_date")
    end = _date(value["end_date"], "end_date") if value.get("end_date") else None
    if end is not None and end <= start:
        raise ValueError(f"end_date {end} is not after start_date {start}")
    unit_amount = _minor_units(value["monthly_amount"], currency, 12 if interval == "year" else 1)
    return Period(line, value["subscription_id"], value["customer_id"], start, end, currency,
                  interval, unit_amount)


def read_periods(source: str | Path | IO[str]) -> list[Period]:
    """Parse and validate a periods CSV (path or text stream); raise `PeriodsFileError` listing
    every bad row."""
    if isinstance(source, (str, Path)):
        with open(source, newline="", encoding="utf-8-sig") as fh:
            return read_periods(io.StringIO(fh.read()))
    reader = csv.DictReader(source)
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise PeriodsFileError([RowError(1, f"missing column(s): {', '.join(missing)}")])
    periods: list[Period] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            period = _parse_row(line, row)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if period.subscription_id in seen:
            errors.append(RowError(line, f"subscription_id {period.subscription_id!r} "
                                    f"already on line {seen[period.subscription_id]}"))
            continue
        seen[period.subscription_id] = line
        periods.append(period)
    if errors:
        raise PeriodsFileError(errors)
    return periods


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=_UTC)


def period_events(periods: Iterable[Period]) -> list[EventBase]:
    """Each period's start (and end) events, ordered by when they occur; at the same instant an
    end goes before a start, so a period replaced by the next one reads as one change."""
    keyed: list[tuple[dt.datetime, int, int, EventBase]] = []
    for n, p in enumerate(periods):
        sid = p.subscription_id
        item = Item(price_id=f"periods-{p.interval}ly", unit_amount=p.unit_amount, quantity=1,
                    interval=p.interval)  # type: ignore[arg-type]
        terms = Terms(status="active", currency=p.currency, items=[item])
        start = _midnight(p.start)
        keyed.append((start, 1, n, SubscriptionStarted(
            event_id=f"periods:{sid}:start", occurred_at=start, source=SOURCE,
            customer_id=p.customer_id, subscription_id=sid, terms=terms)))
        if p.end is not None:
            end = _midnight(p.end)
            keyed.append((end, 0, n, SubscriptionCanceled(
                event_id=f"periods:{sid}:end", occurred_at=end, source=SOURCE,
                customer_id=p.customer_id, subscription_id=sid)))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def load_periods(source: str | Path | IO[str]) -> list[EventBase]:
    """`read_periods` then `period_events`: the events to append for a periods file."""
    return period_events(read_periods(source))
