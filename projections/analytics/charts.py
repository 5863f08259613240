"""PNG charts of the analytics reports: cohort heat maps, MRR by segment, unit economics.

Each takes the report's `--json` payload (money as decimal strings in major units, ratios as
4-place decimal strings, null when undefined) and writes a PNG. Floats appear only here, at the
very end; a null is drawn as a gap (NaN), never as 0.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Sequence

from projections.charts import _money_axis, _period_axis, _pyplot, _save

UNITS = {"day": "days", "week": "weeks", "month": "months", "quarter": "quarters", "year": "years"}
PALETTE = ("#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#e53935", "#00acc1", "#6d4c41", "#c0ca33",
           "#d81b60", "#3949ab", "#757575")


def _f(value: Any) -> float:
    return math.nan if value is None or value == "" else float(Decimal(str(value)))


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [_f(row.get(key)) for row in rows]


def _percent_axis(axis: Any, which: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    getattr(axis, f"{which}axis").set_major_formatter(PercentFormatter(1.0, decimals=0))


def _as_of(payload: Mapping[str, Any]) -> str:
    return str(payload.get("as_of", ""))[:10]


def cohort_heatmap(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Two heat maps (logo retention, net revenue retention): a row per cohort (with its size),
    a column per period since start, each cell labelled in %; `*` marks a period not over yet."""
    import numpy as np

    plt = _pyplot()
    rows, currency = payload["rows"], payload["currency"]
    unit = UNITS.get(payload["period"], payload["period"])
    cohorts = list(dict.fromkeys(r["cohort"] for r in rows))
    ages = 1 + max((r["periods_since_start"] for r in rows), default=0)
    sizes = {r["cohort"]: r["cohort_customers"] for r in rows}
    index = {c: i for i, c in enumerate(cohorts)}
    width = max(8.0, 3.0 + 0.5 * ages)
    height = max(2.2, 0.9 + 0.32 * len(cohorts))
    fig, axes = plt.subplots(2, 1, figsize=(width, 2 * height + 1.2))
    panels = (("logo_retention", "Logo retention: cohort customers with MRR > 0 / cohort size", "RdYlGn"),
              ("revenue_retention", f"Net revenue retention: cohort MRR / starting MRR ({currency})", "RdYlGn"))
    for axis, (key, title, cmap) in zip(axes, panels):
        axis.set_title(title, loc="left", fontsize=10)
        if not cohorts:
            axis.text(0.5, 0.5, "no cohort in this range", ha="center", va="center", transform=axis.transAxes)
            axis.set_axis_off()
            continue
        grid = np.full((len(cohorts), ages), np.nan)
        partial = set()
        for r in rows:
            grid[index[r["cohort"]], r["periods_since_start"]] = _f(r[key])
            if not r.get("complete", True):
                partial.add((index[r["cohort"]], r["periods_since_start"]))
        top = max(1.0, float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0)
        image = axis.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=top, aspect="auto")
        if ages <= 36 and len(cohorts) <= 48:
            size = 8 if ages <= 18 else 6.5
            for (i, j), value in np.ndenumerate(grid):
                if not np.isnan(value):
                    shade = (value / top) if top else 0
                    axis.text(j, i, f"{value * 100:.0f}{'*' if (i, j) in partial else ''}", ha="center",
                              va="center", fontsize=size, color="white" if shade < 0.25 or shade > 0.85 else "black")
        step = max(1, -(-ages // 24))
        axis.set_xticks(range(0, ages, step))
        axis.set_yticks(range(len(cohorts)), [f"{c}  (n={sizes[c]})" for c in cohorts], fontsize=8)
        axis.set_xlabel(f"{unit.capitalize()} since first new business (0 = the cohort's own {payload['period']});"
                        " cells in %, * = period not over")
        axis.set_ylabel("Cohort (customers)")
        bar = fig.colorbar(image, ax=axis, fraction=0.03, pad=0.01)
        _percent_axis(bar.ax)
    fig.suptitle(f"Cohort retention ({currency}), as of {_as_of(payload)}", fontsize=14, fontweight="bold")
    return _save(fig, plt, path)


def segment_mrr(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Closing MRR per period stacked by segment (ranked, `(other)` last) above customers per
    segment."""
    plt = _pyplot()
    rows, currency, names = payload["rows"], payload["currency"], payload["segments"]
    periods = list(dict.fromkeys(r["period"] for r in rows))
    cell = {(r["period"], r["segment"]): r for r in rows}
    x = list(range(len(periods)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    colours = [PALETTE[i % len(PALETTE)] if name != "(other)" else "#bdbdbd" for i, name in enumerate(names)]
    mrr = [[_f(cell.get((p, s), {}).get("closing_mrr") or 0) for p in periods] for s in names]
    if names:
        top.stackplot(x, mrr, labels=names, colors=colours, alpha=0.85)
    top.set_ylim(bottom=0)
    _money_axis(top, currency)
    top.set_ylabel(f"Closing MRR, {currency}")
    top.set_title("MRR, stacked", loc="left", fontsize=10)
    top.grid(axis="y", alpha=0.3)
    if names:
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                   title=payload["dimension"])
    for name, colour in zip(names, colours):
        bottom.plot(x, [cell.get((p, name), {}).get("customers", 0) for p in periods], color=colour, marker="o",
                    markersize=2.5, label=name)
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("Customers (MRR > 0)")
    bottom.set_title("Customers per segment (colours as above)", loc="left", fontsize=10)
    bottom.grid(axis="y", alpha=0.3)
    _period_axis(bottom, periods)
    bottom.set_xlabel("Period")
    fig.suptitle(f"MRR by {payload['dimension']} ({currency}), as of {_as_of(payload)}", fontsize=14,
                 fontweight="bold")
    return _save(fig, plt, path)


def unit_economics_chart(payload: Mapping[str, Any], path: str | Path) -> Path:
    """LTV against CAC (money), LTV:CAC with the 3× rule of thumb and CAC payback months, the
    customer retention rate, then churn and growth rates; undefined values are gaps."""
    import numpy as np

    plt = _pyplot()
    rows, currency = payload["rows"], payload["currency"]
    periods = [r["period"] for r in rows]
    x = list(range(len(rows)))
    fig, (money, ratio, retention, rates) = plt.subplots(
        4, 1, figsize=(12, 12), sharex=True, gridspec_kw={"height_ratios": [3, 3, 2, 2]})
    window = payload.get("ltv_window", 1)
    money.plot(x, _series(rows, "ltv"), color="#1e88e5", marker="o", markersize=3,
               label=f"LTV = ARPA / customer churn rate (churn over {window} "
                     f"{payload['period'] if window == 1 else UNITS.get(payload['period'], payload['period'])})")
    money.plot(x, _series(rows, "cac"), color="#e53935", marker="o", markersize=3,
               label="CAC = acquisition cost / new customers")
    money.set_ylim(bottom=0)
    _money_axis(money, currency)
    money.set_ylabel(f"{currency} per customer")
    money.set_title("Customer lifetime value and acquisition cost", loc="left", fontsize=10)
    money.legend(loc="best", fontsize=8, frameon=True, framealpha=0.9)
    ltv_cac = _series(rows, "ltv_cac")
    payback = ratio.twinx()
    payback.bar(x, _series(rows, "cac_payback_months"), color="#fb8c00", alpha=0.3, width=0.6,
                label="CAC payback, months (right axis)")
    payback.set_ylim(bottom=0)
    payback.set_ylabel("CAC payback, months")
    ratio.set_zorder(payback.get_zorder() + 1)
    ratio.patch.set_visible(False)
    ratio.plot(x, ltv_cac, color="#8e24aa", marker="o", markersize=3, label="LTV:CAC")
    ratio.axhline(3, color="#757575", linestyle="--", linewidth=1, label="3× (common target)")
    finite = [v for v in ltv_cac if not np.isnan(v)]
    ratio.set_ylim(0, max([3.5, *(1.15 * v for v in finite)]))
    ratio.set_ylabel("LTV / CAC (×)")
    handles = ratio.get_legend_handles_labels()[0] + payback.get_legend_handles_labels()[0]
    ratio.legend(handles, [h.get_label() for h in handles], loc="best", fontsize=8, frameon=True,
                 framealpha=0.9)
    ratio.set_title("Return on acquisition", loc="left", fontsize=10)
    retention.plot(x, _series(rows, "customer_retention_rate"), color="#43a047", marker="o", markersize=3)
    _percent_axis(retention)
    retention.set_ylabel(f"per {payload['period']}")
    retention.set_title("Customer retention rate: customers active at start and end / at start", loc="left",
                        fontsize=10)
    for key, label, colour in (("customer_churn_rate", "Customer churn rate", "#e53935"),
                               ("mrr_growth_rate", "MRR growth rate", "#1e88e5")):
        rates.plot(x, _series(rows, key), color=colour, marker="o", markersize=3, label=label)
    rates.axhline(0, color="black", linewidth=0.8)
    _percent_axis(rates)
    rates.set_ylabel(f"per {payload['period']}")
    rates.set_title("Customer churn and MRR growth", loc="left", fontsize=10)
    rates.legend(loc="best", fontsize=8, frameon=True, framealpha=0.9)
    for axis in (money, ratio, retention, rates):
        axis.grid(axis="y", alpha=0.3)
    _period_axis(rates, periods)
    rates.set_xlabel("Period")
    fig.suptitle(f"Unit economics ({currency}), as of {_as_of(payload)}", fontsize=14, fontweight="bold")
    return _save(fig, plt, path)
