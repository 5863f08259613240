"""Forecast projection: the month-by-month recursion from the jump-off, its band and JSON form.

Part of the forecast (`projections.analytics.forecast` has the method); the rates come from
`projections.analytics.forecast_rates`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping, Sequence

from sqlalchemy import Connection

from projections.analytics.forecast_rates import MOVEMENTS, PROPORTIONAL, Rates, rates_json, trailing_rates
from projections.periods import Period, next_period
from projections.queries.bridge import BridgeRow, bridge
from projections.queries.common import Scope, report_envelope, resolve_periods
from projections.queries.money import format_major

DEFAULT_MONTHS = 12
DEFAULT_WINDOW = 6


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
    check_arguments(months, window)
    return forecast_from(complete_months(conn, scope, from_, to), months, window)


def check_arguments(months: int, window: int) -> None:
    """Reject a horizon or window under one month (the CLI's `--months` / `--window`)."""
    if months < 1 or window < 1:
        raise ValueError("--months and --window must be at least 1")


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
