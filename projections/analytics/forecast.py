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
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection

from projections.periods import Period, next_period
from projections.queries.bridge import BridgeRow, bridge
from projections.queries.common import Scope, report_envelope, resolve_periods
from projections.queries.money import format_major, format_ratio, ratio

DEFAULT_MONTHS = 12
DEFAULT_WINDOW = 6
ABSOLUTE = ("new_business", "reactivation")
"""Rates in money per month (minor units), projected as they are."""
PROPORTIONAL = {"expansion_rate": ("expansion", 1), "contraction_rate": ("contraction", -1),
                "churn_rate": ("churn", -1)}
"""Rates as fractions of opening MRR: bridge column and the sign of the movement it yields."""
RATE_NAMES = ("new_business", "expansion_rate", "contraction_rate", "churn_rate", "reactivation")
_GOOD = {"new_business": 1, "reactivation": 1, "expansion_rate": 1, "contraction_rate": -1, "churn_rate": -1}
MOVEMENTS = ("new_business", "expansion", "contraction", "churn", "reactivation")


@dataclass(frozen=True)
class Rate:
    """One trailing rate: its value, the sample standard deviation of its monthly values, and
    those monthly values (None where the month's opening MRR is 0)."""

    name: str
    value: Decimal | None
    spread: Decimal | None
    monthly: tuple[tuple[str, Decimal | None], ...]

    def scenario(self, side: str) -> Decimal | None:
        """The rate in the `low` or `high` scenario: one spread worse / better, floored at 0."""
        if self.value is None or self.spread is None:
            return None
        sign = _GOOD[self.name] * (1 if side == "high" else -1)
        return max(Decimal(0), self.value + sign * self.spread)

    @property
    def is_money(self) -> bool:
        return self.name in ABSOLUTE


@dataclass(frozen=True)
class Rates:
    window: tuple[str, ...]
    rates: dict[str, Rate]

    def values(self, side: str = "point") -> dict[str, Decimal] | None:
        """Rates for the projection (None rates as 0); None when a band side is undefined."""
        if side == "point":
            return {n: r.value if r.value is not None else Decimal(0) for n, r in self.rates.items()}
        chosen = {n: r.scenario(side) for n, r in self.rates.items()}
        return None if any(v is None for v in chosen.values()) else chosen  # type: ignore[return-value]

    def warnings(self) -> list[str]:
        return [f"{name} is undefined (no opening MRR in the window): projected as 0"
                for name, rate in self.rates.items() if rate.value is None]


def _spread(values: Iterable[Decimal | None]) -> Decimal | None:
    defined = [v for v in values if v is not None]
    return statistics.stdev(defined) if len(defined) >= 2 else None


def trailing_rates(rows: Sequence[BridgeRow]) -> Rates:
    """The rates of the window `rows` (consecutive complete months)."""
    rates: dict[str, Rate] = {}
    labels = tuple(r.period.label for r in rows)
    opening = sum(r.opening_mrr for r in rows)
    for name in RATE_NAMES:
        if name in ABSOLUTE:
            monthly = [Decimal(getattr(r, name)) for r in rows]
            value = sum(monthly, Decimal(0)) / len(rows) if rows else None
        else:
            column, sign = PROPORTIONAL[name]
            monthly = [ratio(sign * getattr(r, column), r.opening_mrr) for r in rows]  # type: ignore[misc]
            value = ratio(sign * sum(getattr(r, column) for r in rows), opening)
        rates[name] = Rate(name, value, _spread(monthly), tuple(zip(labels, monthly)))
    return Rates(labels, rates)


