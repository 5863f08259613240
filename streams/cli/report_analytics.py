"""`mrr report cohorts|segments|unit-economics`: the analytics of issue #8 (docs/analytics.md).

Registered on the `mrr report` group by `streams.cli.report` (which imports this module); they
share its options, runner, output (`--json`, `--csv`, `--out`) and `--chart`. The computation is
in `projections.analytics`; rendering in `streams.cli._report_render`.
"""

from __future__ import annotations

from typing import Any

import click

from streams.cli import report as _report
from streams.cli.report import ReportOptions, chart_option, emit, report_options, run_report, write_chart

_render = _report._render


def _charts() -> Any:
    from projections.analytics import charts

    return charts

_EPILOG = _report._EPILOG


@_report.command.command("cohorts", epilog=_EPILOG)
@chart_option
@report_options
def cohorts_command(opts: ReportOptions, chart: str | None) -> None:
    """Retention triangle: customers grouped by the period (default month) of their first
    new_business, measured at the end of each period since.

    \b
    cohort_customers   customers whose first new_business is in the cohort period
    starting_mrr       sum of their new_business MRR
    customers, mrr     cohort customers with MRR > 0 at the period end, their MRR
    logo_retention     customers / cohort_customers
    revenue_retention  mrr / starting_mrr (net: expansion, contraction and
                       reactivation included; can exceed 1)
    A cohort that fully churned shows 0. --from/--to select the cohorts; the
    triangle ends with --to (default: the period containing --as-of, measured
    at --as-of, complete=false). --csv: one line per cohort and age; --chart:
    heat maps of logo and revenue retention.
    """
    from projections.analytics.cohorts import cohorts, cohorts_json
    from projections.queries import resolve_periods

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        return cohorts_json(cohorts(conn, resolve_periods(conn, opts.period, scope, opts.from_, opts.to), scope),
                            currency, opts.period, scope)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.cohorts(payload))
    write_chart(chart, lambda path: _charts().cohort_heatmap(payload, path))


@_report.command.command("segments", epilog=_EPILOG)
@click.option("--by", "dimension", default="plan", show_default=True, metavar="DIMENSION",
              help="plan, currency, interval (billing interval) or attribute:KEY (a customer attribute).")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="Keep the N largest segments (closing MRR), merge the rest into (other); 0: all.")
@chart_option
@report_options
def segments_command(opts: ReportOptions, dimension: str, top: int, chart: str | None) -> None:
    """MRR bridge, customers and ARPA per period and segment, and the top movers.

    \b
    Each row: opening_mrr + new_business + expansion + contraction + churn
    + reactivation + moved_in + moved_out + fx_impact = closing_mrr.
    moved_in/moved_out: MRR that changed segment without being a movement (a
      plan switch, an attribute change); they net to 0 over all segments.
    customers: with MRR > 0 in the segment at the period end (one customer
      can be in several plan/currency/interval segments); arpa = MRR/customers.
    new/churned/reactivated_customers: customers whose movement of that type
      touched the segment.
    Summed over segments, every movement type equals the bridge.
    movers (JSON; human table): segments by |closing - opening| over the range.
    """
    from projections.analytics.segment_pieces import parse_dimension
    from projections.analytics.segments import segments, segments_json
    from projections.queries import resolve_periods

    try:
        canonical = parse_dimension(dimension)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        periods = resolve_periods(conn, opts.period, scope, opts.from_, opts.to)
        return segments_json(segments(conn, periods, scope, canonical, top), currency, opts.period, scope, top)

    payload = run_report(opts, query)
    emit(opts, payload, lambda: _render.segments(payload))
    write_chart(chart, lambda path: _charts().segment_mrr(payload, path))


@_report.command.command("unit-economics", epilog=_EPILOG)
@click.option("--ltv-window", type=click.IntRange(min=1, max=120), default=1, show_default=True,
              help="Periods of customer churn behind LTV (1: the period alone, as in `kpis`).")
@click.option("--channel-attribute", default="channel", show_default=True, metavar="KEY",
              help="Customer attribute naming the acquisition channel, for CAC by channel.")
@chart_option
@report_options
def unit_economics_command(opts: ReportOptions, ltv_window: int, channel_attribute: str, chart: str | None) -> None:
    """LTV, CAC (blended and by channel), LTV:CAC, CAC payback, retention and growth per period.

    \b
    arpa                       MRR / customers (period end)
    customer_churn_rate        churned customers / customers at start
    customer_churn_rate_window the same summed over the last --ltv-window periods
    ltv                        arpa / customer_churn_rate_window
    cac                        acquisition cost of the period's months / new customers
    ltv_cac                    ltv / cac
    cac_payback_months         cac / (new-business MRR / new customers)
    customer_retention_rate    customers active at both start and end / at start
    mrr_growth_rate            (closing - opening) / opening MRR
    channels: cost, new customers (by their channel attribute), CAC and payback
    per channel; CAC is null for day/week periods and when no cost is recorded.
    A ratio with a zero denominator is null. --csv: the period rows then the
    channel rows (column `channel`; `(all)` on the period rows).
    """
    from projections.analytics.unit_economics import unit_economics, unit_economics_json
    from projections.queries import resolve_periods

    def query(conn: Any, scope: Any, currency: str) -> dict[str, Any]:
        periods = resolve_periods(conn, opts.period, scope, opts.from_, opts.to)
        result = unit_economics(conn, periods, scope, currency, ltv_window, channel_attribute)
        return unit_economics_json(result, currency, opts.period, scope)

    payload = run_report(opts, query)
    csv_rows = [{"period": r["period"], "channel": "(all)", **r} for r in payload["rows"]] + payload["channels"]
    emit(opts, payload, lambda: _render.unit_economics(payload), csv_rows=csv_rows)
    write_chart(chart, lambda path: _charts().unit_economics_chart(payload, path))
