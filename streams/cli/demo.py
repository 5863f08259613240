"""`mrr demo`: a synthetic SaaS business, recorded as it happened, projected and reported.

Generates the demo business (`ledger.demo`), appends its events to a fresh embedded ledger with
each event's arrival time as `recorded_at` (so late events are real restatements), projects
them, and prints the monthly MRR bridge and KPIs. With `--out DIR` it also writes
`DIR/events.jsonl`, `DIR/bridge.json`, `DIR/kpis.json`, `DIR/mrr_bridge.png` and
`DIR/mrr_over_time.png`, and keeps the data in `DIR/data` for `mrr report`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click

_EPILOG = """\b
Examples:
  mrr demo --out demo-out
  mrr demo --customers 20000 --months 36 --seed 1
"""
_DATA_FILES = ("ledger.sqlite", "projections.sqlite")


@click.command("demo", epilog=_EPILOG)
@click.option("--seed", type=int, default=7, show_default=True,
              help="Random seed (same seed, same business).")
@click.option("--customers", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Customers signing up over the simulated months.")
@click.option("--months", type=click.IntRange(1, 240), default=24, show_default=True,
              help="Months simulated.")
@click.option("--start", default="2023-01", show_default=True, metavar="YYYY-MM",
              help="First simulated month.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write events, charts and JSON reports here; data goes to OUT/data.")
def command(seed: int, customers: int, months: int, start: str, out: str | None) -> None:
    """Run a synthetic SaaS business through the ledger and print its MRR bridge and KPIs.

    The business: monthly and annual plans in USD, EUR and GBP with monthly FX rates, seats,
    add-ons, coupons, trials, upgrades and downgrades, renewals, pauses, scheduled and immediate
    cancellations, failed payments, comebacks, customer attributes, acquisition spend, and ~1%
    of events arriving late. Everything runs on the embedded ledger; nothing is needed but Python.
    """
    try:
        first = dt.date.fromisoformat(f"{start}-01")
    except ValueError:
        raise click.BadParameter(f"{start!r} is not a month (YYYY-MM)", param_hint="--start") from None
    end_index = first.year * 12 + first.month - 1 + months
    if (end_index // 12, end_index % 12 + 1) > (dt.date.today().year, dt.date.today().month):
        raise click.UsageError("--start and --months must end by the current month: events are "
                               "recorded at their arrival time, which cannot be in the future")
    out_dir = Path(out) if out else None
    data_dir = out_dir / "data" if out_dir else Path(tempfile.mkdtemp(prefix="mrr-demo-"))
    _fresh(data_dir)
    asyncio.run(_demo(seed, customers, months, first, data_dir, out_dir))


def _fresh(data_dir: Path) -> None:
    """Empty a previous demo's data directory; refuse to touch anything else in it."""
    if not data_dir.exists():
        return
    foreign = [p.name for p in data_dir.iterdir() if not p.name.startswith(_DATA_FILES)]
    if foreign:
        raise click.UsageError(f"{data_dir} holds files the demo did not write "
                               f"({', '.join(sorted(foreign)[:3])}); choose another --out")
    shutil.rmtree(data_dir)