def _round(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Step:
    """One projected month, minor units; contraction and churn negative."""

    period: Period
    opening_mrr: int
    new_business: int
    expansion: int
    contraction: int
    churn: int
    reactivation: int

    @property
    def closing_mrr(self) -> int:
        return self.opening_mrr + sum(getattr(self, m) for m in MOVEMENTS)


def project(opening: int, values: Mapping[str, Decimal], periods: Sequence[Period]) -> list[Step]:
    """Apply `values` month after month from `opening`. Churn never takes MRR below 0: if the
    losses would exceed what there is, churn is cut so that closing is 0."""
    steps = []
    for period in periods:
        moves = {"new_business": _round(values["new_business"]), "reactivation": _round(values["reactivation"])}
        for name, (column, sign) in PROPORTIONAL.items():
            moves[column] = sign * _round(values[name] * opening)
        closing = opening + sum(moves.values())
        if closing < 0:
            moves["churn"] -= closing
        step = Step(period, opening, **moves)
        steps.append(step)
        opening = step.closing_mrr
    return steps


@dataclass
class ForecastRow:
    step: Step
    low: int | None
    high: int | None


@dataclass
class Forecast:
    jump_off: Period
    rates: Rates
    history: list[BridgeRow]
    rows: list[ForecastRow]
    warnings: list[str] = field(default_factory=list)


def forecast_from(history: Sequence[BridgeRow], months: int, window: int) -> Forecast:
    """Forecast `months` months after the last row of `history` from its last `window` rows."""
    if not history:
        raise ValueError("no complete month of MRR history to forecast from")
    rates = trailing_rates(history[-window:])
    periods = _following(history[-1].period, months)
    opening = history[-1].closing_mrr
    point = project(opening, rates.values(), periods)
    band = {side: rates.values(side) for side in ("low", "high")}
    paths = {side: None if v is None else project(opening, v, periods) for side, v in band.items()}
    rows = [ForecastRow(step, *(None if paths[s] is None else paths[s][i].closing_mrr for s in ("low", "high")))  # type: ignore[index]
            for i, step in enumerate(point)]
    warnings = rates.warnings()
    if band["low"] is None:
        warnings.append("no band: some rate has fewer than two months with a defined value in the window")
    return Forecast(history[-1].period, rates, list(history), rows, warnings)


def _following(period: Period, months: int) -> list[Period]:
    result = []
    for _ in range(months):
        period = next_period(period)
        result.append(period)
    return result


def complete_months(conn: Connection, scope: Scope, from_: str | None, to: str | None) -> list[BridgeRow]:
    """Bridge rows of the complete months in `--from`..`--to` (a month cut by `as_of` is not)."""
    periods = [p for p in resolve_periods(conn, "month", scope, from_, to) if scope.end_of(p) == p.end]
    return bridge(conn, periods, scope)


def forecast(conn: Connection, scope: Scope, months: int = DEFAULT_MONTHS, window: int = DEFAULT_WINDOW,
             from_: str | None = None, to: str | None = None) -> Forecast:
    """The forecast from the last complete month in `--to` (default: the last before `as_of`)."""
    _check(months, window)
    return forecast_from(complete_months(conn, scope, from_, to), months, window)


def _check(months: int, window: int) -> None:
    if months < 1 or window < 1:
        raise ValueError("--months and --window must be at least 1")


# --- backtest ----------------------------------------------------------------------------------
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
    _check(months, window)
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


# --- JSON ----------------------------------------------------------------------------------------
def rates_json(rates: Rates, currency: str) -> dict[str, Any]:
    def fmt(rate: Rate, value: Decimal | None) -> str | None:
        return format_major(value, currency) if rate.is_money else format_ratio(value)

    return {name: {"value": fmt(r, r.value), "spread": fmt(r, r.spread), "low": fmt(r, r.scenario("low")),
                   "high": fmt(r, r.scenario("high")), "unit": currency if r.is_money else "fraction of opening MRR",
                   "monthly": [{"period": p, "value": fmt(r, v)} for p, v in r.monthly]}
            for name, r in rates.rates.items()}


def _row_json(row: ForecastRow, currency: str) -> dict[str, Any]:
    s = row.step
    return {"period": s.period.label, "opening_mrr": format_major(s.opening_mrr, currency),
            **{m: format_major(getattr(s, m), currency) for m in MOVEMENTS},
            "fx_impact": format_major(0, currency), "closing_mrr": format_major(s.closing_mrr, currency),
            "low": format_major(row.low, currency), "high": format_major(row.high, currency)}


def forecast_json(result: Forecast, currency: str, scope: Scope, months: int, window: int) -> dict[str, Any]:
    return report_envelope(
        currency, "month", scope, [_row_json(r, currency) for r in result.rows],
        customer_id=scope.customer_id, jump_off=result.jump_off.label,
        method={"months": months, "window_months": window, "window": list(result.rates.window),
                "band": "every rate one sample standard deviation worse (low) / better (high)",
                "fx_impact": "assumed 0"},
        rates=rates_json(result.rates, currency), warnings=result.warnings,
        history=[{"period": r.period.label, "opening_mrr": format_major(r.opening_mrr, currency),
                  **{m: format_major(getattr(r, m), currency) for m in MOVEMENTS},
                  "fx_impact": format_major(r.fx_impact, currency),
                  "closing_mrr": format_major(r.closing_mrr, currency)} for r in result.history])


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
