"""MRR forecast from trailing rates of the monthly bridge, with a scenario band and a backtest.

Method (docs/analytics.md, section Forecast, has it with a worked example):
- The input is the monthly MRR bridge (`projections.queries.bridge`) as of / known at the scope,
  over complete months only. The last complete month is the *jump-off*; its closing MRR is the
  first forecast month's opening MRR. The trailing *window* is the last W complete months.
- Rates over the window, exact Decimals:
  `new_business`, `reactivation`: average MRR added per month (money, minor units);
  `expansion_rate`, `contraction_rate`, `churn_rate`: Σ movement / Σ opening MRR (the
  opening-weighted average of the monthly rates), contraction and churn as positive fractions.
  A rate whose denominator is 0 is None (null); it is projected as 0 and named in `warnings`.
- Each forecast month: expansion = expansion_rate × opening, contraction and churn likewise
  (negative), plus the absolute new business and reactivation; each movement is rounded half up
  to the minor unit so every forecast row balances: opening + movements = closing. FX impact is
  assumed 0 (rates stay where they are).
- Band: the same recursion with every rate one sample standard deviation (of its monthly values
  in the window) worse (low) or better (high), floored at 0. It is a pessimistic/optimistic
  *scenario*, not a probability interval; the backtest reports how often actuals fell inside.
  Fewer than two defined monthly values of any rate: no band (null).

The code is split by job: `forecast_rates` (the trailing rates), `forecast_projection` (the
recursion, band and `forecast`) and `forecast_backtest` (the backtest and its summary); this
module re-exports their public names, so `projections.analytics.forecast` stays the entry point.
"""

from __future__ import annotations

from projections.analytics.forecast_backtest import (
    Backtest,
    BacktestPoint,
    backtest,
    backtest_from,
    backtest_json,
    summary,
)
from projections.analytics.forecast_projection import (
    DEFAULT_MONTHS,
    DEFAULT_WINDOW,
    Forecast,
    ForecastRow,
    Step,
    complete_months,
    forecast,
    forecast_from,
    forecast_json,
    project,
)
from projections.analytics.forecast_rates import (
    ABSOLUTE,
    MOVEMENTS,
    PROPORTIONAL,
    RATE_NAMES,
    Rate,
    Rates,
    rates_json,
    trailing_rates,
)

__all__ = [
    "ABSOLUTE", "DEFAULT_MONTHS", "DEFAULT_WINDOW", "MOVEMENTS", "PROPORTIONAL", "RATE_NAMES",
    "Backtest", "BacktestPoint", "Forecast", "ForecastRow", "Rate", "Rates", "Step",
    "backtest", "backtest_from", "backtest_json", "complete_months", "forecast", "forecast_from",
    "forecast_json", "project", "rates_json", "summary", "trailing_rates",
]
