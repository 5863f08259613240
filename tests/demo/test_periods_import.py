"""Subscription-periods CSV import: the right events for good rows, line-numbered errors for bad."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from ledger.events import SubscriptionCanceled, SubscriptionStarted, encode_event
from ledger.importers.periods import PeriodsFileError, load_periods, read_periods
from ledger.validation import decode_event

PLAYBOOK = Path("/work/shared/data/mrr_playbook/subscription_periods.csv")
UTC = dt.timezone.utc


def _load(text: str):
    return load_periods(io.StringIO(text))


def test_a_closed_and_an_open_period():
    events = _load(
        "subscription_id,customer_id,start_date,end_date,monthly_amount\n"
        "s1,c1,2019-04-01,2019-06-01,49.99\n"
        "s2,c2,2019-05-01,,25\n"
    )
    assert [(type(e), e.event_id, e.occurred_at) for e in events] == [
        (SubscriptionStarted, "periods:s1:start", dt.datetime(2019, 4, 1, tzinfo=UTC)),
        (SubscriptionStarted, "periods:s2:start", dt.datetime(2019, 5, 1, tzinfo=UTC)),
        (SubscriptionCanceled, "periods:s1:end", dt.datetime(2019, 6, 1, tzinfo=UTC)),
    ]
    started = events[0]
    assert started.customer_id == "c1" and started.subscription_id == "s1"
    assert started.source == "csv"
    assert started.terms.status == "active" and started.terms.currency == "USD"
    [item] = started.terms.items
    assert (item.unit_amount, item.quantity, item.interval) == (4999, 1, "month")


def test_currency_exponent_and_annual_interval():
    events = _load(
        "subscription_id,customer_id,start_date,end_date,monthly_amount,currency,interval\n"
        "j,c,2020-01-01,,1500,JPY,month\n"
        "b,c,2020-01-01,,1.234,BHD,\n"
        "y,c,2020-01-01,,100.50,eur,year\n"
    )
    items = {e.subscription_id: (e.terms.currency, e.terms.items[0]) for e in events}
    assert items["j"][0] == "JPY" and items["j"][1].unit_amount == 1500
    assert items["b"][0] == "BHD" and items["b"][1].unit_amount == 1234
    currency, item = items["y"]
    assert currency == "EUR" and item.interval == "year" and item.unit_amount == 120600


def test_a_period_ending_where_the_next_starts_orders_the_end_first():
    events = _load(
        "subscription_id,customer_id,start_date,end_date,monthly_amount\n"
        "3,1,2019-06-01,2019-08-01,75\n"
        "2,1,2019-04-01,2019-06-01,50\n"
    )
    assert [e.event_id for e in events] == [
        "periods:2:start", "periods:2:end", "periods:3:start", "periods:3:end"]


def test_events_pass_ledger_validation():
    now = dt.datetime(2024, 1, 1, tzinfo=UTC)
    for event in load_periods(PLAYBOOK):
        assert decode_event(encode_event(event), now=now) == event


def test_playbook_file_imports_every_period():
    periods = read_periods(PLAYBOOK)
    assert len(periods) == 121 and len({p.customer_id for p in periods}) == 55
    events = load_periods(PLAYBOOK)
    assert len(events) == 121 + sum(p.end is not None for p in periods)
    assert load_periods(PLAYBOOK) == events  # deterministic


def test_bad_rows_are_reported_with_their_line_numbers():
    text = (
        "subscription_id,customer_id,start_date,end_date,monthly_amount,currency,interval\n"
        "ok,c,2020-01-01,,10,USD,month\n"          # 2
        "a,c,2020-13-01,,10,USD,month\n"           # 3
        "b,c,2020-02-01,2020-01-01,10,USD,month\n"  # 4
        "c,,2020-01-01,,10,USD,month\n"            # 5
        "d,c,2020-01-01,,ten,USD,month\n"          # 6
        "e,c,2020-01-01,,1.001,USD,month\n"        # 7
        "f,c,2020-01-01,,10.5,JPY,month\n"         # 8
        "g,c,2020-01-01,,10,ZZZ,month\n"           # 9
        "h,c,2020-01-01,,10,USD,quarter\n"         # 10
        "ok,c,2020-01-01,,10,USD,month\n"          # 11
        "i,c,2020-01-01,,-5,USD,month\n"           # 12
        "\n"
        "j,c,2020-01-01,,5,USD,month,extra\n"      # 14
    )
    with pytest.raises(PeriodsFileError) as info:
        _load(text)
    errors = {e.line: e.message for e in info.value.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14]
    assert "start_date" in errors[3]
    assert "end_date" in errors[4]
    assert "customer_id" in errors[5]
    assert "monthly_amount" in errors[6] and "monthly_amount" in errors[7]
    assert "JPY" in errors[8]
    assert "ZZZ" in errors[9]
    assert "interval" in errors[10]
    assert "line 2" in errors[11]
    assert ">= 0" in errors[12]
    assert "more fields" in errors[14]
    assert str(info.value).startswith("line 3:")


def test_missing_columns_are_a_header_error():
    with pytest.raises(PeriodsFileError) as info:
        _load("subscription_id,customer_id,start_date\n1,2,2020-01-01\n")
    [error] = info.value.errors
    assert error.line == 1 and "end_date" in error.message and "monthly_amount" in error.message
