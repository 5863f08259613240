"""`mrr simulate price`: a hypothetical price change run through the MRR engine.

Shares `mrr report`'s options, runner and JSON conventions (`streams.cli.report`). The rules are
in `projections.analytics.simulate` and docs/analytics.md; every run prints them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from streams.cli.report import ReportOptions, emit, report_options, run_report, write_chart

_EPILOG = """\b
How it works (docs/analytics.md, Price-change simulation):
  The events of every customer with an item priced --plan are read from
  the projections (as known at --known-at), changed, and run through the
  MRR engine again; the result is compared with the stored projection.
  - every item with price_id P: unit_amount x (1 + change), rounded
    half-even to the minor unit (per unit price);
  - subscriptions with that price before --from get the new price at
    --from; terms events from --from on carry the new price;
  - --churn-uplift U: each month from --from, floor(U x n + carry) of the
    n repriced subscriptions still paying cancel at the month's start,
    in SHA-256 order of the subscription id (fractions carried);
  - nothing else changes: months after the last known event show the
    current book rolled forward (no new business, no other churn).
  +0% reproduces the current projection exactly.

\b
Output: the assumptions, the MRR impact by month (baseline, simulated,
difference, movements) and the segments that change; --json adds every
segment; --csv writes the monthly totals (dimension and segment "(total)")
then every segment's months; --chart draws baseline and simulated MRR and
the monthly difference.

\b
Examples:
  mrr simulate price --plan pro --change +10%
  mrr simulate price --plan pro --change +10% --churn-uplift 2% --from 2025-02-01
  mrr simulate price --plan basic --change -5% --months 6 --json
"""


@click.group("simulate")
def command() -> None:
    """What-if simulations run through the MRR engine (not spreadsheet formulas)."""


@command.command("price", epilog=_EPILOG)
@click.option("--plan", required=True, metavar="PRICE_ID", help="The price id whose unit amount changes.")
@click.option("--change", required=True, metavar="+N%", help="Price change, e.g. +10% or -5%.")
@click.option("--churn-uplift", default="0%", show_default=True, metavar="N%",
              help="Extra monthly churn of the repriced subscriptions.")
@click.option("--months", type=click.IntRange(min=1, max=120), default=12, show_default=True,
              help="Months reported, from the month of --from.")
@click.option("--chart", type=click.Path(dir_okay=False), metavar="FILE.png",
              help="Also write a PNG chart (baseline and simulated MRR, difference).")
@report_options
def price_command(opts: ReportOptions, plan: str, change: str, churn_uplift: str, months: int,
                  chart: str | None) -> None:
    """Apply a hypothetical price change to the current subscriptions and report the MRR impact
    by month and by segment (plan, currency, billing interval), with the assumptions."""
    from projections.analytics.simulate import PriceChange, parse_percent, simulate, simulation_json

    if opts.period != "month":
        raise click.UsageError("mrr simulate works on months only (--period month)")
    if opts.to:
        raise click.UsageError("mrr simulate reports --months months from --from; --to is not used")
    try:
        change_value = parse_percent(change, "--change")
        uplift = parse_percent(churn_uplift, "--churn-uplift")
        start = _start(opts.from_)
        PriceChange(plan, change_value, start or dt.datetime.now(dt.timezone.utc), months, uplift)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        first = start or _next_month(scope.as_of)
        scenario = PriceChange(plan, change_value, first, months, uplift)
        return simulation_json(simulate(conn, scope, scenario, currency), currency, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render(payload), csv_rows=csv_rows(payload))
    write_chart(chart, lambda path: _chart().simulation_chart(payload, path))


def _chart() -> Any:
    from projections.analytics import forecast_chart

    return forecast_chart


def csv_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The monthly totals (dimension and segment `(total)`), then every segment's months."""
    return ([{"period": r["period"], "dimension": "(total)", "segment": "(total)", **r} for r in payload["rows"]]
            + [{"period": r["period"], "dimension": g["dimension"], "segment": g["segment"], **r}
               for g in payload["segments"] for r in g["rows"]])


def _start(text: str | None) -> dt.datetime | None:
    """`--from`: an RFC 3339 instant, or a date/label meaning its first instant (UTC)."""
    if text is None:
        return None
    from projections.periods import parse_instant, parse_label

    return parse_instant(text) if "T" in text else parse_label(text).start


def _next_month(instant: dt.datetime) -> dt.datetime:
    from projections.periods import next_period, period_of

    return next_period(period_of("month", instant)).start


def _render(payload: dict[str, Any]) -> None:
    from streams.cli._report_render import _console, _table, _title

    s = payload["scenario"]
    _console.print(f"[bold]Price change[/bold] {s['plan']}: {_pct(s['change'])} from {s['from']}, "
                   f"churn uplift {_pct(s['churn_uplift'])} a month. Assumptions:")
    for assumption in payload["assumptions"]:
        _console.print(f"  - {assumption}")
    rows = payload["rows"]
    moving = [k for k in ("new_business", "expansion", "contraction", "churn", "reactivation")
              if any(r["movements_difference"][k] not in ("0.00", "0") for r in rows)]
    _table(_title(payload, "MRR impact by month"),
           ("month", "baseline MRR", "simulated MRR", "difference", "difference %", *(f"Δ {k}" for k in moving),
            "uplift cancels"),
           ([r["period"], r["baseline_mrr"], r["simulated_mrr"], r["difference"], _pct(r["difference_pct"]),
             *(r["movements_difference"][k] for k in moving), r["uplift_cancellations"]] for r in rows))
    changed = [g for g in payload["segments"] if any(r["difference"] not in ("0.00", "0") for r in g["rows"])]
    if rows and changed:
        last = rows[-1]["period"]
        _table(f"Segments that change, at the end of {last}",
               ("dimension", "segment", "baseline MRR", "simulated MRR", "difference"),
               ([g["dimension"], g["segment"], g["rows"][-1]["baseline_mrr"], g["rows"][-1]["simulated_mrr"],
                 g["rows"][-1]["difference"]] for g in changed), numeric_from=2)
    if len(changed) < len(payload["segments"]):
        _console.print(f"[dim]{len(payload['segments']) - len(changed)} other segment(s) of plan, currency and "
                       "billing interval do not change (all in --json).[/dim]")
    _console.print(f"[dim]{payload['customers_recomputed']} customer(s) recomputed, "
                   f"{payload['repriced_subscriptions']} subscription(s) repriced at the change.[/dim]")
    for warning in payload["warnings"]:
        _console.print(f"[yellow]{warning}[/yellow]")


def _pct(value: str | None) -> str:
    if value is None:
        return "n/a"
    from decimal import Decimal

    return f"{Decimal(value) * 100:+.2f} %"


def _adjust_options(cmd: click.Command) -> None:
    """Months only, and `--from` means when the new price takes effect."""
    for param in cmd.params:
        if param.name in ("period", "to") and isinstance(param, click.Option):
            param.hidden = True
        if param.name == "from_" and isinstance(param, click.Option):
            param.help = ("When the new price takes effect: a date, a month or an RFC 3339 instant "
                          "(default: the 1st of the month after --as-of).")


_adjust_options(price_command)
