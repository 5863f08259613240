"""Engine benchmark: how many events per second the pure MRR engine turns into timelines.

    python -m bench.engine --events 1000000

Generates the demo business scaled to about N events, groups them by customer in recorded
(arrival) order, loads the FX rates, then times only `compute_timeline` per customer on one core
(generation, grouping and FX loading are excluded). Reference events are not counted.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import defaultdict
from typing import Any, Iterable

from bench.machine import describe
from ledger.demo import customers_for_events, generate_business
from ledger.events import EventBase, FxRatePublished, customer_of
from projections.engine import FxTable, MrrSettings, compute_timeline

TARGET_EVENTS_PER_SECOND = 500_000


def prepare(events: int, seed: int, months: int) -> tuple[dict[str, list[EventBase]], FxTable]:
    """The demo business as per-customer event lists (recorded order) and its FX table."""
    return group(generate_business(seed=seed, customers=customers_for_events(events, months),
                                   months=months))


def group(arrivals: Iterable[tuple[Any, EventBase]]) -> tuple[dict[str, list[EventBase]], FxTable]:
    """Arrivals (arrival time, event) as per-customer event lists in arrival order, and the FX
    table of their rates."""
    by_customer: dict[str, list[EventBase]] = defaultdict(list)
    fx = FxTable()
    for _, event in arrivals:
        customer = customer_of(event)
        if customer is not None:
            by_customer[customer].append(event)
        elif isinstance(event, FxRatePublished):
            fx.add(event.base, event.quote, event.effective_date, event.rate)
    return dict(by_customer), fx


def run(by_customer: dict[str, list[EventBase]], fx: FxTable,
        settings: MrrSettings) -> tuple[float, int]:
    """Seconds spent in the engine over every customer, and the movements it produced.

    The prepared input is moved out of the garbage collector's generations first (`gc.freeze`),
    as a long-running worker's would be; the collector stays on for what the engine allocates."""
    movements = 0
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    for customer, events in by_customer.items():
        movements += len(compute_timeline(customer, events, settings, fx).movements)
    return time.perf_counter() - started, movements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="about how many events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the best one is reported")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    by_customer, fx = prepare(args.events, args.seed, args.months)
    count = sum(len(events) for events in by_customer.values())
    print(f"generated {count:,} customer events for {len(by_customer):,} customers "
          f"in {time.perf_counter() - started:.1f} s")
    settings = MrrSettings()
    best, movements = min(run(by_customer, fx, settings) for _ in range(max(1, args.repeat)))
    rate = count / best if best else float("inf")
    verdict = "meets" if rate >= TARGET_EVENTS_PER_SECOND else "below"
    print(f"engine: {count:,} events in {best:.2f} s = {rate:,.0f} events/s on one core "
          f"({movements:,} movements); {verdict} the {TARGET_EVENTS_PER_SECOND:,} events/s target")
    print(describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
