"""`mrr ingest FILE|-`: append JSON Lines events to the configured ledger, then project them."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import IO, Any

import click

log = logging.getLogger(__name__)

_EPILOG = """\b
Examples:
  mrr ingest events.jsonl
  cat events.jsonl | mrr ingest -
  mrr ingest --json events.jsonl > summary.json

\b
Exit status:
  0  every line accepted or a duplicate
  1  some line rejected (each listed on stderr)
  2  usage or configuration error
"""


@click.command("ingest", epilog=_EPILOG)
@click.argument("file", type=click.File("rb", lazy=False), metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--data-dir", default=None, help="Directory of the embedded ledger [MRR_DATA_DIR].")
@click.option(
    "--project/--no-project",
    default=True,
    show_default=True,
    help="Bring the projections up to date after appending.",
)
def command(file: IO[bytes], as_json: bool, data_dir: str | None, project: bool) -> None:
    """Append the JSON Lines events in FILE (or stdin for -) to the ledger.

    Each line is one event (see docs/events.md); blank lines are skipped. Every line is validated
    on its own: an invalid line is reported on stderr as `line N: reason` and written nowhere,
    and the rest of the file is still ingested. Re-sending an event_id with the same body is a
    harmless duplicate, so re-running a file is safe; the same event_id with a different body is
    rejected as a conflict.

    Prints the accepted/duplicate/rejected counts, then updates the projections (unless
    --no-project) so reports include the new events.
    """
    from streams.config import load_config

    try:
        config = load_config({"data_dir": data_dir})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if config.kafka_bootstrap:
        click.echo(
            "mrr ingest: the Kafka ledger (kafka_bootstrap="
            f"{config.kafka_bootstrap!r}) is not supported by this version yet; unset "
            "MRR_KAFKA_BOOTSTRAP / kafka_bootstrap to use the embedded ledger.",
            err=True,
        )
        raise SystemExit(2)
    report, projected = asyncio.run(_run(config, file, project))
    _print(report, projected, as_json)
    raise SystemExit(0 if report.ok else 1)


async def _run(config: Any, file: IO[bytes], project: bool) -> tuple[Any, str]:
    import datetime as dt

    from ledger.embedded import EmbeddedLedger
    from ledger.ingest import ingest_lines

    async with EmbeddedLedger(config.data_path / "ledger.sqlite") as ledger:
        report = await ingest_lines(
            file, ledger, horizon=dt.timedelta(days=config.future_horizon_days)
        )
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


def _print(report: Any, projected: str, as_json: bool) -> None:
    for rejection in report.rejections:
        click.echo(f"line {rejection.line}: {rejection.reason}", err=True)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "projections": projected}, indent=2))
        return
    click.echo(
        f"accepted: {report.accepted}  duplicate: {report.duplicate}  rejected: {report.rejected}"
        + (f" (conflicts: {report.conflicts})" if report.conflicts else "")
    )
    click.echo(f"projections: {projected}", err=True)
