"""A deterministic synthetic SaaS business, as ledger events with their arrival times.

`generate_business(seed, customers, months, start)` returns `(arrival, event)` pairs sorted by
arrival: append each event with `recorded_at = arrival` to replay the business as it was recorded.
Same arguments, same events, byte for byte: one `random.Random` per stream, no clock, no globals.

What is in it: three currencies (USD, EUR, GBP) with monthly FX rates published the day before
they take effect (a few late); monthly and annual plans, per-seat and flat, with add-ons;
coupons of every kind; trials that convert or lapse; mid-period upgrades and downgrades; renewals
(always for annual plans, for every period of Stripe-billed customers); pauses and resumes;
scheduled cancellations (some withdrawn) and immediate ones with refunds; failed payments that
are paid or end in cancellation; monthly→annual switches (one subscription replacing another at
the same instant); second concurrent products; comebacks after churn; customer attributes
(country, segment, channel) and monthly acquisition spend per channel; and about 1% of customer
events arriving late (2–45 days after they occurred), many after their month has closed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections import Counter
from operator import itemgetter
from pathlib import Path
from typing import Iterable

from ledger.demo.calendar import month_grid
from ledger.demo.customer import simulate_customer
from ledger.demo.log import Arrival
from ledger.demo.reference import acquisition_events, fx_events
from ledger.events import EventBase, encode_event, event_type

LATE_RATE = 0.012
"""Chance that an event eligible to be late (see `CustomerLog.emit`) arrives late: ≈1% of all."""
GROWTH_PER_MONTH = 1.04
"""Signups grow this much month over month."""
EVENTS_PER_CUSTOMER_24M = 7.8
"""Rough events per customer over 24 months, for sizing (`customers_for_events`)."""

__all__ = ["Arrival", "customers_for_events", "event_counts", "generate_business", "write_jsonl"]


def generate_business(seed: int = 7, customers: int = 2000, months: int = 24,
                      start: dt.date = dt.date(2023, 1, 1)) -> list[Arrival]:
    """The business's events paired with their arrival time, sorted by arrival (ties keep a
    customer's own order). `start` must be the 1st of a month; nothing occurs at or after
    `start + months`."""
    if start.day != 1:
        raise ValueError(f"start must be the 1st of a month, got {start}")
    if customers < 0 or months < 1:
        raise ValueError("customers must be >= 0 and months >= 1")
    grid = month_grid(start, months)
    end = grid[-1]
    events = fx_events(random.Random(f"fx:{seed}"), grid)
    rng = random.Random(seed)
    cumulative = []
    total = 0.0
    for k in range(months):
        total += GROWTH_PER_MONTH**k
        cumulative.append(total)
    signups: Counter[tuple[int, str]] = Counter()
    for index in range(1, customers + 1):
        k = min(bisect.bisect_right(cumulative, rng.random() * total), months - 1)
        month_seconds = int((grid[k + 1] - grid[k]).total_seconds())
        signup = grid[k] + dt.timedelta(seconds=rng.randrange(month_seconds))
        channel = simulate_customer(rng, index, signup, end, LATE_RATE, events)
        signups[(k, channel)] += 1
    events.extend(acquisition_events(random.Random(f"cac:{seed}"), grid, signups))
    events.sort(key=itemgetter(0))
    return events


def customers_for_events(target_events: int, months: int = 24) -> int:
    """About how many customers yield `target_events` events over `months` months."""
    per_customer = EVENTS_PER_CUSTOMER_24M * max(months, 1) / 24
    return max(1, round(target_events / per_customer))


def event_counts(events: Iterable[Arrival | EventBase]) -> Counter[str]:
    """How many events of each type."""
    counts: Counter[str] = Counter()
    for item in events:
        event = item[1] if isinstance(item, tuple) else item
        counts[event_type(event)] += 1
    return counts


def write_jsonl(events: Iterable[Arrival | EventBase], path: str | Path) -> int:
    """Write events (or (arrival, event) pairs) as JSON Lines in the given order, ready for
    `mrr ingest`; returns how many were written. Arrival times are not written: the ledger sets
    `recorded_at` itself."""
    count = 0
    with open(path, "wb") as fh:
        for item in events:
            event = item[1] if isinstance(item, tuple) else item
            fh.write(encode_event(event))
            fh.write(b"\n")
            count += 1
    return count
