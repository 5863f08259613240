"""`mrr forecast`: MRR for the next N months from trailing movement rates, with a band and a backtest.

Shares `mrr report`'s options, runner and JSON conventions (`streams.cli.report`): the input is
the monthly bridge as of `--as-of` and known at `--known-at`, on either projection store. The
method is in `projections.analytics.forecast` and docs/analytics.md (section Forecast).
"""

from __future__ import annotations

from typing import Any

import click

from streams.cli.report import ReportOptions, emit, report_options, run_report, write_chart

_EPILOG = """\b
Method (docs/analytics.md, Forecast):
  rates over the last --window complete months of the monthly bridge:
    new business, reactivation   average MRR added per month
    expansion, contraction,      sum of the movement / sum of opening MRR
    churn                        (opening-weighted average of monthly rates)
  each forecast month: opening x rates + new + reactivation, every
  movement rounded half up to the minor unit; FX impact assumed 0.
  low/high band: the same with every rate one sample standard deviation
  of its monthly values worse / better (a scenario, not a probability).
  A rate whose denominator is 0 is null and projected as 0 (warned).

\b
--to is the jump-off month (default: the last complete month before
--as-of); --from limits the history read. --backtest forecasts from every
past month with a full window behind it and reports the error against what
happened (MAPE, bias, band coverage by horizon).

\b
Output: tables of the rates and the forecast (or the backtest); --json adds
each rate's monthly values and the history read; --csv writes the forecast
months (with --backtest, every forecast point); --chart draws the actual MRR,
the forecast and its band (or the backtest's forecasts and errors).

\b
Examples:
  mrr forecast --months 12
  mrr forecast --months 6 --window 3 --json
  mrr forecast --chart forecast.png
  mrr forecast --backtest --months 3
"""


@click.command("forecast", epilog=_EPILOG)
@click.option("--months", type=click.IntRange(min=1, max=120), default=12, show_default=True,
              help="Months to forecast after the jump-off month.")
@click.option("--window", type=click.IntRange(min=1, max=120), default=6, show_default=True,
              help="Trailing complete months the rates are measured over.")
@click.option("--backtest", is_flag=True, help="Forecast from past months and report the error.")
@click.option("--chart", type=click.Path(dir_okay=False), metavar="FILE.png",
              help="Also write a PNG chart (actuals, forecast and band).")
@report_options
def command(opts: ReportOptions, months: int, window: int, backtest: bool, chart: str | None) -> None:
    """Forecast monthly MRR from trailing rates of new business, expansion, contraction, churn and
    reactivation, each rate shown, with a low/high band from their month-to-month variation."""
    if opts.period != "month":
        raise click.UsageError("mrr forecast works on months only (--period month)")
    from projections.analytics import forecast as fc

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        if backtest:
            return fc.backtest_json(fc.backtest(conn, scope, months, window, opts.from_, opts.to), currency, scope)
        return fc.forecast_json(fc.forecast(conn, scope, months, window, opts.from_, opts.to),
                                currency, scope, months, window)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: (_render_backtest if backtest else _render_forecast)(payload))
    write_chart(chart, lambda path: _chart(payload, backtest, path))


def _chart(payload: dict[str, Any], backtest: bool, path: str) -> None:
    from projections.analytics.forecast_chart import backtest_chart, forecast_chart

    (backtest_chart if backtest else forecast_chart)(payload, path)


_RATE_LABELS = {
    "new_business": ("new business", "average per month"),
    "expansion_rate": ("expansion", "of opening MRR"),
    "contraction_rate": ("contraction", "of opening MRR"),
    "churn_rate": ("churn", "of opening MRR"),
    "reactivation": ("reactivation", "average per month"),
}


def _render_forecast(payload: dict[str, Any]) -> None:
    from streams.cli._report_render import _console, _table, _title

    rates = payload["rates"]
    method = payload["method"]
    window = method["window"]
    _table(f"Trailing rates over {len(window)} month(s) {window[0]} .. {window[-1]}",
           ("rate", "per", "value", "spread (1 sd)", "low", "high"),
           ([label, per, r["value"], r["spread"], r["low"], r["high"]]
            for name, (label, per) in _RATE_LABELS.items() for r in [rates[name]]), numeric_from=2)
    _table(_title(payload, f"MRR forecast from {payload['jump_off']}"),
           ("month", "opening", "new", "expansion", "contraction", "churn", "reactivation", "closing",
            "low", "high"),
           ([r["period"], r["opening_mrr"], r["new_business"], r["expansion"], r["contraction"], r["churn"],
             r["reactivation"], r["closing_mrr"], r["low"], r["high"]] for r in payload["rows"]))
    _console.print("[dim]Rates are fractions of opening MRR (0.0250 = 2.5 %) or money per month. "
                   "Band: every rate one sample standard deviation worse/better; FX impact assumed 0.[/dim]")
    for warning in payload["warnings"]:
        _console.print(f"[yellow]{warning}[/yellow]")


def _render_backtest(payload: dict[str, Any]) -> None:
    from streams.cli._report_render import _console, _table, _title

    _table(_title(payload, f"Forecast backtest, {payload['method']['window_months']}-month window"),
           ("horizon (months)", "forecasts", "MAPE", "bias", "mean abs. error", "band coverage"),
           ([s["horizon"], s["forecasts"], s["mape"], s["bias"], s["mean_absolute_error"], s["band_coverage"]]
            for s in payload["summary"]))
    last = [r for r in payload["rows"] if r["horizon"] == 1][-12:]
    if last:
        _table("One-month-ahead forecasts (latest 12)",
               ("made at", "month", "forecast", "actual", "error", "% error", "in band"),
               ([r["origin"], r["period"], r["forecast_mrr"], r["actual_mrr"], r["error"], r["pct_error"],
                 {True: "yes", False: "no", None: ""}[r["within_band"]]] for r in last), numeric_from=2)
    _console.print("[dim]MAPE: mean |forecast - actual| / actual; bias: mean signed % error (negative: "
                   "forecasts too low); band coverage: share of actuals inside the low/high band.[/dim]")


def _hide_period(cmd: click.Command) -> None:
    """Forecasts are monthly: keep the shared `--period` option (default month) out of --help, and
    say what `--from` and `--to` mean here."""
    helps = {"from_": "First month of history read (default: the first with data).",
             "to": "Jump-off month: the last actual month (default: the last complete one before --as-of)."}
    for param in cmd.params:
        if not isinstance(param, click.Option):
            continue
        if param.name == "period":
            param.hidden = True
        if param.name in helps:
            param.help = helps[param.name]


_hide_period(command)
