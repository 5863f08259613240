"""Forecast backtest: forecasts made at past months compared with the actuals that followed.

Part of the forecast (`projections.analytics.forecast` has the method); each forecast is made by
`projections.analytics.forecast_projection.forecast_from`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from sqlalchemy import Connection

from projections.analytics.forecast_projection import (
    DEFAULT_MONTHS,
    DEFAULT_WINDOW,
    ForecastRow,
    check_arguments,
    complete_months,
    forecast_from,
)
from projections.analytics.forecast_rates import Rates, rates_json
from projections.periods import Period
from projections.queries.bridge import BridgeRow
from projections.queries.common import Scope, report_envelope
from projections.queries.money import format_major, format_ratio, ratio


@dataclass(frozen=True)
class BacktestPoint:
    origin: Period
    horizon: int
    row: ForecastRow
    actual: int

    @property
    def error(self) -> int:
        return self.row.step.closing_mrr - self.actual

    @property
    def pct_error(self) -> Decimal | None:
        return ratio(self.error, self.actual)

    @property
    def within_band(self) -> bool | None:
        if self.row.low is None or self.row.high is None:
            return None
        return self.row.low <= self.actual <= self.row.high


@dataclass
class Backtest:
    window: int
    months: int
    origins: list[tuple[Period, Rates]]
    points: list[BacktestPoint]


def backtest_from(history: Sequence[BridgeRow], months: int, window: int) -> Backtest:
    """Forecasts made at every month with a full window behind it and a next month after it,
    each compared with the actual closing MRR of the months that followed (up to `months`)."""
    if len(history) < window + 1:
        raise ValueError(f"a backtest with a {window}-month window needs at least {window + 1} complete "
                         f"months of history; there are {len(history)}")
    result = Backtest(window, months, [], [])
    for i in range(window - 1, len(history) - 1):
        made = forecast_from(history[i - window + 1:i + 1], min(months, len(history) - 1 - i), window)
        result.origins.append((made.jump_off, made.rates))
        for h, row in enumerate(made.rows, 1):
            result.points.append(BacktestPoint(made.jump_off, h, row, history[i + h].closing_mrr))
    return result


def backtest(conn: Connection, scope: Scope, months: int = DEFAULT_MONTHS, window: int = DEFAULT_WINDOW,
             from_: str | None = None, to: str | None = None) -> Backtest:
    check_arguments(months, window)
    return backtest_from(complete_months(conn, scope, from_, to), months, window)


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    return sum(values, Decimal(0)) / len(values) if values else None


def summary(result: Backtest) -> list[dict[str, Any]]:
    """Per horizon: count, MAPE, bias (mean signed % error), mean absolute error, band coverage."""
    out = []
    for h in range(1, result.months + 1):
        points = [p for p in result.points if p.horizon == h]
        if not points:
            continue
        pct = [p.pct_error for p in points if p.pct_error is not None]
        inside = [p.within_band for p in points if p.within_band is not None]
        out.append({
            "horizon": h, "forecasts": len(points),
            "mape": _mean([abs(v) for v in pct]), "bias": _mean(pct),
            "mean_absolute_error": _mean([Decimal(abs(p.error)) for p in points]),
            "band_coverage": ratio(sum(inside), len(inside)),
        })
    return out


def backtest_json(result: Backtest, currency: str, scope: Scope) -> dict[str, Any]:
    rows = [{"origin": p.origin.label, "period": p.row.step.period.label, "horizon": p.horizon,
             "forecast_mrr": format_major(p.row.step.closing_mrr, currency),
             "actual_mrr": format_major(p.actual, currency), "error": format_major(p.error, currency),
             "pct_error": format_ratio(p.pct_error), "low": format_major(p.row.low, currency),
             "high": format_major(p.row.high, currency), "within_band": p.within_band}
            for p in result.points]
    return report_envelope(
        currency, "month", scope, rows, customer_id=scope.customer_id,
        method={"months": result.months, "window_months": result.window},
        summary=[{**s, "mape": format_ratio(s["mape"]), "bias": format_ratio(s["bias"]),
                  "mean_absolute_error": format_major(s["mean_absolute_error"], currency),
                  "band_coverage": format_ratio(s["band_coverage"])} for s in summary(result)],
        origins=[{"origin": o.label, "rates": rates_json(r, currency)} for o, r in result.origins])
