"""Human output of `mrr report`: rich tables drawn from the same payloads as `--json`."""

from __future__ import annotations

from typing import Any, Iterable

from rich.console import Console
from rich.table import Table

_console = Console()


def _t(iso: str) -> str:
    """A compact UTC instant for tables: `2024-03-01 10:00Z` (seconds only when not 0)."""
    import datetime as dt

    value = dt.datetime.fromisoformat(iso).astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%MZ" if value.second == value.microsecond == 0 else "%Y-%m-%d %H:%M:%SZ")


def _title(payload: dict[str, Any], name: str) -> str:
    return f"{name} ({payload['currency']}), as of {_t(payload['as_of'])}, known at {_t(payload['known_at'])}"


def _table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]], numeric_from: int = 1,
           times: Iterable[int] = ()) -> None:
    """Columns before `numeric_from` are text (wrapped), the rest right-aligned numbers; columns
    listed in `times` hold compact instants and never wrap. A table wider than the terminal is
    printed in parts: each repeats the text columns and takes as many others as fit, so no
    column is squeezed to nothing (rich would otherwise cut every cell to `1…`)."""
    columns = list(columns)
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    times = set(times)
    for part, chosen in enumerate(_column_parts(columns, cells, numeric_from, times)):
        table = Table(title=title if part == 0 else f"{title} (continued)", title_justify="left")
        for i in chosen:
            numeric = i >= numeric_from and i not in times
            table.add_column(columns[i], justify="right" if numeric else "left", no_wrap=numeric or i in times)
        for row in cells:
            table.add_row(*(row[i] for i in chosen))
        _console.print(table)


_TEXT_WIDTH = 30
"""A repeated text column is given at most this many characters (it wraps beyond)."""


def _column_parts(columns: list[str], cells: list[list[str]], numeric_from: int,
                  no_wrap: Iterable[int] = ()) -> list[list[int]]:
    """Column indices per printed part: all of them when the table fits the terminal (text
    columns wrapped at spaces); otherwise the text columns (before `numeric_from`) in every part,
    the others split in order."""
    times = set(no_wrap)

    def width(i: int) -> int:  # content + padding + border
        return 3 + max([len(columns[i]), *(len(row[i]) for row in cells)])

    def narrowest(i: int) -> int:  # a wrapped text column needs its longest word
        if i >= numeric_from or i in times:
            return width(i)
        return 3 + max(len(word) for text in [columns[i], *(row[i] for row in cells)] for word in [*text.split(), ""])

    keys = list(range(min(numeric_from, len(columns))))
    rest = list(range(len(keys), len(columns)))
    room = _console.width - 1
    if sum(narrowest(i) for i in range(len(columns))) <= room or len(rest) <= 1:
        return [keys + rest]
    fixed = sum(min(width(i), _TEXT_WIDTH + 3) for i in keys)
    parts: list[list[int]] = [[]]
    used = fixed
    for i in rest:
        if parts[-1] and used + width(i) > room:
            parts.append([])
            used = fixed
        parts[-1].append(i)
        used += width(i)
    return [keys + part for part in parts]


def _empty(payload: dict[str, Any]) -> bool:
    if not payload["rows"]:
        _console.print("[dim]no data in this range (run `mrr ingest` first?)[/dim]")
        return True
    return False


def _warn_unconverted(count: int) -> None:
    if count:
        _console.print(
            f"[yellow]{count} subscription(s) have no FX rate to the reporting currency and are not "
            "counted in MRR (publish fx.rate_published events to convert them)[/yellow]"
        )


BRIDGE_LINES = (
    ("opening MRR", "opening_mrr"), ("+ new business", "new_business"), ("+ expansion", "expansion"),
    ("+ contraction", "contraction"), ("+ churn", "churn"), ("+ reactivation", "reactivation"),
    ("+ FX impact", "fx_impact"), ("= closing MRR", "closing_mrr"), ("customers at start", "customers_opening"),
    ("customers at end", "customers_closing"), ("new customers", "new_customers"),
    ("churned customers", "churned_customers"), ("reactivated customers", "reactivated_customers"),
)


def bridge(payload: dict[str, Any]) -> None:
    if _empty(payload):
        return
    rows = payload["rows"]
    _table(_title(payload, "MRR bridge"), ["", *(r["period"] for r in rows)],
           ([label, *(r[key] for r in rows)] for label, key in BRIDGE_LINES))
    _warn_unconverted(rows[-1].get("unconverted_subscriptions", 0))


def snapshot(payload: dict[str, Any]) -> None:
    if _empty(payload):
        return
    _table(_title(payload, "MRR snapshot"),
           ("period", "customer", "mrr", "previous", "change", "category"),
           ([r["period"], r["customer_id"], r["mrr"], r["previous_mrr"], r["change"], r["category"] or ""]
            for r in payload["rows"]), numeric_from=2)


