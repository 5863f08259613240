"""PNG charts of the MRR bridge and KPIs (matplotlib, Agg backend: no display needed).

The functions take rows in the `mrr report bridge|kpis --json` shapes (MRR_SPEC.md §7): a
`period` label and money as decimal strings (or Decimals) in major units of `currency`. Floats
appear only here, at the very end, because plotting needs them. The analytics charts (cohort
heat map, segments, unit economics) are in `projections.analytics.charts` and share the axis
helpers below.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Sequence

Row = Mapping[str, Any]

UP = (("new_business", "New business", "#2e7d32"), ("expansion", "Expansion", "#81c784"),
      ("reactivation", "Reactivation", "#26a69a"))
DOWN = (("contraction", "Contraction", "#ffa726"), ("churn", "Churn", "#e53935"))
MOVEMENTS = tuple(key for key, _, _ in UP + DOWN) + ("fx_impact",)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _values(rows: Sequence[Row], key: str) -> list[float]:
    return [float(Decimal(str(row.get(key) or 0))) for row in rows]


def _symbol(currency: str) -> str:
    from babel.numbers import get_currency_symbol

    symbol = get_currency_symbol(currency, locale="en")
    return symbol if len(symbol) <= 2 else f"{currency} "


def _money_axis(axis: Any, currency: str) -> None:
    """Tick labels like `$120k` / `€1.2M`, and a label naming the currency."""
    from matplotlib.ticker import FuncFormatter

    symbol = _symbol(currency)

    def short(value: float, _pos: object = None) -> str:
        sign, value = ("−" if value < 0 else ""), abs(value)
        for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if value >= limit:
                return f"{sign}{symbol}{value / limit:,.4g}{suffix}"
        return f"{sign}{symbol}{value:,.0f}"

    axis.yaxis.set_major_formatter(FuncFormatter(short))


def _period_axis(axis: Any, labels: Sequence[str]) -> None:
    step = max(1, -(-len(labels) // 16))  # at most ~16 labels
    positions = list(range(0, len(labels), step))
    axis.set_xticks(positions, [labels[i] for i in positions], rotation=45, ha="right")
    axis.set_xlim(-0.6, len(labels) - 0.4)


def bridge_waterfall(rows: Sequence[Row], currency: str, path: str | Path) -> Path:
    """The MRR bridge in three panels: closing MRR per period; the movements of each period
    stacked up (new, expansion, reactivation) and down (contraction, churn) with FX impact and
    the net change as a line; and a waterfall of the whole range, from the first period's
    opening MRR through each movement type's total to the last period's closing MRR (with one
    period, that period's bridge). Writes a PNG to `path` and returns the path."""
    plt = _pyplot()
    labels = [str(row["period"]) for row in rows]
    x = list(range(len(rows)))
    fig = plt.figure(figsize=(12, 10.5))
    grid = fig.add_gridspec(3, 1, height_ratios=[1, 2, 2])
    top = fig.add_subplot(grid[0])
    middle = fig.add_subplot(grid[1], sharex=top)
    bottom = fig.add_subplot(grid[2])
    closing = _values(rows, "closing_mrr")
    top.fill_between(x, closing, color="#1e88e5", alpha=0.15, step=None)
    top.plot(x, closing, color="#1e88e5", marker="o", markersize=3, label="Closing MRR")
    top.set_title("Closing MRR", loc="left", fontsize=10)
    top.set_ylim(bottom=0)
    top.set_ylabel(currency)
    _money_axis(top, currency)
    top.grid(axis="y", alpha=0.3)
    top.tick_params(labelbottom=False)

    for group in (UP, DOWN):
        base = [0.0] * len(rows)
        for key, label, colour in group:
            values = _values(rows, key)
            middle.bar(x, values, bottom=base, color=colour, label=label, width=0.75)
            base = [b + v for b, v in zip(base, values)]
    fx = _values(rows, "fx_impact")
    if any(fx):
        middle.bar(x, fx, color="#9e9e9e", label="FX impact", width=0.3)
    net = [sum(vals) for vals in zip(*(_values(rows, key) for key in MOVEMENTS))] if rows else []
    middle.plot(x, net, color="black", marker="o", markersize=3, linewidth=1.5, label="Net change")
    middle.axhline(0, color="black", linewidth=0.8)
    middle.use_sticky_edges = False  # a zero-height bar on top of a stack would pin the limit there
    middle.margins(y=0.08)
    middle.set_title("Movements per period", loc="left", fontsize=10)
    middle.set_ylabel(f"{currency} per period")
    _money_axis(middle, currency)
    middle.grid(axis="y", alpha=0.3)
    # above the panel, right of its title: inside it would hide the first bars
    middle.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=7, fontsize=8, frameon=False,
                  borderaxespad=0.2)
    _period_axis(middle, labels)

    _waterfall(bottom, rows, currency)
    fig.suptitle(f"MRR bridge ({currency})", fontsize=14, fontweight="bold")
    return _save(fig, plt, path)