async def _demo(seed: int, customers: int, months: int, first: dt.date, data_dir: Path,
                out_dir: Path | None) -> None:
    import msgspec
    from rich.console import Console

    from ledger.demo import event_counts, generate_business
    from ledger.demo.calendar import month_grid
    from streams.cli import _demo_render as render
    from streams.config import load_config

    console = Console()
    if not console.is_terminal:  # piped or logged: wide enough for the tables, not 80 columns
        console = Console(width=140)
    try:  # the demo always runs embedded, whatever MRR_DATABASE_URL / MRR_KAFKA_BOOTSTRAP say
        config = msgspec.structs.replace(load_config({"data_dir": str(data_dir)}),
                                         database_url=None, kafka_bootstrap=None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    timings: dict[str, float] = {}
    began = time.perf_counter()
    arrivals = generate_business(seed=seed, customers=customers, months=months, start=first)
    timings["generate"] = time.perf_counter() - began
    counts = event_counts(arrivals)
    late = sum(1 for a, e in arrivals if a - e.occurred_at > dt.timedelta(days=1)
               and getattr(e, "customer_id", None))
    console.print(f"[bold]Demo business[/bold] (seed {seed}): {customers:,} customers over {months} "
                  f"months from {first:%Y-%m}: {len(arrivals):,} events of {len(counts)} types, "
                  f"{late:,} arriving late, generated in {timings['generate']:.1f} s")
    if out_dir:
        from ledger.demo import write_jsonl

        out_dir.mkdir(parents=True, exist_ok=True)
        write_jsonl(arrivals, out_dir / "events.jsonl")

    stamp = time.perf_counter()
    await _record(console, config, arrivals)
    timings["record"] = time.perf_counter() - stamp
    stamp = time.perf_counter()
    applied = await _project(console, config)
    timings["project"] = time.perf_counter() - stamp

    stamp = time.perf_counter()
    horizon = month_grid(first, months)[-1]  # the instant the simulation stops
    known_at = max(arrivals[-1][0], horizon) if arrivals else horizon
    bridge, kpis, restated, biggest = await _reports(config, first, horizon, known_at)
    timings["report"] = time.perf_counter() - stamp
    render.print_bridge(console, bridge)
    render.print_kpis(console, kpis)
    render.print_restatements(console, bridge, restated)
    if out_dir:
        _write_outputs(console, out_dir, bridge, kpis)
    total = time.perf_counter() - began
    console.print(
        f"Projected {applied:,} events. Time: generate {timings['generate']:.1f} s, record "
        f"{timings['record']:.1f} s, project {timings['project']:.1f} s, report "
        f"{timings['report']:.1f} s; total {total:.1f} s.")
    render.print_next_steps(console, data_dir, first, horizon, biggest)


async def _record(console: Any, config: Any, arrivals: list[Any]) -> None:
    """Append events as they arrived: one `append_many` per arrival instant, `now` = arrival."""
    from streams.bootstrap import open_embedded_ledger
    from streams.cli._demo_render import progress_bar

    ledger = open_embedded_ledger(config)
    try:
        with progress_bar(console) as progress:
            task = progress.add_task("Recording events", total=len(arrivals))
            for arrival, group in itertools.groupby(arrivals, key=lambda pair: pair[0]):
                batch = [event for _, event in group]
                await ledger.append_many(batch, now=arrival)
                progress.advance(task, len(batch))
    finally:
        await ledger.close()


async def _project(console: Any, config: Any) -> int:
    """Run the projector over the whole ledger, showing its committed offset as progress."""
    from streams.bootstrap import open_embedded_ledger, open_store, project_pending
    from streams.cli._demo_render import progress_bar

    store = await open_store(config)
    ledger = open_embedded_ledger(config)
    try:
        total = sum((await ledger.end_offsets()).values())
        with progress_bar(console) as progress:
            task = progress.add_task("Projecting MRR", total=total)
            job = asyncio.create_task(project_pending(config, store=store, ledger=ledger))
            while not job.done():
                await asyncio.wait({job}, timeout=0.25)
                progress.update(task, completed=sum((await store.offsets()).values()))
            return job.result()
    finally:
        await ledger.close()
        await store.close()


RESTATED_MONTHS = 6
"""How many of the last closed months are compared as known at close and as known now."""
BOOKS_CLOSE_DELAY = dt.timedelta(days=2)
"""The demo's books close on the 3rd of the next month (`mrr report restatements` closes at the end)."""


async def _reports(config: Any, first: dt.date, horizon: dt.datetime,
                   known_at: dt.datetime) -> tuple[Any, ...]:
    """The monthly bridge and KPIs of the simulated months, as known after the last arrival; the
    last months' bridge rows as known on the 3rd of the following month (the books' close); and
    the customer with the highest MRR at the end."""
    from projections.queries import (
        Scope,
        bridge,
        bridge_json,
        kpis,
        kpis_json,
        resolve_periods,
        snapshot,
    )
    from projections.queries.restatements import bridge_at_close
    from streams.bootstrap import open_store

    scope = Scope(as_of=horizon - dt.timedelta(microseconds=1), known_at=known_at)
    currency = config.reporting_currency
    last = horizon - dt.timedelta(days=1)

    def query(conn: Any, scope: Any, currency: str) -> tuple[Any, ...]:
        periods = resolve_periods(conn, "month", scope, f"{first:%Y-%m}", f"{last:%Y-%m}")
        rows = bridge(conn, periods, scope)
        closed = bridge_at_close(conn, periods[-RESTATED_MONTHS:], scope, BOOKS_CLOSE_DELAY)
        at_close = bridge_json(closed, currency, "month", scope)["rows"]
        last_month = snapshot(conn, periods, scope, periods[-1:])
        biggest = max(last_month, key=lambda r: (r.mrr, r.customer_id), default=None)
        return (bridge_json(rows, currency, "month", scope),
                kpis_json(kpis(conn, rows, scope, currency), currency, "month", scope), at_close,
                biggest.customer_id if biggest else None)

    store = await open_store(config)
    try:
        return await store.read(query, scope, currency)
    finally:
        await store.close()


def _write_outputs(console: Any, out_dir: Path, bridge: dict[str, Any],
                   kpis: dict[str, Any]) -> None:
    """The JSON reports and the charts, next to events.jsonl."""
    import json

    from projections.charts import bridge_waterfall, mrr_over_time

    (out_dir / "bridge.json").write_text(json.dumps(bridge, indent=2) + "\n")
    (out_dir / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n")
    bridge_waterfall(bridge["rows"], bridge["currency"], out_dir / "mrr_bridge.png")
    mrr_over_time(bridge["rows"], bridge["currency"], out_dir / "mrr_over_time.png")
    console.print(f"Wrote {out_dir}/events.jsonl, bridge.json, kpis.json, mrr_bridge.png, "
                  "mrr_over_time.png")