def kpis(payload: dict[str, Any]) -> None:
    if _empty(payload):
        return
    rows = payload["rows"]
    names = [k for k in rows[0] if k != "period"]
    _table(_title(payload, "KPIs"), ["kpi", *(r["period"] for r in rows)],
           ([name, *(r[name] for r in rows)] for name in names))
    _warn_unconverted(rows[-1].get("unconverted_subscriptions", 0))


def movements(payload: dict[str, Any]) -> None:
    if _empty(payload):
        return
    _table(_title(payload, "MRR movements"),
           ("effective at", "customer", "type", "amount", "MRR after", "recorded at"),
           ([_t(r["effective_at"]), r["customer_id"], r["type"], r["amount"], r["mrr_after"],
             _t(r["recorded_at"])] for r in payload["rows"]), numeric_from=3, times=(0, 5))


RESTATED_COLUMNS = (("Δ opening", "opening_mrr"), ("Δ new", "new_business"), ("Δ expan.", "expansion"),
                    ("Δ contr.", "contraction"), ("Δ churn", "churn"), ("Δ react.", "reactivation"),
                    ("Δ FX", "fx_impact"), ("Δ closing", "closing_mrr"))


def _signed(amount: str | None) -> str:
    """A delta with its sign (`+20.00`, `-20.00`, `0.00`)."""
    if amount is None:
        return ""
    return amount if amount.startswith("-") or not amount.strip("0.") else f"+{amount}"


def restatements(payload: dict[str, Any]) -> None:
    """Restated closed periods (closing then and now, delta per line) and the late events behind them."""
    rows = payload["rows"]
    if not rows:
        _console.print(f"[dim]no closed period changed after it closed (known at {_t(payload['known_at'])})[/dim]")
        return
    _table(_title(payload, "Closed periods restated since their close"),
           ("period", "closed at", "closing then", "closing now", *(name for name, _ in RESTATED_COLUMNS)),
           ([r["period"], _t(r["closed_at"]), r["at_close"]["closing_mrr"], r["now"]["closing_mrr"],
             *(_signed(r["delta"][key]) for _, key in RESTATED_COLUMNS)] for r in rows), numeric_from=2, times=(1,))
    causes = [(r["period"], c) for r in rows for c in r["causes"]]
    if causes:
        _table("Late events behind them (changed: period = its movements/FX, opening = an earlier period's)",
               ("period", "event", "type", "customer", "occurred at", "recorded at", "changed"),
               ([p, c["event_id"], c["type"], c["customer_id"] or "", _t(c["occurred_at"]), _t(c["recorded_at"]),
                 c["changed"]] for p, c in causes), numeric_from=7, times=(4, 5))


def customer(payload: dict[str, Any]) -> None:
    _console.print(f"[bold]{payload['customer_id']}[/bold]: MRR {payload['mrr']} {payload['currency']}, "
                   f"as of {_t(payload['as_of'])}, known at {_t(payload['known_at'])}")
    for key, value in sorted(payload.get("attributes", {}).items()):
        _console.print(f"  {key}: {value}")
    if payload["subscriptions"]:
        _table("subscriptions in force", ("subscription", "status", "plan", "interval", "mrr", "native", "since"),
               ([s["subscription_id"], s["status"], s["plan"], s["billing_interval"],
                 "unconverted" if s["mrr"] is None else s["mrr"], f"{s['native_mrr']} {s['currency']}",
                 _t(s["valid_from"])] for s in payload["subscriptions"]), numeric_from=4, times=(6,))
    else:
        _console.print("[dim]no subscription in force[/dim]")
    _warn_unconverted(payload.get("unconverted_subscriptions", 0))


def _pct(ratio: str | None, places: int = 1) -> str:
    """A 4-place ratio string as a percentage (`"0.9167"` → `91.7%`); empty when null."""
    if ratio is None:
        return ""
    from decimal import ROUND_HALF_UP, Decimal

    return f"{(Decimal(ratio) * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)}%"


def _unit(kind: str) -> str:
    return {"month": "months", "quarter": "quarters", "year": "years", "week": "weeks", "day": "days"}.get(kind, kind)


