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
import os
import shutil
import tempfile
import time
from decimal import Decimal
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
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed (same seed, same business).")
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
        raise click.UsageError(f"{data_dir} holds files the demo did not write ({', '.join(sorted(foreign)[:3])}); "
                               "choose another --out")
    shutil.rmtree(data_dir)


async def _demo(seed: int, customers: int, months: int, first: dt.date, data_dir: Path,
                out_dir: Path | None) -> None:
    import msgspec
    from rich.console import Console

    from ledger.demo import event_counts, generate_business
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
    horizon = dt.datetime(first.year, first.month, 1, tzinfo=dt.timezone.utc)
    horizon = _month_after(horizon, months)
    known_at = max(arrivals[-1][0], horizon) if arrivals else horizon
    bridge, kpis, restated, biggest = await _reports(config, first, horizon, known_at)
    timings["report"] = time.perf_counter() - stamp
    _print_bridge(console, bridge)
    _print_kpis(console, kpis)
    _print_restatements(console, bridge, restated)
    if out_dir:
        _write_outputs(console, out_dir, bridge, kpis)
    total = time.perf_counter() - began
    console.print(
        f"Projected {applied:,} events. Time: generate {timings['generate']:.1f} s, record "
        f"{timings['record']:.1f} s, project {timings['project']:.1f} s, report "
        f"{timings['report']:.1f} s; total {total:.1f} s.")
    _print_next_steps(console, data_dir, first, horizon, biggest)


