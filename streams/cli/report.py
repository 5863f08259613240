"""`mrr report …`: MRR reports from the projections (MRR_SPEC.md §6–§7).

Each subcommand shares the options of `report_options` and runs through `run_report`, which
loads the configuration, opens the projections (SQLite, or PostgreSQL at the Alembic head
revision), brings them up to date from the embedded ledger unless Kafka is the ledger (then the
`mrr worker` keeps them current), and runs one query function inside a read transaction; `emit` prints the payload as a rich table,
`--json` or `--csv` (stdout, or the `--out` file), and `chart_option`/`write_chart` give a
subcommand `--chart FILE.png`. Other report modules add subcommands with `@command.command()` and
the same helpers (the analytics ones live in `report_analytics`). Heavy imports happen inside
functions so `mrr --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable

import click

from streams.cli._options import instant as _instant

PERIOD_CHOICES = ("day", "week", "month", "quarter", "year")

_EPILOG = """\b
Periods are UTC. --from/--to are inclusive and take a label (2024, 2024-Q1,
2024-03, 2024-W10, 2024-03-05) or an RFC 3339 instant. --as-of (business
time) cuts every report at that instant; --known-at (recorded time) shows
the report as it was known then, before later or backdated events.

\b
Backends (streams/config.py):
  default         SQLite projections in --data-dir, first brought up to
                  date from the embedded ledger there.
  MRR_DATABASE_URL
                  PostgreSQL projections; the schema must be at the
                  code's Alembic revision (`mrr db upgrade`). Without
                  Kafka the embedded ledger is projected into it first.
  MRR_KAFKA_BOOTSTRAP
                  reports only read: `mrr worker` projects the Kafka
                  ledger into the projection database.

\b
Examples:
  mrr report bridge --from 2024-01 --to 2024-06
  mrr report kpis --period quarter --json
  mrr report bridge --from 2024-03 --to 2024-03 --known-at 2024-04-03T00:00:00Z
  mrr report restatements --period month --from 2024-01 --to 2024-12
  mrr report customer --customer cus_123 --as-of 2024-03-31T23:59:59Z
  mrr report kpis --csv --out kpis.csv --chart kpis.png
  mrr report cohorts --from 2024-01 --chart cohorts.png
  mrr report segments --by attribute:country --top 5
  mrr report unit-economics --ltv-window 3 --json
