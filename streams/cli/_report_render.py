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
    listed in `times` hold compact instants and never wrap."""
    table = Table(title=title, title_justify="left")
    times = set(times)
    for i, column in enumerate(columns):
        numeric = i >= numeric_from and i not in times
        table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric or i in times)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    _console.print(table)


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
