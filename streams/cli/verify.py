"""`mrr verify`: recompute MRR from the ledger from scratch and compare with the projections."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from typing import Any

import click

_EPILOG = """\b
Examples:
  mrr verify                      the live projections (Kafka + PostgreSQL, or embedded)
  mrr verify --json               every difference, for scripts
  MRR_DATABASE_SCHEMA=mrr_side mrr verify      a side schema built by `mrr replay --into`

\b
Exit status:
  0  the projections equal the from-scratch computation
  1  differences found (listed), or the ledger or database failed
  2  usage or configuration error
"""


@click.command("verify", epilog=_EPILOG)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0),
              help="Most differences to print (all with --json).")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.option("--no-record", is_flag=True,
              help="Do not store the result in the projections (for `mrr exporter`'s mrr_verify_* gauges).")
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="PostgreSQL: processes recomputing slices of the customers [the machine's cores].")
def command(limit: int, as_json: bool, no_record: bool, jobs: int | None) -> None:
    """Recompute every customer's MRR, movements and FX impacts from the ledger with the engine
    from scratch (independently of the projector) and compare them with the projections: per
    customer current rows, every month's bridge, the event index, reference tables and offsets.

    The projections' offsets and rows are read in one snapshot and the ledger up to exactly
    those offsets, so it is safe while workers run. Prints each difference with the customer id
    and what differs; exits 1 on any difference. The outcome is stored for `mrr exporter`
    (gauges mrr_verify_differences, mrr_verify_timestamp_seconds) unless --no-record.
    """
    from streams.config import load_config

    try:
        config = load_config()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        result = asyncio.run(_run(config, record=not no_record, quiet=as_json, jobs=jobs or os.cpu_count() or 1))
    except Exception as exc:  # noqa: BLE001 - the ledger or the database failed: say what, exit 1
        click.echo(f"mrr verify: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(1) from None
    if as_json:
        import msgspec

        payload: dict[str, Any] = msgspec.to_builtins(result)
        payload["ok"], payload["difference_count"] = result.ok, result.difference_count
        click.echo(json.dumps(payload))
    else:
        _print(result, limit)
    raise SystemExit(0 if result.ok else 1)


async def _run(config: Any, *, record: bool, quiet: bool, jobs: int) -> Any:
    from rich.progress import Progress, TextColumn

    from streams.bootstrap import open_store
    from streams.verify import record_result, verify_store

    store = await open_store(config)
    try:
        if quiet:
            result = await verify_store(store, config, jobs=jobs)
        else:
            with Progress(TextColumn("reading the ledger: {task.completed:,} messages"),
                          transient=True) as bar:
                task = bar.add_task("read", total=None)
                result = await verify_store(store, config, progress=lambda n: bar.advance(task, n), jobs=jobs)
        if record:
            await record_result(store, result)
        return result
    finally:
        await store.close()


def _print(result: Any, limit: int) -> None:
    click.echo(f"verified {result.events:,} events of {result.customers:,} customers up to offsets "
               f"{dict(sorted(result.offsets.items()))}")
    if result.ok:
        click.echo("no differences: the projections equal a from-scratch computation of the ledger")
        return
    by_table = Counter(d.table for d in result.differences)
    customers = sorted({d.customer_id for d in result.differences if d.customer_id})
    click.echo(f"{result.difference_count} difference(s): "
               + ", ".join(f"{table} {n}" for table, n in sorted(by_table.items()))
               + (f", bridge {len(result.bridge)}" if result.bridge else ""))
    if customers:
        click.echo(f"customers affected ({len(customers)}): {', '.join(customers[:20])}"
                   + (" …" if len(customers) > 20 else ""))
    for diff in result.differences[:limit]:
        who = f"customer {diff.customer_id}: " if diff.customer_id else ""
        click.echo(f"  {diff.table}: {who}{diff.kind}: {diff.row}")
    for month in result.bridge[:limit]:
        click.echo(f"  bridge {month.month} {month.type}: expected {month.expected}, "
                   f"projected {month.actual} (minor units)")
    hidden = max(len(result.differences) - limit, 0) + max(len(result.bridge) - limit, 0)
    if hidden:
        click.echo(f"  … {hidden} more (--json lists all)")
