"""The demo's reference events: monthly FX rates and acquisition spend per channel."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal

from ledger.demo.calendar import period_label
from ledger.demo.catalog import (
    CAC_PER_CUSTOMER_USD,
    CHANNELS,
    FX_MONTHLY_SIGMA,
    FX_START,
    ORGANIC_MONTHLY_COST_USD,
)
from ledger.demo.log import Arrival
from ledger.events import AcquisitionCostRecorded, FxRatePublished

LATE_RATE_SHARE = 1 / 12
"""Share of monthly rates published days after the 1st (restating conversions already made)."""


def fx_events(rng: random.Random, grid: list[dt.datetime]) -> list[Arrival]:
    """Per month and currency, `1 <cur> = r USD` effective the 1st (occurred_at 00:00 UTC there),
    published the afternoon before; now and then a rate is published late instead."""
    out: list[Arrival] = []
    for currency, start_rate in FX_START.items():
        rate = start_rate
        for k, first in enumerate(grid[:-1]):
            if k:
                rate *= math.exp(rng.gauss(0.0, FX_MONTHLY_SIGMA))
            if k and rng.random() < LATE_RATE_SHARE:
                arrival = first + dt.timedelta(days=rng.randint(3, 10), hours=16)
            else:
                arrival = first - dt.timedelta(hours=8)
            event = FxRatePublished(
                event_id=f"demo:fx:{currency}USD:{period_label(first)}", occurred_at=first,
                source="ecb", base=currency, quote="USD", rate=Decimal(f"{rate:.4f}"),
                effective_date=first.date())
            out.append((arrival, event))
    return out


def acquisition_events(rng: random.Random, grid: list[dt.datetime],
                       signups: dict[tuple[int, str], int]) -> list[Arrival]:
    """Per month and channel, the spend (USD) that bought that month's signups, booked on the
    month's last day at noon and recorded a few days after the month closes."""
    out: list[Arrival] = []
    for k, first in enumerate(grid[:-1]):
        booked = grid[k + 1] - dt.timedelta(hours=12)
        for channel in CHANNELS:
            count = signups.get((k, channel), 0)
            amount = int(count * CAC_PER_CUSTOMER_USD[channel] * rng.uniform(0.8, 1.2))
            if channel == "organic":
                amount += ORGANIC_MONTHLY_COST_USD
            arrival = grid[k + 1] + dt.timedelta(days=rng.randint(1, 4), hours=9)
            event = AcquisitionCostRecorded(
                event_id=f"demo:cac:{period_label(first)}:{channel}", occurred_at=booked,
                source="marketing", amount=amount, currency="USD", period=period_label(first),
                channel=channel)
            out.append((arrival, event))
    return out
