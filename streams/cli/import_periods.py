"""`mrr import-periods FILE`: import a subscription-periods CSV (dbt mrr-playbook format)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import click

from streams.cli import _ledger_output as _out

_EPILOG = """\b
Example:
  mrr import-periods subscription_periods.csv && mrr report snapshot --period month
  MRR_KAFKA_BOOTSTRAP=kafka:9092 mrr import-periods subscription_periods.csv

\b
Exit status:
  0  every period imported (or already there)
  1  bad rows (each listed on stderr as `line N: reason`; nothing is written), conflicts,
     or Kafka failed while writing
  2  usage or configuration error (Kafka unreachable, ledger topic missing)
"""


@click.command("import-periods", epilog=_EPILOG)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--data-dir", default=None, help="Directory of the embedded ledger [MRR_DATA_DIR].")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--project/--no-project", default=True, show_default=True,
              help="Embedded ledger: bring the projections up to date after appending (on Kafka "
              "the `mrr worker` does it).")
def command(file: str, data_dir: str | None, as_json: bool, project: bool) -> None:
    """Import subscription periods from a CSV into the ledger.

    Columns: subscription_id, customer_id, start_date, end_date (exclusive; empty while open),
    monthly_amount (major units), optional currency (default USD) and interval (month or year).
    Each period becomes `subscription.started` at start_date 00:00 UTC and, if it has ended,
    `subscription.canceled` at end_date 00:00 UTC, with ids `periods:<subscription_id>:start|end`
    so re-importing the same file is harmless. The file is checked as a whole first: with any
    bad row nothing is written.

    \b
    Ledger (as for `mrr ingest`):
      embedded  (default) <data_dir>/ledger.sqlite; re-imported events count
                as duplicates. The projections are updated right after
                (unless --no-project).
      Kafka     when MRR_KAFKA_BOOTSTRAP / kafka_bootstrap is set: appended
                to MRR_LEDGER_TOPIC, which must exist (`mrr topics create`).
                Re-imported events are stored again and counted as accepted
                (duplicate: n/a); `mrr worker` projects them, applying each
                event_id once.
    """
    from ledger.importers.periods import PeriodsFileError, read_periods
    from streams.config import load_config

    try:
        config = load_config({"data_dir": data_dir})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
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
    try:
        summary = asyncio.run(_import(config, periods, project))
    except Exception as exc:
        if not config.kafka_bootstrap:
            raise
        _out.fail_kafka("import-periods", config, exc)
    for error in summary.pop("errors"):
        click.echo(error, err=True)
    if as_json:
        click.echo(json.dumps({**summary, **_out.ledger_fields(config)}, indent=2))
    else:
        duplicate = "n/a" if summary["duplicate"] is None else summary["duplicate"]
        click.echo(f"periods: {summary['periods']}  events accepted: {summary['accepted']}  "
                   f"duplicate: {duplicate}  rejected: {summary['rejected']}")
        if config.kafka_bootstrap:
            click.echo(_out.kafka_note(config), err=True)
        click.echo(f"projections: {summary['projections']}", err=True)
    raise SystemExit(1 if summary["rejected"] else 0)


async def _import(config: Any, periods: list[Any], project: bool) -> dict[str, Any]:
    """Validate the events like `mrr ingest` does, append them, then project (embedded ledger)."""
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
        async with await _open_ledger(config) as ledger:
            for first in range(0, len(events), 1000):
                for result in await ledger.append_many(events[first:first + 1000]):
                    counts[result.status] += 1
                    if result.status == "conflict":
                        errors.append(f"line {event_line[result.event_id]}: event_id "
                                      f"{result.event_id!r} already recorded with a different body")
    if config.kafka_bootstrap:
        projected, duplicate = _out.WORKER_PROJECTS, None  # Kafka cannot tell a re-sent event
    else:
        projected = await _project(config) if project else "skipped (--no-project)"
        duplicate = counts["duplicate"]
    return {"periods": len(periods), "events": len(events), "accepted": counts["accepted"],
            "duplicate": duplicate, "rejected": len(errors), "errors": errors,
            "projections": projected}


async def _open_ledger(config: Any) -> Any:
    """The configured ledger writer: Kafka (topic checked first) or the embedded ledger."""
    if config.kafka_bootstrap:
        from streams.bootstrap import open_kafka_writer

        return await open_kafka_writer(config)
    from ledger.embedded import EmbeddedLedger

    return EmbeddedLedger(config.data_path / "ledger.sqlite")


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
