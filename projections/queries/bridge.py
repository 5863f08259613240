"""The MRR bridge per period: opening, movements by type, FX impact, closing (MRR_SPEC.md §6).

Invariant, checked on every row: opening + Σ movements + fx_impact = closing, to the minor unit.
Customer counts: customers_opening/closing are customers with MRR > 0 just before the start/end;
new/churned/reactivated customers count the movements of that type in the period (a customer
who churns twice in one period counts twice), so closing = opening + new + reactivated − churned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Connection

from projections.engine.model import MOVEMENT_TYPES
from projections.periods import Period
from projections.queries.bridge_sums import from_rows, from_totals
from projections.queries.common import BridgeImbalanceError, Scope, report_envelope
from projections.queries.money import format_major

_COUNTED = {"new_business": "new_customers", "churn": "churned_customers",
            "reactivation": "reactivated_customers"}


@dataclass
class BridgeRow:
    """One period of the bridge; money in minor units of the reporting currency."""

    period: Period
    end: dt.datetime
    opening_mrr: int = 0
    new_business: int = 0
    expansion: int = 0
    contraction: int = 0
    churn: int = 0
    reactivation: int = 0
    fx_impact: int = 0
    closing_mrr: int = 0
    customers_opening: int = 0
    customers_closing: int = 0
    new_customers: int = 0
    churned_customers: int = 0
    reactivated_customers: int = 0
    unconverted_subscriptions: int = 0
    movement_counts: dict[str, int] = field(default_factory=dict)

    @property
    def movements_total(self) -> int:
        return sum(getattr(self, kind) for kind in MOVEMENT_TYPES)

    def check(self) -> None:
        """Raise `BridgeImbalanceError` unless opening + movements + fx_impact = closing."""
        if self.opening_mrr + self.movements_total + self.fx_impact != self.closing_mrr:
            raise BridgeImbalanceError(
                f"bridge {self.period.label} does not balance: opening {self.opening_mrr} + "
                f"movements {self.movements_total} + fx_impact {self.fx_impact} != closing {self.closing_mrr}"
            )


def bridge(conn: Connection, periods: Sequence[Period], scope: Scope, *, totals: bool = True) -> list[BridgeRow]:
    """The bridge rows of `periods` (ascending, contiguous) as of/known at `scope`.

    The sums come from the totals kept per day (`bridge_sums.from_totals`) where they can answer,
    else from the rows, added up in the database (`bridge_sums.from_rows`; always with
    `totals=False`), so the cost grows with the number of periods read, not with the rows."""
    if not periods:
        return []
    rows = [BridgeRow(p, scope.end_of(p)) for p in periods]
    ends = [r.end for r in rows]
    sums = (from_totals(conn, periods, ends, scope) if totals else None) or from_rows(conn, periods, ends, scope)
    for i, row in enumerate(rows):
        row.opening_mrr, row.customers_opening = sums.levels[2 * i]
        row.closing_mrr, row.customers_closing = sums.levels[2 * i + 1]
        row.unconverted_subscriptions = sums.unconverted[i]
        row.fx_impact = sums.fx.get(i, (0, 0))[0]
    for (i, kind), (amount, count) in sums.movements.items():
        row = rows[i]
        setattr(row, kind, getattr(row, kind) + amount)
        row.movement_counts[kind] = row.movement_counts.get(kind, 0) + count
        if kind in _COUNTED:
            setattr(row, _COUNTED[kind], getattr(row, _COUNTED[kind]) + count)
    for row in rows:
        row.check()
    return rows


MONEY_FIELDS = ("opening_mrr", "new_business", "expansion", "contraction", "churn", "reactivation",
                "fx_impact", "closing_mrr")
COUNT_FIELDS = ("customers_opening", "customers_closing", "new_customers", "churned_customers",
                "reactivated_customers", "unconverted_subscriptions")


def bridge_json(rows: Sequence[BridgeRow], currency: str, kind: str, scope: Scope) -> dict[str, Any]:
    """The `--json` shape of MRR_SPEC.md §7."""
    return report_envelope(currency, kind, scope, [
            {"period": r.period.label,
             **{f: format_major(getattr(r, f), currency) for f in MONEY_FIELDS},
             **{f: getattr(r, f) for f in COUNT_FIELDS}}
            for r in rows
        ], customer_id=scope.customer_id)
