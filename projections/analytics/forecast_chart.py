"""PNG charts of `mrr forecast` (matplotlib, Agg): the forecast with its band, and the backtest.

Both take the `--json` payload of the command (money as decimal strings in major units); floats
appear only here, at the plotting step. Axis helpers come from `projections.charts`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Sequence

from projections.charts import _money_axis, _period_axis, _pyplot, _save, _symbol

HISTORY_SHOWN = 24
"""Actual months drawn before the forecast (older ones would squeeze the forecast)."""
ACTUAL, FORECAST, BAND = "#1e88e5", "#e65100", "#ffb74d"


def _f(value: Any) -> float:
    return float(Decimal(str(value)))


def _pct(value: str | None) -> str:
    return "n/a" if value is None else f"{Decimal(value) * 100:.2f} %"


def _rates_text(rates: Mapping[str, Any], currency: str) -> str:
    symbol = _symbol(currency)

    def money(value: str | None) -> str:
        return "n/a" if value is None else f"{symbol}{_f(value):,.0f}"

    return "\n".join([
        "Trailing rates per month",
        f"new business  {money(rates['new_business']['value'])}",
        f"expansion     {_pct(rates['expansion_rate']['value'])} of MRR",
        f"contraction   {_pct(rates['contraction_rate']['value'])} of MRR",
        f"churn         {_pct(rates['churn_rate']['value'])} of MRR",
        f"reactivation  {money(rates['reactivation']['value'])}",
    ])


def forecast_chart(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Actual closing MRR, the forecast line from the jump-off month and its low/high band."""
    plt = _pyplot()
    currency = payload["currency"]
    history: Sequence[Mapping[str, Any]] = payload["history"][-HISTORY_SHOWN:]
    rows: Sequence[Mapping[str, Any]] = payload["rows"]
    labels = [r["period"] for r in history] + [r["period"] for r in rows]
    actual = [_f(r["closing_mrr"]) for r in history]
    jump = len(history) - 1
    fig, axis = plt.subplots(figsize=(12, 6))
    axis.plot(range(len(actual)), actual, color=ACTUAL, marker="o", markersize=3, linewidth=2,
              label="Actual closing MRR")
    fx = list(range(jump, len(labels)))
    start = actual[-1:] if actual else []
    axis.plot(fx, start + [_f(r["closing_mrr"]) for r in rows], color=FORECAST, linestyle="--", marker="o",
              markersize=3, linewidth=2, label="Forecast")
    if rows and rows[0]["low"] is not None:
        low = start + [_f(r["low"]) for r in rows]
        high = start + [_f(r["high"]) for r in rows]
        axis.fill_between(fx, low, high, color=BAND, alpha=0.35, linewidth=0,
                          label="Low/high band (rates ± 1 sample sd)")
    if actual:
        axis.axvline(jump, color="grey", linestyle=":", linewidth=1)
        axis.annotate(f"jump-off {payload['jump_off']}", (jump, 1), xytext=(4, -4), textcoords="offset points",
                      xycoords=("data", "axes fraction"), va="top", fontsize=8, color="grey")
    if rows:
        last = rows[-1]
        axis.annotate(f"{_symbol(currency)}{_f(last['closing_mrr']):,.0f}", (len(labels) - 1, _f(last["closing_mrr"])),
                      xytext=(-6, 8), textcoords="offset points", ha="right", fontsize=9, color=FORECAST)
    axis.text(0.01, 0.98, _rates_text(payload["rates"], currency), transform=axis.transAxes, va="top",
              ha="left", family="monospace", fontsize=8,
              bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9})
    axis.set_ylim(bottom=0)
    _money_axis(axis, currency)
    axis.set_ylabel(f"MRR per month, {currency}")
    axis.set_xlabel("Month (UTC)")
    _period_axis(axis, labels)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(loc="best", fontsize=9, frameon=True, framealpha=0.9)  # "best" avoids lines, band and texts
    method = payload["method"]
    axis.set_title(f"MRR forecast ({currency}): {method['months']} months from {payload['jump_off']}, "
                   f"rates of the last {len(method['window'])} month(s)", fontsize=13, fontweight="bold")
    return _save(fig, plt, path)


