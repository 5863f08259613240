"""Simulation result: the month and segment impacts of a price change, and its JSON form.

Part of the simulation (`projections.analytics.simulate` has the rules); computed by
`projections.analytics.simulate_compare.simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.analytics.simulate_scenario import PriceChange
from projections.periods import Period
from projections.queries.common import Scope, report_envelope
from projections.queries.money import format_major, format_ratio, ratio


@dataclass
class MonthImpact:
    period: Period
    baseline: int
    simulated: int
    movements: dict[str, int]
    """Simulated minus baseline movements of each type in the month."""
    cancellations: int = 0

    @property
    def difference(self) -> int:
        return self.simulated - self.baseline


@dataclass
class Simulation:
    change: PriceChange
    months: list[MonthImpact]
    segments: dict[str, dict[str, list[tuple[int, int]]]]
    """dimension -> segment -> per month (baseline, simulated) closing MRR."""
    customers: int
    repriced_subscriptions: int
    recomputation_matches: bool
    """Whether the engine, fed the unchanged events, gives the stored MRR of those customers."""
    warnings: list[str] = field(default_factory=list)


def simulation_json(result: Simulation, currency: str, scope: Scope) -> dict[str, Any]:
    c = result.change
    rows = [{"period": m.period.label, "baseline_mrr": format_major(m.baseline, currency),
             "simulated_mrr": format_major(m.simulated, currency), "difference": format_major(m.difference, currency),
             "difference_pct": format_ratio(ratio(m.difference, m.baseline)),
             "movements_difference": {k: format_major(v, currency) for k, v in m.movements.items()},
             "uplift_cancellations": m.cancellations} for m in result.months]
    labels = [m.period.label for m in result.months]
    segments = [{"dimension": d, "segment": name, "rows": [
                    {"period": label, "baseline_mrr": format_major(b, currency),
                     "simulated_mrr": format_major(s, currency), "difference": format_major(s - b, currency),
                     "difference_pct": format_ratio(ratio(s - b, b))}
                    for label, (b, s) in zip(labels, values)]}
                for d, segs in result.segments.items() for name, values in segs.items()]
    return report_envelope(
        currency, "month", scope, rows, customer_id=scope.customer_id,
        scenario={"plan": c.plan, "change": format_ratio(c.change), "churn_uplift": format_ratio(c.churn_uplift),
                  "from": c.start.isoformat(), "months": c.months},
        assumptions=c.assumptions(), customers_recomputed=result.customers,
        repriced_subscriptions=result.repriced_subscriptions,
        recomputation_matches_projection=result.recomputation_matches, warnings=result.warnings,
        segments=segments)
