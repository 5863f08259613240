"""Calendar arithmetic for the demo business: UTC instants, month grids and billing anchors."""

from __future__ import annotations

import calendar
import datetime as dt

UTC = dt.timezone.utc


def month_start(year: int, month: int) -> dt.datetime:
    """00:00 UTC on the 1st of a month."""
    return dt.datetime(year, month, 1, tzinfo=UTC)


def shift_month(year: int, month: int, n: int) -> tuple[int, int]:
    """(year, month) moved by `n` months."""
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def add_months(instant: dt.datetime, n: int, anchor_day: int | None = None) -> dt.datetime:
    """`instant` moved by `n` months on billing day `anchor_day` (default: its own day), clamped
    to the month's last day like a billing system anchors a subscription on the 31st."""
    year, month = shift_month(instant.year, instant.month, n)
    day = min(anchor_day or instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


def month_grid(start: dt.date, months: int) -> list[dt.datetime]:
    """The 1st of each simulated month, plus the 1st of the month after the last (the horizon)."""
    return [month_start(*shift_month(start.year, start.month, k)) for k in range(months + 1)]


def period_label(instant: dt.datetime) -> str:
    """`YYYY-MM` of an instant."""
    return f"{instant.year:04d}-{instant.month:02d}"