def cohorts(payload: dict[str, Any]) -> None:
    """Two triangles (logo, net revenue retention) with as many age columns as the terminal fits."""
    from rich import box

    if _empty(payload):
        return
    rows = payload["rows"]
    ages = sorted({r["periods_since_start"] for r in rows})
    by_cohort: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_cohort.setdefault(r["cohort"], {})[r["periods_since_start"]] = r
    fits = max(1, (_console.width - 32) // 6)
    shown = ages[:fits]
    for key, name in (("logo_retention", "Logo retention"), ("revenue_retention", "Net revenue retention")):
        table = Table(title=f"{name} by {_unit(payload['period'])} since first new business "
                            f"({payload['currency']}), as of {_t(payload['as_of'])}, known at {_t(payload['known_at'])}",
                      title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("cohort", no_wrap=True)
        table.add_column("n", justify="right", no_wrap=True)
        table.add_column("start MRR", justify="right", no_wrap=True)
        for age in shown:
            table.add_column(str(age), justify="right", no_wrap=True, min_width=4)
        for cohort, cells in by_cohort.items():
            first = cells[min(cells)]
            table.add_row(cohort, str(first["cohort_customers"]), first["starting_mrr"],
                          *(_pct(cells[a][key], 0) + ("*" if not cells[a]["complete"] else "") if a in cells else ""
                            for a in shown))
        _console.print(table)
    _console.print("[dim]Columns: periods since the cohort's first period (0 = its own); * = measured at "
                   "--as-of, the period is not over."
                   + (f" {len(ages) - len(shown)} later column(s) do not fit: widen the terminal or use "
                      "--csv/--json/--chart." if len(shown) < len(ages) else "") + "[/dim]")


SEGMENT_COLUMNS = (("opening", "opening_mrr"), ("new", "new_business"), ("expansion", "expansion"),
                   ("contraction", "contraction"), ("churn", "churn"), ("reactivation", "reactivation"),
                   ("moved in", "moved_in"), ("moved out", "moved_out"), ("FX", "fx_impact"),
                   ("closing", "closing_mrr"), ("customers", "customers"), ("ARPA", "arpa"))


def segments(payload: dict[str, Any]) -> None:
    if _empty(payload):
        return
    rows, names = payload["rows"], payload["segments"]
    dimension = payload["dimension"]
    periods = list(dict.fromkeys(r["period"] for r in rows))
    mrr = {(r["period"], r["segment"]): r["closing_mrr"] for r in rows}
    _table(_title(payload, f"Closing MRR by {dimension}"), ["period", *names],
           ([p, *(mrr.get((p, s), "") for s in names)] for p in periods))
    span = periods[0] if len(periods) == 1 else f"{periods[0]} .. {periods[-1]}"
    totals = payload["totals"]
    _table(f"By {dimension}, {span}: opening + movements + moved in/out + FX = closing",
           ["", *(t["segment"] for t in totals)],
           ([label, *(t[key] for t in totals)] for label, key in SEGMENT_COLUMNS))
    if payload["movers"]:
        _table(f"Top movers by {dimension}, {span}", ("segment", "opening", "closing", "change", "growth"),
               ([m["segment"], m["opening_mrr"], m["closing_mrr"], m["change"], _pct(m["growth_rate"])]
                for m in payload["movers"]))


UNIT_LINES = (("MRR", "mrr"), ("customers at start", "customers_opening"), ("customers", "customers"),
              ("new customers", "new_customers"), ("churned customers", "churned_customers"),
              ("retained customers", "retained_customers"), ("customer retention rate", "customer_retention_rate"),
              ("customer churn rate", "customer_churn_rate"), ("churn rate over LTV window", "customer_churn_rate_window"),
              ("MRR growth rate", "mrr_growth_rate"), ("ARPA", "arpa"), ("LTV", "ltv"),
              ("acquisition cost", "acquisition_cost"), ("CAC", "cac"), ("LTV:CAC", "ltv_cac"),
              ("ARPA of new customers", "arpa_new_customers"), ("CAC payback (months)", "cac_payback_months"))


def unit_economics(payload: dict[str, Any]) -> None:
    if _empty(payload):
        return
    rows = payload["rows"]
    _table(_title(payload, f"Unit economics, LTV over {payload['ltv_window']} {_unit(payload['period'])}"),
           ["", *(r["period"] for r in rows)], ([label, *(r[key] for r in rows)] for label, key in UNIT_LINES))
    if payload["channels"]:
        _table(f"CAC by channel (customer attribute `{payload['channel_attribute']}`)",
               ("period", "channel", "cost", "new customers", "CAC", "ARPA new", "payback (months)"),
               ([c["period"], c["channel"], c["acquisition_cost"], c["new_customers"], c["cac"],
                 c["arpa_new_customers"], c["cac_payback_months"]] for c in payload["channels"]), numeric_from=2)
    _console.print("[dim]Rates are fractions (0.0525 = 5.25 %); empty = undefined (zero denominator or "
                   "acquisition spend not recorded).[/dim]")