def _waterfall(axis: Any, rows: Sequence[Row], currency: str) -> None:
    """Opening MRR of the first row, each movement type summed over the rows as a floating bar
    from the running total, closing MRR of the last row; every bar labelled with its amount."""
    if not rows:
        axis.text(0.5, 0.5, "no period in this range", ha="center", va="center", transform=axis.transAxes)
        axis.set_axis_off()
        return
    first, last = str(rows[0]["period"]), str(rows[-1]["period"])
    steps = [(label, sum(_values(rows, key)), colour) for key, label, colour in UP + DOWN]
    steps.append(("FX impact", sum(_values(rows, "fx_impact")), "#9e9e9e"))
    opening, closing = _values(rows[:1], "opening_mrr")[0], _values(rows[-1:], "closing_mrr")[0]
    names = [f"Opening MRR\n{first}"] + [label for label, _, _ in steps] + [f"Closing MRR\n{last}"]
    bottoms, heights, colours = [0.0], [opening], ["#1e88e5"]
    level = opening
    for _, value, colour in steps:
        bottoms.append(level)
        heights.append(value)
        colours.append(colour)
        level += value
    bottoms.append(0.0)
    heights.append(closing)
    colours.append("#1e88e5")
    x = list(range(len(names)))
    bars = axis.bar(x, heights, bottom=bottoms, color=colours, width=0.6)
    for i in range(len(x) - 1):  # connectors at the running total
        end = bottoms[i] + heights[i]
        axis.plot([i + 0.3, i + 0.7], [end, end], color="#757575", linewidth=0.8)
    signed = [i not in (0, len(x) - 1) for i in x]
    axis.bar_label(bars, labels=[_money_label(h, currency, sign) for h, sign in zip(heights, signed)],
                   fontsize=8, padding=2)
    axis.set_xticks(x, names, fontsize=9)
    levels = [opening, *(b + h for b, h in zip(bottoms[1:-1], heights[1:-1])), closing]
    low, high = min(levels), max(levels)
    span = high - low
    if low > 0 and span < 0.5 * high:  # movements small next to MRR: zoom in, and say so
        axis.set_ylim(max(0.0, low - 0.6 * span), high + 0.15 * span or high * 1.05)
        axis.set_ylabel(f"{currency} (axis not from 0)")
    else:
        axis.set_ylim(min(0.0, 1.12 * low), 1.12 * high or 1)
        axis.set_ylabel(currency)
    axis.axhline(0, color="black", linewidth=0.8)
    _money_axis(axis, currency)
    axis.grid(axis="y", alpha=0.3)
    span = first if first == last else f"{first} .. {last}"
    axis.set_title(f"Waterfall {span}: opening MRR + movements + FX impact = closing MRR", loc="left",
                   fontsize=10)


def _money_label(value: float, currency: str, signed: bool) -> str:
    sign = ("+" if value >= 0 else "−") if signed else ("−" if value < 0 else "")
    return f"{sign}{_symbol(currency)}{abs(value):,.0f}"


