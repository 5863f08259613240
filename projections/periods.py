"""Reporting periods in UTC: day, ISO week, month, quarter, year, and their labels (MRR_SPEC.md §7).

A `Period` is the half-open span [start, end) of UTC instants. Labels: `2024-03-05` (day),
`2024-W10` (ISO week), `2024-03` (month), `2024-Q1` (quarter), `2024` (year). Bounds given on the
command line (`--from`, `--to`, inclusive) may be any label, a date or an RFC 3339 instant; they
are turned into periods of the requested kind: `--from` the period containing the bound's first
instant, `--to` the one containing its last.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterator, Literal

PeriodKind = Literal["day", "week", "month", "quarter", "year"]
PERIOD_KINDS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")

UTC = dt.timezone.utc
_EPSILON = dt.timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period: instants in [start, end), both UTC."""

    start: dt.datetime
    end: dt.datetime
    kind: str
    label: str

    def contains(self, instant: dt.datetime) -> bool:
        return self.start <= instant < self.end


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_of(kind: str, instant: dt.datetime | dt.date) -> Period:
    """The period of `kind` containing `instant` (a date means its UTC midnight)."""
    if isinstance(instant, dt.datetime):
        if instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        day = instant.astimezone(UTC).date()
    else:
        day = instant
    if kind == "day":
        return Period(_midnight(day), _midnight(day + dt.timedelta(days=1)), kind, day.isoformat())
    if kind == "week":
        year, week, weekday = day.isocalendar()
        monday = day - dt.timedelta(days=weekday - 1)
        return Period(_midnight(monday), _midnight(monday + dt.timedelta(days=7)), kind,
                      f"{year}-W{week:02d}")
    if kind == "month":
        ny, nm = _add_months(day.year, day.month, 1)
        return Period(_midnight(dt.date(day.year, day.month, 1)), _midnight(dt.date(ny, nm, 1)), kind,
                      f"{day.year}-{day.month:02d}")
    if kind == "quarter":
        quarter = (day.month - 1) // 3 + 1
        first = 3 * (quarter - 1) + 1
        ny, nm = _add_months(day.year, first, 3)
        return Period(_midnight(dt.date(day.year, first, 1)), _midnight(dt.date(ny, nm, 1)), kind,
                      f"{day.year}-Q{quarter}")
    if kind == "year":
        return Period(_midnight(dt.date(day.year, 1, 1)), _midnight(dt.date(day.year + 1, 1, 1)), kind,
                      str(day.year))
    raise ValueError(f"unknown period kind {kind!r}; expected one of {', '.join(PERIOD_KINDS)}")


def next_period(period: Period) -> Period:
    """The period right after `period`, of the same kind."""
    return period_of(period.kind, period.end)


def periods_between(first: Period, last: Period) -> list[Period]:
    """Every period from `first` through `last` inclusive (same kind); empty if last < first."""
    return list(iter_periods(first, last))


def iter_periods(first: Period, last: Period) -> Iterator[Period]:
    current = first
    while current.start <= last.start:
        yield current
        current = next_period(current)


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("year", re.compile(r"^(\d{4})$")),
    ("quarter", re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)),
    ("month", re.compile(r"^(\d{4})-(\d{2})$")),
    ("week", re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)),
    ("day", re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")),
]


def parse_label(text: str) -> Period:
    """The period a label names, of the label's own kind (`2024-W10` → that ISO week)."""
    text = text.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        parts = [int(g) if g.isdigit() else g for g in match.groups()]
        try:
            if kind == "year":
                return period_of("year", dt.date(parts[0], 1, 1))
            if kind == "quarter":
                return period_of("quarter", dt.date(parts[0], 3 * (parts[1] - 1) + 1, 1))
            if kind == "month":
                return period_of("month", dt.date(parts[0], parts[1], 1))
            if kind == "week":
                return period_of("week", dt.date.fromisocalendar(parts[0], parts[1], 1))
            return period_of("day", dt.date(parts[0], parts[1], parts[2]))
        except ValueError as exc:
            raise ValueError(f"invalid period label {text!r}: {exc}") from None
    raise ValueError(
        f"invalid period bound {text!r}: expected a label (2024, 2024-Q1, 2024-03, 2024-W10, "
        "2024-03-05) or an RFC 3339 instant"
    )


def parse_instant(text: str) -> dt.datetime:
    """An RFC 3339 instant with an offset (`Z` allowed), normalised to UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"invalid instant {text!r}: expected RFC 3339, e.g. 2024-03-01T00:00:00Z") from None
    if value.tzinfo is None:
        raise ValueError(f"instant {text!r} has no UTC offset; add Z or +hh:mm")
    return value.astimezone(UTC)


def parse_bound(kind: str, text: str, *, upper: bool) -> Period:
    """A `--from` (upper=False) or `--to` (upper=True) bound as a period of `kind`.

    A label or date spans some time: `--from` takes the period containing its first instant,
    `--to` the period containing its last. An instant is the period that contains it.
    """
    if "T" in text or " " in text.strip():
        return period_of(kind, parse_instant(text))
    span = parse_label(text)
    return period_of(kind, span.end - _EPSILON if upper else span.start)