"""


@dataclass
class ReportOptions:
    """The options every report subcommand shares."""

    period: str
    from_: str | None
    to: str | None
    customer: str | None
    as_of: dt.datetime | None
    known_at: dt.datetime | None
    as_json: bool
    flags: dict[str, Any]
    as_csv: bool = False
    out: str | None = None


def report_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a subcommand with the shared options; it receives one `opts: ReportOptions`."""
    options = [
        click.option("--period", type=click.Choice(PERIOD_CHOICES), default="month", show_default=True,
                     help="Period length (UTC)."),
        click.option("--from", "from_", metavar="LABEL|DATE", help="First period (inclusive). Default: first with data."),
        click.option("--to", metavar="LABEL|DATE", help="Last period (inclusive). Default: the one containing --as-of."),
        click.option("--customer", metavar="ID", help="Only this customer."),
        click.option("--as-of", callback=_instant, metavar="RFC3339", help="Business instant (default now)."),
        click.option("--known-at", callback=_instant, metavar="RFC3339",
                     help="Recorded instant: report as known then (default now)."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output (MRR_SPEC.md §7)."),
        click.option("--csv", "as_csv", is_flag=True,
                     help="The report's rows as CSV (money in major units, ratios with 4 places, null empty)."),
        click.option("--out", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Write the --json or --csv output to FILE instead of stdout."),
        click.option("--data-dir", help="Embedded ledger and SQLite projections [MRR_DATA_DIR]."),
        click.option("--database-url", help="Projection database URL [MRR_DATABASE_URL]."),
        click.option("--reporting-currency", metavar="ISO4217", help="Reporting currency [USD]."),
        click.option("--churn-recognition", type=click.Choice(["at_period_end", "on_request"]),
                     help="When a cancellation churns [at_period_end]."),
        click.option("--past-due-grace-days", type=click.IntRange(min=0),
                     help="Auto-churn past-due subscriptions after N days [never]."),
        click.option("--once-discounts-reduce-mrr/--no-once-discounts-reduce-mrr", default=None,
                     help="Whether `once` discounts reduce MRR [no]."),
        click.option("--classification-window-seconds", type=click.IntRange(min=0),
                     help="Events this close yield one movement [0]."),
    ]

    def wrapper(**kwargs: Any) -> Any:
        setting_names = ("data_dir", "database_url", "reporting_currency", "churn_recognition",
                         "past_due_grace_days", "once_discounts_reduce_mrr", "classification_window_seconds")
        opts = ReportOptions(
            period=kwargs.pop("period"), from_=kwargs.pop("from_"), to=kwargs.pop("to"),
            customer=kwargs.pop("customer"), as_of=kwargs.pop("as_of"), known_at=kwargs.pop("known_at"),
            as_json=kwargs.pop("as_json"), flags={k: kwargs.pop(k) for k in setting_names},
            as_csv=kwargs.pop("as_csv"), out=kwargs.pop("out"),
        )
        if opts.as_json and opts.as_csv:
            raise click.UsageError("choose one of --json and --csv")
        if opts.out and not (opts.as_json or opts.as_csv):
            raise click.UsageError("--out needs --json or --csv")
        return fn(opts, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def run_report(opts: ReportOptions, query: Callable[..., Any]) -> Any:
    """Run `query(conn, scope, currency)` on up-to-date projections; map errors to click's."""
    import asyncio

    from streams.config import load_config

    try:
        config = load_config(opts.flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        return asyncio.run(_run(config, opts, query))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except (AssertionError, RuntimeError) as exc:
        # imbalance, settings mismatch, schema not at the Alembic head: loud, exit 1
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the projection database does not answer
        raise click.ClickException(f"projection database: {exc}") from None


async def _run(config: Any, opts: ReportOptions, query: Callable[..., Any]) -> Any:
    from projections.queries import Scope
    from streams.bootstrap import ensure_settings, ledger_path, open_store, project_pending

    now = dt.datetime.now(dt.timezone.utc)
    scope = Scope(as_of=opts.as_of or now, known_at=opts.known_at or now, customer_id=opts.customer)
    store = await open_store(config)
    try:
        if not config.kafka_bootstrap and ledger_path(config).exists():
            await project_pending(config, store=store)  # catch up with the embedded ledger
        else:  # Kafka: the worker projects; never read the embedded ledger
            await ensure_settings(store, config)
        return await store.read(query, scope, config.reporting_currency)
    finally:
        await store.close()


def emit(opts: ReportOptions, payload: dict[str, Any], human: Callable[[], None],
         csv_rows: list[dict[str, Any]] | None = None) -> None:
    """Print JSON, CSV (`csv_rows`, default the payload's `rows`) or call the human renderer;
    with `--out` the JSON or CSV goes to that file."""
    if not (opts.as_json or opts.as_csv):
        human()
        return
    if opts.as_json:
        text = json.dumps(payload, indent=2) + "\n"
    else:
        text = to_csv(payload.get("rows", []) if csv_rows is None else csv_rows)
    if opts.out:
        from pathlib import Path

        Path(opts.out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {opts.out}", err=True)
    else:
        click.echo(text, nl=False)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return value


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested object becomes one column per key: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Dict rows as CSV with a header (columns in first-seen order); nested objects flattened to
    `key.subkey` columns, lists `;`-joined, null empty. No rows: empty output."""
    import csv
    import io

    rows = [_flat(row) for row in rows]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    if not columns:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def chart_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--chart FILE.png` (the subcommand receives `chart: str | None`); use above `report_options`."""
    return click.option("--chart", type=click.Path(dir_okay=False), metavar="FILE.png",
                        help="Also write a PNG chart of the report to FILE.png.")(fn)


def write_chart(chart: str | None, draw: Callable[[str], Any]) -> None:
    """Call `draw(path)` when `--chart` was given and say where the PNG went (on stderr, so that
    --json/--csv on stdout stay clean)."""
    if chart:
        draw(chart)
        click.echo(f"chart written to {chart}", err=True)


@click.group("report", epilog=_EPILOG)
def command() -> None:
    """MRR reports: bridge, snapshot, kpis, movements, customer, restatements; analytics: cohorts,
    segments, unit-economics (and `mrr forecast`, `mrr simulate price`).

    Money is in the reporting currency (converted per MRR_SPEC.md §2). With --json, money is a
    decimal string in major units ("166.67") and ratios are decimal strings with 4 places
    (0.0525 = 5.25 %), null when undefined; --csv prints the rows as CSV in the same units.
    See docs/reports.md and docs/analytics.md.
    """


@command.command("bridge", epilog=_EPILOG)
@chart_option
@report_options
def bridge_command(opts: ReportOptions, chart: str | None) -> None:
    """Opening MRR, movements by type, FX impact and closing MRR per period.

    Opening is the MRR in force just before the period starts, closing just before it ends (or
    at --as-of for the current period); opening + movements + fx_impact = closing always.
    --chart draws closing MRR, the movements of each period, and a waterfall of the range
    (opening MRR, each movement type, FX impact, closing MRR).
    """
    from projections.queries import bridge, bridge_json, resolve_periods

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        rows = bridge(conn, resolve_periods(conn, opts.period, scope, opts.from_, opts.to), scope)
        return bridge_json(rows, currency, opts.period, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.bridge(payload))
    write_chart(chart, lambda path: _charts().bridge_waterfall(payload["rows"], payload["currency"], path))


@command.command("snapshot", epilog=_EPILOG)
@report_options
def snapshot_command(opts: ReportOptions) -> None:
    """Per customer per period: MRR at period end and its category against the previous end.

    Categories: new_business, expansion, contraction, churn, reactivation, or empty when
    unchanged. Rows run from a customer's first period with MRR through its churn period.
    """
    from projections.queries import resolve_periods, snapshot, snapshot_json

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        history = resolve_periods(conn, opts.period, scope, None, opts.to)
        output = resolve_periods(conn, opts.period, scope, opts.from_, opts.to) if opts.from_ else history
        return snapshot_json(snapshot(conn, history, scope, output), currency, opts.period, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.snapshot(payload))


@command.command("kpis", epilog=_EPILOG)
@chart_option
@report_options
def kpis_command(opts: ReportOptions, chart: str | None) -> None:
    """SaaS KPIs per period: MRR, ARR, customers, ARPA, churn rates, NRR, GRR, quick ratio,
    growth, LTV, CAC, LTV:CAC, CAC payback. A ratio with a zero denominator is null.
    --chart draws MRR (and ARR) and customers (with new and churned) over time."""
    from projections.queries import bridge, kpis, kpis_json, resolve_periods

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        rows = bridge(conn, resolve_periods(conn, opts.period, scope, opts.from_, opts.to), scope)
        return kpis_json(kpis(conn, rows, scope, currency), currency, opts.period, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.kpis(payload))
    write_chart(chart, lambda path: _charts().mrr_and_customers(payload["rows"], payload["currency"], path))


@command.command("movements", epilog=_EPILOG)
@report_options
def movements_command(opts: ReportOptions) -> None:
    """Every MRR movement (new_business, expansion, contraction, churn, reactivation) with the
    events that caused it and when it was recorded. Without --from/--to: all history."""
    from projections.queries import movements, movements_json, resolve_periods

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        periods = resolve_periods(conn, opts.period, scope, opts.from_, opts.to) if (opts.from_ or opts.to) else None
        if periods == []:
            return movements_json([], currency, scope)
        return movements_json(movements(conn, scope, periods), currency, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.movements(payload))


@command.command("restatements", epilog=_EPILOG)
@report_options
def restatements_command(opts: ReportOptions) -> None:
    """Closed periods whose bridge changed after they closed, and the late events that caused it.

    A period is closed at its end (recorded time). For each period closed by --known-at (default
    now), its bridge as known at its end is compared with the bridge as known at --known-at;
    periods that differ are listed with the change of opening MRR, each movement type, FX impact
    and closing MRR, and the events (or FX rates) recorded after the close that changed it.
    """
    from projections.queries import resolve_periods
    from projections.queries.restatements import csv_rows, restatements, restatements_json

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        periods = resolve_periods(conn, opts.period, scope, opts.from_, opts.to)
        return restatements_json(restatements(conn, periods, scope), currency, opts.period, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.restatements(payload), csv_rows=csv_rows(payload))


@command.command("customer", epilog=_EPILOG)
@report_options
def customer_command(opts: ReportOptions) -> None:
    """One customer at --as-of: MRR, subscriptions in force (reporting and native currency) and
    attributes. Needs --customer."""
    from projections.queries import customer, customer_json

    if not opts.customer:
        raise click.UsageError("mrr report customer needs --customer ID")

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        return customer_json(customer(conn, scope), currency, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.customer(payload), csv_rows=payload["subscriptions"])


class _LazyRender:
    """Imports the rich renderers only when human output is printed."""

    def __getattr__(self, name: str) -> Any:
        from streams.cli import _report_render

        return getattr(_report_render, name)


_render = _LazyRender()


def _charts() -> Any:
    from projections import charts

    return charts


from streams.cli import report_analytics  # noqa: E402,F401  (registers cohorts, segments, unit-economics)