def backtest_chart(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Top: actual MRR and the one-month-ahead forecasts with their band. Bottom: % error by
    month for the shortest and the longest horizon."""
    plt = _pyplot()
    currency = payload["currency"]
    rows = payload["rows"]
    months = sorted({r["period"] for r in rows})
    index = {label: i for i, label in enumerate(months)}
    actual = {r["period"]: _f(r["actual_mrr"]) for r in rows}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    shown = sorted(actual)
    top.plot([index[m] for m in shown], [actual[m] for m in shown], color=ACTUAL, marker="o", markersize=3,
             linewidth=2, zorder=3, label="Actual closing MRR")
    one = [r for r in rows if r["horizon"] == 1]
    xs = [index[r["period"]] for r in one]
    point = [_f(r["forecast_mrr"]) for r in one]
    banded = [r for r in one if r["low"] is not None]
    if banded:
        centre = [_f(r["forecast_mrr"]) for r in banded]
        top.errorbar([index[r["period"]] for r in banded], centre,
                     yerr=[[c - _f(r["low"]) for c, r in zip(centre, banded)],
                           [_f(r["high"]) - c for c, r in zip(centre, banded)]],
                     fmt="none", ecolor=BAND, elinewidth=6, alpha=0.7, zorder=1, label="Band of that forecast")
    top.plot(xs, point, color=FORECAST, marker="x", linestyle="none", markersize=7, zorder=4,
             label="Forecast made one month before")
    top.set_ylim(bottom=0)
    _money_axis(top, currency)
    top.set_ylabel(f"MRR per month, {currency}")
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="upper left", fontsize=9, frameon=False)
    horizons = sorted({r["horizon"] for r in rows})
    for horizon, colour in ((horizons[0], FORECAST), (horizons[-1], "#6a1b9a")) if horizons else ():
        chosen = [r for r in rows if r["horizon"] == horizon and r["pct_error"] is not None]
        offset = 0.2 if horizon == horizons[-1] and len(horizons) > 1 else (-0.2 if len(horizons) > 1 else 0)
        bottom.bar([index[r["period"]] + offset for r in chosen], [100 * _f(r["pct_error"]) for r in chosen],
                   width=0.4 if len(horizons) > 1 else 0.7, color=colour,
                   label=f"{horizon}-month-ahead forecast")
        if len(horizons) == 1:
            break
    bottom.axhline(0, color="black", linewidth=0.8)
    from matplotlib.ticker import PercentFormatter

    bottom.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=1))
    bottom.set_ylabel("Error (forecast − actual),\n% of actual")
    bottom.grid(axis="y", alpha=0.3)
    bottom.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    _period_axis(bottom, months)
    bottom.set_xlabel("Forecast month (UTC)")
    fig.suptitle(f"MRR forecast backtest ({currency}), {payload['method']['window_months']}-month window",
                 fontsize=13, fontweight="bold")
    return _save(fig, plt, path)


def simulation_chart(payload: Mapping[str, Any], path: str | Path) -> Path:
    """`mrr simulate price`: baseline and simulated closing MRR (top), the difference (bottom)."""
    plt = _pyplot()
    currency = payload["currency"]
    rows = payload["rows"]
    labels = [r["period"] for r in rows]
    x = list(range(len(rows)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    top.plot(x, [_f(r["baseline_mrr"]) for r in rows], color=ACTUAL, marker="o", markersize=3, linewidth=2,
             label="Current projection")
    top.plot(x, [_f(r["simulated_mrr"]) for r in rows], color=FORECAST, linestyle="--", marker="o", markersize=3,
             linewidth=2, label="With the price change")
    # The difference is usually small next to total MRR: the axis zooms in (it does not start at 0).
    _money_axis(top, currency)
    top.set_ylabel(f"Closing MRR, {currency}\n(axis not from 0)")
    top.grid(axis="y", alpha=0.3)
    top.legend(loc="best", fontsize=9, frameon=True, framealpha=0.9)
    difference = [_f(r["difference"]) for r in rows]
    bars = bottom.bar(x, difference, color=["#2e7d32" if d >= 0 else "#e53935" for d in difference], width=0.7)
    if len(rows) <= 24:
        bottom.bar_label(bars, labels=[_signed_money(d, currency) for d in difference], fontsize=8, padding=2)
        bottom.margins(y=0.2)
    bottom.axhline(0, color="black", linewidth=0.8)
    _money_axis(bottom, currency)
    bottom.set_ylabel(f"Difference, {currency}")
    bottom.grid(axis="y", alpha=0.3)
    _period_axis(bottom, labels)
    bottom.set_xlabel("Month (UTC)")
    s = payload["scenario"]
    uplift = f", churn uplift {_pct(s['churn_uplift'])} a month" if s["churn_uplift"] not in (None, "0.0000") else ""
    fig.suptitle(f"Price change {s['plan']} {_signed_pct(s['change'])} from {s['from'][:10]}{uplift} ({currency})",
                 fontsize=13, fontweight="bold")
    return _save(fig, plt, path)


def _signed_money(value: float, currency: str) -> str:
    return f"{'+' if value >= 0 else '−'}{_symbol(currency)}{abs(value):,.0f}"


def _signed_pct(value: str) -> str:
    return f"{Decimal(value) * 100:+.2f} %"