def _month_after(instant: dt.datetime, months: int) -> dt.datetime:
    index = instant.year * 12 + instant.month - 1 + months
    return instant.replace(year=index // 12, month=index % 12 + 1)


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


async def _record(console: Any, config: Any, arrivals: list[Any]) -> None:
    """Append events as they arrived: one `append_many` per arrival instant, `now` = arrival."""
    from streams.bootstrap import open_embedded_ledger

    ledger = open_embedded_ledger(config)
    try:
        with _progress(console) as progress:
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

    store = await open_store(config)
    ledger = open_embedded_ledger(config)
    try:
        total = sum((await ledger.end_offsets()).values())
        with _progress(console) as progress:
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
    from streams.bootstrap import open_store

    scope = Scope(as_of=horizon - dt.timedelta(microseconds=1), known_at=known_at)
    currency = config.reporting_currency
    last = horizon - dt.timedelta(days=1)

    def query(conn: Any, scope: Any, currency: str) -> tuple[Any, ...]:
        periods = resolve_periods(conn, "month", scope, f"{first:%Y-%m}", f"{last:%Y-%m}")
        rows = bridge(conn, periods, scope)
        at_close = []
        for period in periods[-RESTATED_MONTHS:]:
            closed = Scope(as_of=scope.as_of, known_at=period.end + dt.timedelta(days=2))
            at_close.extend(bridge_json(bridge(conn, [period], closed), currency, "month",
                                        closed)["rows"])
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


def _money(value: str | None) -> str:
    """Whole major units with thousands separators (tables only; JSON keeps exact cents)."""
    if value is None:
        return "–"
    amount = Decimal(value).quantize(Decimal(1))
    return "0" if amount == 0 else f"{amount:,}"


def _percent(value: str | None) -> str:
    return "–" if value is None else f"{Decimal(value) * 100:.1f}%"


def _ratio(value: str | None) -> str:
    return "–" if value is None else f"{Decimal(value):.2f}"


def _print_bridge(console: Any, payload: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"Monthly MRR bridge ({payload['currency']}, whole units)",
                  title_justify="left", caption="opening + movements + FX = closing, to the cent",
                  caption_justify="left", box=box.SIMPLE_HEAD)
    columns = (("Month", "period"), ("Opening", "opening_mrr"), ("New", "new_business"),
               ("Expansion", "expansion"), ("Reactiv.", "reactivation"),
               ("Contraction", "contraction"), ("Churn", "churn"), ("FX", "fx_impact"),
               ("Closing", "closing_mrr"), ("Cust.", "customers_closing"))
    for i, (name, _) in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in payload["rows"]:
        table.add_row(row["period"], *(_money(row[key]) for _, key in columns[1:-1]),
                      f"{row['customers_closing']:,}")
    console.print(table)


def _print_kpis(console: Any, payload: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"Monthly KPIs ({payload['currency']})", title_justify="left",
                  box=box.SIMPLE_HEAD)
    columns = ("Month", "ARR", "ARPA", "New\ncust.", "Churned\ncust.", "Customer\nchurn",
               "Gross MRR\nchurn", "NRR", "Quick\nratio", "CAC", "LTV:CAC", "CAC payback\n(months)")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for k in payload["rows"]:
        table.add_row(k["period"], _money(k["arr"]), _money(k["arpa"]), str(k["new_customers"]),
                      str(k["churned_customers"]), _percent(k["customer_churn_rate"]),
                      _percent(k["gross_mrr_churn_rate"]), _percent(k["nrr"]),
                      _ratio(k["quick_ratio"]), _money(k["cac"]), _ratio(k["ltv_cac"]),
                      _ratio(k["cac_payback_months"]))
    console.print(table)


def _print_restatements(console: Any, payload: dict[str, Any], at_close: list[dict[str, Any]]) -> None:
    """Closed months whose numbers late events changed after the books closed (on the 3rd)."""
    from rich import box
    from rich.table import Table

    final = {row["period"]: row for row in payload["rows"]}
    changed = [(then, final[then["period"]]) for then in at_close
               if then["closing_mrr"] != final[then["period"]]["closing_mrr"]]
    if not changed:
        console.print(f"No late event changed the last {len(at_close)} closed months.")
        return
    table = Table(title=f"Closing MRR restated by late events ({payload['currency']})",
                  title_justify="left", caption="At close: as known on the 3rd of the next month",
                  caption_justify="left", box=box.SIMPLE_HEAD)
    for i, name in enumerate(("Month", "At close", "Now", "Difference")):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for then, now in changed:
        difference = Decimal(now["closing_mrr"]) - Decimal(then["closing_mrr"])
        table.add_row(then["period"], f"{Decimal(then['closing_mrr']):,}",
                      f"{Decimal(now['closing_mrr']):,}", f"{difference:+,}")
    console.print(table)


def _write_outputs(console: Any, out_dir: Path, bridge: dict[str, Any], kpis: dict[str, Any]) -> None:
    import json

    from projections.charts import bridge_waterfall, mrr_over_time

    (out_dir / "bridge.json").write_text(json.dumps(bridge, indent=2) + "\n")
    (out_dir / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n")
    bridge_waterfall(bridge["rows"], bridge["currency"], out_dir / "mrr_bridge.png")
    mrr_over_time(bridge["rows"], bridge["currency"], out_dir / "mrr_over_time.png")
    console.print(f"Wrote {out_dir}/events.jsonl, bridge.json, kpis.json, mrr_bridge.png, "
                  "mrr_over_time.png")


def _print_next_steps(console: Any, data_dir: Path, first: dt.date, horizon: dt.datetime,
                      customer: str | None) -> None:
    prefix = f"MRR_DATA_DIR={data_dir}"
    prefix += "".join(f" {name}=" for name in ("MRR_DATABASE_URL", "MRR_KAFKA_BOOTSTRAP")
                      if os.environ.get(name))
    last = horizon - dt.timedelta(days=1)
    closed = f"{last:%Y-%m}"
    console.print("\n[bold]Query further[/bold] (the data stays in "
                  f"{data_dir}):", highlight=False)
    for example in (
        f"mrr report kpis --period quarter --from {first:%Y-%m} --to {closed}",
        f"mrr report bridge --period year",
        f"mrr report snapshot --from {closed} --to {closed}",
        f"mrr report bridge --from {closed} --to {closed} --known-at {horizon:%Y-%m}-03T00:00:00Z",
        f"mrr report customer --customer {customer or 'cus_000001'}",
        f"mrr report movements --customer {customer or 'cus_000001'}",
    ):
        console.print(f"  {prefix} {example}", highlight=False, soft_wrap=True)
