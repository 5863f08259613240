"""`mrr import-periods FILE`: import a subscription-periods CSV (dbt mrr-playbook format)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import click

_EPILOG = """\b
Example:
  mrr import-periods subscription_periods.csv && mrr report snapshot --period month

\b
Exit status:
  0  every period imported (or already there)
  1  bad rows (each listed on stderr as `line N: reason`; nothing is written) or conflicts
  2  usage or configuration error
"""


@click.command("import-periods", epilog=_EPILOG)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--data-dir", default=None, help="Directory of the embedded ledger [MRR_DATA_DIR].")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--project/--no-project", default=True, show_default=True,
              help="Bring the projections up to date after appending.")
def command(file: str, data_dir: str | None, as_json: bool, project: bool) -> None:
    """Import subscription periods from a CSV into the ledger.

    Columns: subscription_id, customer_id, start_date, end_date (exclusive; empty while open),
    monthly_amount (major units), optional currency (default USD) and interval (month or year).
    Each period becomes `subscription.started` at start_date 00:00 UTC and, if it has ended,
    `subscription.canceled` at end_date 00:00 UTC, with ids `periods:<subscription_id>:start|end`
    so re-importing the same file is harmless. The file is checked as a whole first: with any
    bad row nothing is written.
    """
    from ledger.importers.periods import PeriodsFileError, read_periods
    from streams.config import load_config

    try:
        config = load_config({"data_dir": data_dir})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if config.kafka_bootstrap:
        click.echo("mrr import-periods: only the embedded ledger is supported by this version; "
                   "unset MRR_KAFKA_BOOTSTRAP / kafka_bootstrap.", err=True)
        raise SystemExit(2)
    try:
        if file == "-":
            periods = read_periods(click.get_text_stream("stdin"))
        else:
            periods = read_periods(file)
    except PeriodsFileError as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(exc.errors)} bad row(s); nothing imported", err=True)
        raise SystemExit(1)
    summary = asyncio.run(_import(config, periods, project))
    for error in summary.pop("errors"):
        click.echo(error, err=True)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"periods: {summary['periods']}  events accepted: {summary['accepted']}  "
                   f"duplicate: {summary['duplicate']}  rejected: {summary['rejected']}")
        click.echo(f"projections: {summary['projections']}", err=True)
    raise SystemExit(1 if summary["rejected"] else 0)


async def _import(config: Any, periods: list[Any], project: bool) -> dict[str, Any]:
    """Validate the events like `mrr ingest` does, append them, then project."""
    from ledger.embedded import EmbeddedLedger
    from ledger.importers.periods import period_events
    from ledger.validation import EventValidationError, check_rules

    line_of = {p.subscription_id: p.line for p in periods}
    event_line: dict[str, int] = {}
    now = dt.datetime.now(dt.timezone.utc)
    horizon = dt.timedelta(days=config.future_horizon_days)
    events, errors = [], []
    for event in period_events(periods):
        try:
            check_rules(event, now=now, horizon=horizon)
            events.append(event)
            event_line[event.event_id] = line_of[event.subscription_id]
        except EventValidationError as exc:
            errors.append(f"line {line_of[event.subscription_id]}: {exc}")
    counts = {"accepted": 0, "duplicate": 0, "conflict": 0}
    if not errors:  # all or nothing, like the row checks
        async with EmbeddedLedger(config.data_path / "ledger.sqlite") as ledger:
            for first in range(0, len(events), 1000):
                for result in await ledger.append_many(events[first:first + 1000]):
                    counts[result.status] += 1
                    if result.status == "conflict":
                        errors.append(f"line {event_line[result.event_id]}: event_id "
                                      f"{result.event_id!r} already recorded with a different body")
    projected = await _project(config) if project else "skipped (--no-project)"
    return {"periods": len(periods), "events": len(events), "accepted": counts["accepted"],
            "duplicate": counts["duplicate"], "rejected": len(errors), "errors": errors,
            "projections": projected}


async def _project(config: Any) -> str:
    """Run `streams.bootstrap.project_pending(config)` when the projector is available."""
    try:
        from streams.bootstrap import project_pending
    except ImportError as exc:
        if exc.name != "streams.bootstrap":
            raise
        return "not updated (streams.bootstrap is not available yet)"
    await project_pending(config)
    return "updated"
