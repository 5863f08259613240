"""Cohorts: customers grouped by the period of their first `new_business` movement (MRR_SPEC §6).

For each cohort and each period since its start (0 = the cohort's own period) up to the last
reported period: how many of its customers have MRR > 0 at that period's end, and their MRR.
Logo retention = active customers / cohort size; revenue retention (net, with expansion,
contraction and reactivation) = cohort MRR / starting MRR, where starting MRR is the sum of the
cohort's `new_business` amounts. A cohort that fully churned has retention 0, never missing.
Period ends follow the reports: MRR just before the end, or at `as_of` for the current period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence

from sqlalchemy import Connection, and_, func, select

from projections import schema
from projections.periods import Period
from projections.queries.common import Scope, for_customer, report_envelope, visible
from projections.queries.levels import grouped_levels_before, period_index, positive
from projections.queries.money import format_major, format_ratio, ratio


@dataclass(frozen=True)
class CohortCell:
    age: int
    """Periods since the cohort's start (0 = its own period)."""
    period: Period
    customers: int
    """Cohort customers with MRR > 0 at the period end."""
    mrr: int
    complete: bool
    """False for the period containing `as_of` (measured at `as_of`, not at its end)."""


@dataclass
class Cohort:
    period: Period
    customers: int
    starting_mrr: int
    cells: list[CohortCell] = field(default_factory=list)

    def logo_retention(self, cell: CohortCell) -> Decimal | None:
        return ratio(cell.customers, self.customers)

    def revenue_retention(self, cell: CohortCell) -> Decimal | None:
        return ratio(cell.mrr, self.starting_mrr)


def first_new_business(scope: Scope) -> Any:
    """Subquery (customer_id, first_at): each customer's first visible `new_business` instant up
    to `as_of`."""
    t = schema.movements
    return (select(t.c.customer_id, func.min(t.c.effective_at).label("first_at"))
            .where(visible(t, scope.known_at), *for_customer(t, scope), t.c.type == "new_business",
                   t.c.effective_at < scope.cutoff)
            .group_by(t.c.customer_id).subquery("first_new_business"))


def cohorts(conn: Connection, periods: Sequence[Period], scope: Scope) -> list[Cohort]:
    """The cohorts whose start period is in `periods` (ascending, contiguous, one kind), each
    measured at the end of every period from its own through the last of `periods`.

    The database groups customers into cohorts and adds up each cohort's MRR at every period end
    (`levels`); Python only assembles the triangle."""
    if not periods:
        return []
    m, c = schema.movements, schema.customer_mrr
    first = first_new_business(scope)
    cohort = period_index(first.c.first_at, periods)
    in_range = [first.c.first_at >= periods[0].start, first.c.first_at < periods[-1].end]
    starts = conn.execute(
        select(cohort, func.count(func.distinct(m.c.customer_id)), func.sum(m.c.mrr_after))
        .select_from(m.join(first, and_(m.c.customer_id == first.c.customer_id,
                                        m.c.effective_at == first.c.first_at)))
        .where(visible(m, scope.known_at), m.c.type == "new_business", *in_range)
        .group_by(cohort)).all()
    if not starts:
        return []
    ends = [scope.end_of(p) for p in periods]
    levels = grouped_levels_before(
        conn, c, [visible(c, scope.known_at), *for_customer(c, scope), *in_range], ends, c.c.mrr,
        positive(c.c.mrr), keys=[cohort], source=c.join(first, c.c.customer_id == first.c.customer_id))
    result = []
    for index, size, starting in sorted((int(i), int(n), int(s or 0)) for i, n, s in starts):
        measured = periods[index:]
        in_force = levels.get((index,), [(0, 0)] * len(periods))[index:]
        row = Cohort(periods[index], size, starting)
        row.cells = [CohortCell(age, p, count, mrr, p.end <= scope.cutoff)
                     for age, (p, (mrr, count)) in enumerate(zip(measured, in_force))]
        result.append(row)
    return result


def averages(rows: Sequence[Cohort]) -> list[dict[str, Any]]:
    """Per age: retention of all cohorts that reached it, weighted by cohort size (logo) and by
    starting MRR (revenue), i.e. Σ active / Σ size and Σ MRR / Σ starting MRR."""
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for cohort in rows:
        for cell in cohort.cells:
            s = sums[cell.age]
            s[0] += 1
            s[1] += cell.customers
            s[2] += cohort.customers
            s[3] += cell.mrr
            s[4] += cohort.starting_mrr
    return [{"periods_since_start": age, "cohorts": n, "logo_retention": format_ratio(ratio(active, size)),
             "revenue_retention": format_ratio(ratio(mrr, start))}
            for age, (n, active, size, mrr, start) in sorted(sums.items())]


def cohort_rows(rows: Sequence[Cohort], currency: str) -> list[dict[str, Any]]:
    """One flat row per cohort and age (the `--json` rows and the `--csv` lines)."""
    return [{"cohort": c.period.label, "cohort_customers": c.customers,
             "starting_mrr": format_major(c.starting_mrr, currency), "periods_since_start": cell.age,
             "period": cell.period.label, "customers": cell.customers, "mrr": format_major(cell.mrr, currency),
             "logo_retention": format_ratio(c.logo_retention(cell)),
             "revenue_retention": format_ratio(c.revenue_retention(cell)), "complete": cell.complete}
            for c in rows for cell in c.cells]


def cohorts_json(rows: Sequence[Cohort], currency: str, kind: str, scope: Scope) -> dict[str, Any]:
    """Envelope of the reports plus `average` per age; `rows` in long form (cohort × age)."""
    return report_envelope(currency, kind, scope, cohort_rows(rows, currency), customer_id=scope.customer_id,
                           average=averages(rows))
