"""`mrr replay`: rebuild the PostgreSQL projections from the Kafka ledger and swap them in."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

import click

from streams.cli._options import instant as _instant
from streams.cli._replay_progress import ReplayProgress

_EPILOG = """\b
Examples:
  mrr replay                              rebuild, verify, swap in (the worker keeps running)
  mrr replay --resume | --abort           finish or drop an interrupted replay
  mrr replay --until-recorded 2024-04-03T00:00:00Z --into mrr_apr3
                                          history as known then, kept in schema mrr_apr3
  mrr replay --setting churn_recognition=on_request --into mrr_onreq
  MRR_DATABASE_SCHEMA=mrr_onreq MRR_CHURN_RECOGNITION=on_request mrr report bridge
                                          report on it (with the settings it was built with)
  mrr replay --abort --into mrr_onreq     drop it

\b
Exit status:
  0  swapped in (or side schema kept, or aborted)
  1  the rebuilt projections failed verification, or Kafka/PostgreSQL failed
  2  usage or configuration error (e.g. no Kafka configured, an interrupted replay exists)
"""

SETTING_NAMES = ("reporting_currency", "churn_recognition", "past_due_grace_days",
                 "once_discounts_reduce_mrr", "classification_window_seconds")


def _parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SETTING_NAMES:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE with NAME one of {', '.join(SETTING_NAMES)}",
                                     param_hint="--setting")
        values[name] = value
    return values


@click.command("replay", epilog=_EPILOG)
@click.option("--resume", is_flag=True, help="Finish the interrupted replay (same target, from its stage).")
@click.option("--abort", is_flag=True, help="Drop the interrupted replay's schema; the live projections stay.")
@click.option("--until-recorded", callback=_instant, metavar="RFC3339",
              help="Only events recorded up to this instant: history as known then (a side rebuild).")
@click.option("--setting", "settings", multiple=True, metavar="NAME=VALUE",
              help="Rebuild under another MRR setting (repeatable; a side rebuild), e.g. "
                   "churn_recognition=on_request.")
@click.option("--into", metavar="SCHEMA", help="Schema of a side rebuild [mrr_side].")
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Processes computing the rebuild, each one bucket of customers at a time [the machine's cores].")
@click.option("--json", "as_json", is_flag=True, help="Progress and result as JSON lines on stdout.")
def command(resume: bool, abort: bool, until_recorded: dt.datetime | None, settings: tuple[str, ...],
            into: str | None, jobs: int | None, as_json: bool) -> None:
    """Rebuild every projection from offset 0 of the Kafka ledger into a fresh PostgreSQL schema,
    verify it against an independent from-scratch computation, and swap it in atomically.

    The live worker keeps serving the current projections meanwhile and continues from the
    replay's end offsets after the swap (no gap, no double count). An interrupted replay
    leaves the live projections untouched. With --until-recorded or --setting the rebuild is
    kept in a side schema for comparison instead of being swapped in. See docs/operations.md.
    """
    from streams.config import load_config
    from streams.replay import ReplayError, ReplayRequest, run_replay
    from streams.replay_model import ReplayVerificationError

    if resume and abort:
        raise click.UsageError("choose one of --resume and --abort")
    overrides = _parse_settings(settings)
    try:
        config = load_config()
        other = load_config(overrides).mrr_settings() if overrides else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    request = ReplayRequest(resume=resume, abort=abort, until_recorded=until_recorded,
                            settings=other, into=into, jobs=jobs or os.cpu_count() or 1)
    progress = ReplayProgress(as_json)
    try:
        outcome = asyncio.run(run_replay(config, request, progress))
    except ReplayError as exc:
        progress.finish()
        click.echo(f"mrr replay: {exc}", err=True)
        raise SystemExit(1 if isinstance(exc, ReplayVerificationError) else 2) from None
    except Exception as exc:  # noqa: BLE001 - Kafka or PostgreSQL failed: say what and stop
        progress.finish()
        click.echo(f"mrr replay: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(1) from None
    progress.finish()
    summary = {"schema": outcome.schema, "stage": outcome.stage, "swapped_into": outcome.swapped_into,
               "events": outcome.events, "dead_letters": outcome.dead_letters, "rows": outcome.rows,
               "ends": outcome.ends, "seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
               "verify_differences": None if outcome.verify is None else outcome.verify.difference_count,
               "peak_rss_mib": outcome.peak_rss_mib}
    if as_json:
        progress.emit({"phase": "result", **summary})
        return
    click.echo(_describe(summary))


def _describe(summary: dict[str, Any]) -> str:
    stage = summary["stage"]
    if stage == "swapped":
        head = f"replayed {summary['events']:,} events into {summary['rows']:,} rows; verified; swapped into schema {summary['swapped_into']}"
    elif stage == "kept":
        head = (f"replayed {summary['events']:,} events into schema {summary['schema']}; verified; kept "
                f"(report on it with MRR_DATABASE_SCHEMA={summary['schema']}; drop it with --abort --into "
                f"{summary['schema']})")
    else:
        return f"schema {summary['schema']}: {stage}"
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in summary["seconds"].items())
    letters = f"; {summary['dead_letters']} dead letter(s) skipped" if summary["dead_letters"] else ""
    return f"{head}{letters}\n{timings}"
