"""`mrr ingest FILE|-`: append JSON Lines events to the configured ledger (embedded: then project)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import IO, Any

import click

from streams.cli import _ledger_output as _out

log = logging.getLogger(__name__)

_EPILOG = """\b
Examples:
  mrr ingest events.jsonl
  cat events.jsonl | mrr ingest -
  mrr ingest --json events.jsonl > summary.json
  MRR_KAFKA_BOOTSTRAP=kafka:9092 mrr ingest events.jsonl

\b
Exit status:
  0  every line accepted or a duplicate
  1  some line rejected (each listed on stderr), or Kafka failed while writing
  2  usage or configuration error (Kafka unreachable, ledger topic missing)
"""


@click.command("ingest", epilog=_EPILOG)
@click.argument("file", type=click.File("rb", lazy=False), metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--data-dir", default=None, help="Directory of the embedded ledger [MRR_DATA_DIR].")
@click.option(
    "--project/--no-project",
    default=True,
    show_default=True,
    help="Embedded ledger: bring the projections up to date after appending (on Kafka the "
    "`mrr worker` does it).",
)
def command(file: IO[bytes], as_json: bool, data_dir: str | None, project: bool) -> None:
    """Append the JSON Lines events in FILE (or stdin for -) to the ledger.

    Each line is one event (see docs/events.md); blank lines are skipped. Every line is validated
    on its own: an invalid line is reported on stderr as `line N: reason` and written nowhere,
    and the rest of the file is still ingested.

    \b
    Ledger (see `streams/config.py`):
      embedded  (default) <data_dir>/ledger.sqlite. Re-sending an event_id
                with the same body is a harmless duplicate, with another
                body a rejected conflict. The projections are updated right
                after (unless --no-project).
      Kafka     when MRR_KAFKA_BOOTSTRAP / kafka_bootstrap is set: appended
                to MRR_LEDGER_TOPIC (default mrr.ledger), which must exist
                (`mrr topics create`). Kafka cannot tell a re-sent event: it
                is stored again and counted as accepted (duplicate: n/a).
                `mrr worker` projects, applying each event_id once.
    """
    from streams.config import load_config

    try:
        config = load_config({"data_dir": data_dir})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        report, projected = asyncio.run(_run(config, file, project))
    except Exception as exc:
        if not config.kafka_bootstrap:
            raise
        _out.fail_kafka("ingest", config, exc)
    _print(config, report, projected, as_json)
    raise SystemExit(0 if report.ok else 1)


async def _run(config: Any, file: IO[bytes], project: bool) -> tuple[Any, str]:
    import datetime as dt

    from ledger.embedded import EmbeddedLedger
    from ledger.ingest import ingest_lines

    horizon = dt.timedelta(days=config.future_horizon_days)
    if config.kafka_bootstrap:
        from streams.bootstrap import open_kafka_writer

        async with await open_kafka_writer(config) as writer:
            return await ingest_lines(file, writer, horizon=horizon), _out.WORKER_PROJECTS
    async with EmbeddedLedger(config.data_path / "ledger.sqlite") as ledger:
        report = await ingest_lines(file, ledger, horizon=horizon)
    projected = await _project(config) if project else "skipped (--no-project)"
    return report, projected


async def _project(config: Any) -> str:
    """Run `streams.bootstrap.project_pending(config)` if that module exists yet."""
    try:
        from streams.bootstrap import project_pending
    except ImportError as exc:
        if exc.name != "streams.bootstrap":
            raise  # a real import bug inside the projector, not "not there yet"
        log.info("projections not updated: %s", exc)
        return "not updated (streams.bootstrap.project_pending is not available yet)"
    applied = await project_pending(config)
    return f"updated ({applied} events applied)" if isinstance(applied, int) else "updated"


def _print(config: Any, report: Any, projected: str, as_json: bool) -> None:
    kafka = bool(config.kafka_bootstrap)
    for rejection in report.rejections:
        click.echo(f"line {rejection.line}: {rejection.reason}", err=True)
    if as_json:
        summary = {**report.to_json(), **_out.ledger_fields(config), "projections": projected}
        if kafka:
            summary["duplicate"] = None  # not detected on Kafka (docs/kafka.md)
        click.echo(json.dumps(summary, indent=2))
        return
    duplicate = "n/a" if kafka else report.duplicate
    click.echo(
        f"accepted: {report.accepted}  duplicate: {duplicate}  rejected: {report.rejected}"
        + (f" (conflicts: {report.conflicts})" if report.conflicts else "")
    )
    if kafka:
        click.echo(_out.kafka_note(config), err=True)
    click.echo(f"projections: {projected}", err=True)
