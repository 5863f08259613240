"""Periods: UTC boundaries, labels of MRR_SPEC.md §7, inclusive --from/--to bounds."""

from __future__ import annotations

import datetime as dt

import pytest

from projections.periods import parse_bound, parse_instant, parse_label, period_of, periods_between

UTC = dt.timezone.utc


def d(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "kind, label, start, end",
    [
        ("day", "2024-03-05", d(2024, 3, 5), d(2024, 3, 6)),
        ("week", "2024-W10", d(2024, 3, 4), d(2024, 3, 11)),
        ("month", "2024-03", d(2024, 3, 1), d(2024, 4, 1)),
        ("quarter", "2024-Q1", d(2024, 1, 1), d(2024, 4, 1)),
        ("year", "2024", d(2024, 1, 1), d(2025, 1, 1)),
    ],
)
def test_period_of_and_labels(kind, label, start, end):
    period = period_of(kind, d(2024, 3, 5, 13, 30))
    assert (period.label, period.start, period.end) == (label, start, end)
    assert parse_label(label) == period


def test_instants_are_taken_in_utc():
    # 2024-03-31T23:30-02:00 is April 1st in UTC.
    instant = dt.datetime(2024, 3, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    assert period_of("month", instant).label == "2024-04"


def test_iso_week_across_the_year_boundary():
    assert period_of("week", d(2021, 1, 3)).label == "2020-W53"
    assert period_of("week", d(2024, 12, 30)).label == "2025-W01"
    assert parse_label("2020-W53").start == d(2020, 12, 28)


def test_december_and_q4_end_next_year():
    assert period_of("month", d(2024, 12, 31)).end == d(2025, 1, 1)
    assert period_of("quarter", d(2024, 11, 1)).label == "2024-Q4"
    assert period_of("quarter", d(2024, 11, 1)).end == d(2025, 1, 1)


def test_bounds_are_inclusive_and_convert_between_kinds():
    assert parse_bound("week", "2024-03", upper=False).label == "2024-W09"  # contains Mar 1st
    assert parse_bound("week", "2024-03", upper=True).label == "2024-W13"  # contains Mar 31st
    assert parse_bound("month", "2024-Q2", upper=True).label == "2024-06"
    assert parse_bound("month", "2024-03-15", upper=False).label == "2024-03"
    assert parse_bound("quarter", "2024-03-15T10:00:00+02:00", upper=True).label == "2024-Q1"
    assert parse_bound("day", "2024", upper=True).label == "2024-12-31"


def test_periods_between_inclusive():
    first, last = parse_label("2023-11"), parse_label("2024-02")
    assert [p.label for p in periods_between(first, last)] == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert periods_between(last, first) == []


@pytest.mark.parametrize("bad", ["2024-13", "2024-W54", "2024-Q5", "24-03", "2024-02-30", "march"])
def test_bad_labels_are_refused(bad):
    with pytest.raises(ValueError, match="invalid"):
        parse_label(bad)


def test_instants_need_an_offset():
    assert parse_instant("2024-03-01T10:00:00Z") == d(2024, 3, 1, 10)
    assert parse_instant("2024-03-01T12:00:00+02:00") == d(2024, 3, 1, 10)
    with pytest.raises(ValueError, match="offset"):
        parse_instant("2024-03-01T10:00:00")