def mrr_over_time(rows: Sequence[Row], currency: str, path: str | Path) -> Path:
    """Closing MRR per period as a line (ARR = 12 × MRR on the right axis); writes a PNG."""
    plt = _pyplot()
    labels = [str(row["period"]) for row in rows]
    x = list(range(len(rows)))
    fig, axis = plt.subplots(figsize=(11, 5))
    _mrr_with_arr(axis, x, _values(rows, "closing_mrr"), currency)
    _period_axis(axis, labels)
    axis.grid(axis="y", alpha=0.3)
    axis.set_title(f"MRR over time ({currency})", fontsize=14, fontweight="bold")
    return _save(fig, plt, path)


def _mrr_with_arr(axis: Any, x: Sequence[int], mrr: Sequence[float], currency: str) -> None:
    """MRR as a filled line from 0 (headroom for the label of its last value), and ARR = 12 × MRR
    on a right-hand axis."""
    axis.fill_between(x, mrr, color="#1e88e5", alpha=0.15)
    axis.plot(x, mrr, color="#1e88e5", marker="o", markersize=3, label="MRR")
    axis.set_ylim(0, 1.12 * max(mrr, default=0) or 1)
    _money_axis(axis, currency)
    axis.set_ylabel(f"MRR, {currency}")
    arr = axis.twinx()
    arr.set_ylim(*(12 * limit for limit in axis.get_ylim()))
    _money_axis(arr, currency)
    arr.set_ylabel(f"ARR (12 × MRR), {currency}")
    if mrr:
        axis.annotate(f"MRR {_short_total(mrr[-1], currency)}", (x[-1], mrr[-1]), textcoords="offset points",
                      xytext=(-10, 6), ha="right", fontsize=9)


def _first(row: Row, *keys: str) -> Any:
    return next((row[k] for k in keys if k in row), None)


def mrr_and_customers(rows: Sequence[Row], currency: str, path: str | Path) -> Path:
    """Three panels over time: MRR (ARR = 12 × MRR on the right axis), active customers, and the
    customers gained (new + reactivated, up) and churned (down) per period. Takes `kpis` rows
    (`mrr`, `customers`, …) or `bridge` rows (`closing_mrr`, `customers_closing`, …)."""
    plt = _pyplot()
    labels = [str(row["period"]) for row in rows]
    x = list(range(len(rows)))
    mrr = [float(Decimal(str(_first(r, "mrr", "closing_mrr") or 0))) for r in rows]
    customers = [int(_first(r, "customers", "customers_closing") or 0) for r in rows]
    gained = [int(r.get("new_customers") or 0) + int(r.get("reactivated_customers") or 0) for r in rows]
    lost = [-int(r.get("churned_customers") or 0) for r in rows]
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(12, 9.5), sharex=True,
                                              gridspec_kw={"height_ratios": [3, 2, 2]})
    _mrr_with_arr(top, x, mrr, currency)
    top.set_title("MRR at period end", loc="left", fontsize=10)
    middle.fill_between(x, customers, color="#5e35b1", alpha=0.12)
    middle.plot(x, customers, color="#5e35b1", marker="o", markersize=3)
    middle.set_ylim(0, 1.15 * max(customers, default=0) or 1)
    if customers:
        middle.annotate(f"{customers[-1]:,}", (x[-1], customers[-1]), textcoords="offset points",
                        xytext=(-10, 6), ha="right", fontsize=9)
    middle.set_ylabel("Customers")
    middle.set_title("Active customers (MRR > 0) at period end", loc="left", fontsize=10)
    bottom.bar(x, gained, color="#2e7d32", width=0.75, label="New + reactivated")
    bottom.bar(x, lost, color="#e53935", width=0.75, label="Churned")
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylabel("Customers")
    bottom.set_title("Customers gained and lost per period", loc="left", fontsize=10)
    bottom.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, ncol=2,
                  borderaxespad=0.2)  # above the panel: inside it would cover the first bars
    for axis in (top, middle, bottom):
        axis.grid(axis="y", alpha=0.3)
    _period_axis(bottom, labels)
    bottom.set_xlabel("Period")
    fig.suptitle(f"MRR and customers over time ({currency})", fontsize=14, fontweight="bold")
    return _save(fig, plt, path)


def _short_total(value: float, currency: str) -> str:
    return f"{_symbol(currency)}{value:,.0f}"


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
