"""Human output of `mrr demo`: progress bars and rich tables drawn from the report payloads."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

def progress_bar(console: Any) -> Any:
    """Progress bars with a description, the count done of the total and the elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _money(value: str | None) -> str:
    """Whole major units with thousands separators (tables only; JSON keeps exact cents)."""
    if value is None:
        return "–"
    amount = Decimal(value).quantize(Decimal(1))
    return "0" if amount == 0 else f"{amount:,}"


def _percent(value: str | None) -> str:
    return "–" if value is None else f"{Decimal(value) * 100:.1f}%"


def _ratio(value: str | None) -> str:
    return "–" if value is None else f"{Decimal(value):.2f}"


def print_bridge(console: Any, payload: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"Monthly MRR bridge ({payload['currency']}, whole units)",
                  title_justify="left", caption="opening + movements + FX = closing, to the cent",
                  caption_justify="left", box=box.SIMPLE_HEAD)
    columns = (("Month", "period"), ("Opening", "opening_mrr"), ("New", "new_business"),
               ("Expansion", "expansion"), ("Reactiv.", "reactivation"),
               ("Contraction", "contraction"), ("Churn", "churn"), ("FX", "fx_impact"),
               ("Closing", "closing_mrr"), ("Cust.", "customers_closing"))
    for i, (name, _) in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in payload["rows"]:
        table.add_row(row["period"], *(_money(row[key]) for _, key in columns[1:-1]),
                      f"{row['customers_closing']:,}")
    console.print(table)


def print_kpis(console: Any, payload: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"Monthly KPIs ({payload['currency']})", title_justify="left",
                  box=box.SIMPLE_HEAD)
    columns = ("Month", "ARR", "ARPA", "New\ncust.", "Churned\ncust.", "Customer\nchurn",
               "Gross MRR\nchurn", "NRR", "Quick\nratio", "CAC", "LTV:CAC", "CAC payback\n(months)")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for k in payload["rows"]:
        table.add_row(k["period"], _money(k["arr"]), _money(k["arpa"]), str(k["new_customers"]),
                      str(k["churned_customers"]), _percent(k["customer_churn_rate"]),
                      _percent(k["gross_mrr_churn_rate"]), _percent(k["nrr"]),
                      _ratio(k["quick_ratio"]), _money(k["cac"]), _ratio(k["ltv_cac"]),
                      _ratio(k["cac_payback_months"]))
    console.print(table)


def print_restatements(console: Any, payload: dict[str, Any], at_close: list[dict[str, Any]]) -> None:
    """Closed months whose numbers late events changed after the books closed (on the 3rd)."""
    from rich import box
    from rich.table import Table

    final = {row["period"]: row for row in payload["rows"]}
    changed = [(then, final[then["period"]]) for then in at_close
               if then["closing_mrr"] != final[then["period"]]["closing_mrr"]]
    if not changed:
        console.print(f"No late event changed the last {len(at_close)} closed months.")
        return
    table = Table(title=f"Closing MRR restated by late events ({payload['currency']})",
                  title_justify="left", caption="At close: as known on the 3rd of the next month",
                  caption_justify="left", box=box.SIMPLE_HEAD)
    for i, name in enumerate(("Month", "At close", "Now", "Difference")):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for then, now in changed:
        difference = Decimal(now["closing_mrr"]) - Decimal(then["closing_mrr"])
        table.add_row(then["period"], f"{Decimal(then['closing_mrr']):,}",
                      f"{Decimal(now['closing_mrr']):,}", f"{difference:+,}")
    console.print(table)


def print_next_steps(console: Any, data_dir: Path, first: dt.date, horizon: dt.datetime,
                      customer: str | None) -> None:
    prefix = f"MRR_DATA_DIR={data_dir}"
    prefix += "".join(f" {name}=" for name in ("MRR_DATABASE_URL", "MRR_KAFKA_BOOTSTRAP")
                      if os.environ.get(name))
    last = horizon - dt.timedelta(days=1)
    closed = f"{last:%Y-%m}"
    console.print("\n[bold]Query further[/bold] (the data stays in "
                  f"{data_dir}):", highlight=False)
    for example in (
        f"mrr report kpis --period quarter --from {first:%Y-%m} --to {closed}",
        f"mrr report bridge --period year",
        f"mrr report snapshot --from {closed} --to {closed}",
        f"mrr report bridge --from {closed} --to {closed} --known-at {horizon:%Y-%m}-03T00:00:00Z",
        f"mrr report customer --customer {customer or 'cus_000001'}",
        f"mrr report movements --customer {customer or 'cus_000001'}",
    ):
        console.print(f"  {prefix} {example}", highlight=False, soft_wrap=True)
