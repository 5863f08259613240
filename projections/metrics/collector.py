"""`BusinessCollector`: a prometheus_client custom collector over the latest `BusinessSnapshot`.

`collect()` is synchronous and runs on the HTTP server's thread: it never queries the database,
it renders the snapshot the refresher last swapped in (one attribute assignment, atomic) and
reports how old it is. Business values are gauges, never counters: a restatement can lower a
month's movements. Money is in the reporting currency, named by the `currency` label on every
money gauge, as float major units (see `units.py`); ratios are fractions. Undefined ratios (a
zero denominator) are left out rather than exported as 0 or NaN. The `mrr_verify_*` gauges exist
only once `mrr verify` has stored a result (absent = never verified). Names: docs/metrics.md.
"""

from __future__ import annotations

import time
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projections.engine.model import MOVEMENT_TYPES
from projections.metrics.snapshot import BusinessSnapshot
from projections.metrics.units import fraction, major

RATIOS = {
    "customer_churn_rate": "Churned customers / customers at the start of the month (fraction).",
    "gross_mrr_churn_rate": "-(churn + contraction) / opening MRR of the month (fraction).",
    "net_mrr_churn_rate": "-(churn + contraction + expansion + reactivation) / opening MRR (fraction).",
    "nrr": "Net revenue retention: (opening + expansion + contraction + churn) / opening (fraction).",
}
SEGMENT_LABELS = {"plan": "plan", "billing_interval": "billing_interval", "currency": "billing_currency"}


class BusinessCollector(Collector):
    """Renders `self.snapshot`; the refresher sets it and counts its own failures here."""

    def __init__(self) -> None:
        self.snapshot: BusinessSnapshot | None = None
        self.refresh_errors = 0
        self.refresh_seconds: float | None = None

    def collect(self) -> Iterator[Metric]:
        yield from self._health()
        snap = self.snapshot
        if snap is not None:
            yield from _business(snap)
            yield from _verify(snap)

    def describe(self) -> list[Metric]:
        return []  # dynamic: do not call collect() at registration time

    def _health(self) -> Iterator[Metric]:
        snap = self.snapshot
        errors = CounterMetricFamily("mrr_metrics_refresh_errors",
                                     "Refreshes of the business snapshot that failed (the previous one is kept).")
        errors.add_metric([], self.refresh_errors)
        yield errors
        if self.refresh_seconds is not None:
            yield GaugeMetricFamily("mrr_metrics_refresh_duration_seconds",
                                    "How long the last successful snapshot refresh took.", value=self.refresh_seconds)
        if snap is not None:
            yield GaugeMetricFamily("mrr_metrics_snapshot_age_seconds",
                                    "Seconds since the business gauges were read from the projections.",
                                    value=max(0.0, time.time() - snap.taken_at))
            yield GaugeMetricFamily("mrr_metrics_snapshot_timestamp_seconds",
                                    "Unix time the business gauges were read from the projections.",
                                    value=snap.taken_at)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _business(snap: BusinessSnapshot) -> Iterator[Metric]:
    cur, k, c = snap.current, snap.current_kpis, snap.currency
    money = [
        ("mrr_mrr", "Monthly recurring revenue in force now (reporting currency, major units).", k.mrr),
        ("mrr_arr", "Annual run rate: 12 x MRR (reporting currency, major units).", k.arr),
        ("mrr_arpa", "Average revenue per active customer: MRR / active customers (major units).", k.arpa),
    ]
    for name, doc, value in money:
        g = _gauge(name, doc, ["currency"])
        if (v := major(value, c)) is not None:
            g.add_metric([c], v)
        yield g
    yield GaugeMetricFamily("mrr_active_customers", "Customers with MRR > 0 now.", value=k.customers)
    yield GaugeMetricFamily("mrr_unconverted_subscriptions",
                            "Subscriptions in force with no FX rate to the reporting currency "
                            "(their MRR is in no total).", value=k.unconverted_subscriptions)
    moves = _gauge("mrr_movements_month_to_date",
                   "Signed sum of this month's MRR movements by type, fx_impact included "
                   "(churn and contraction negative; reporting currency, major units).", ["type", "currency"])
    for kind in (*MOVEMENT_TYPES, "fx_impact"):
        moves.add_metric([kind, c], major(getattr(cur, kind), c) or 0.0)
    yield moves
    counts = _gauge("mrr_movement_customers_month_to_date",
                    "Number of this month's MRR movements by type (one per customer and instant).", ["type"])
    for kind in MOVEMENT_TYPES:
        counts.add_metric([kind], cur.movement_counts.get(kind, 0))
    yield counts
    for name, doc in RATIOS.items():
        g = _gauge(f"mrr_{name}", doc, ["month"])
        for month, kp in (("current", k), ("previous", snap.previous_kpis)):
            if (v := fraction(getattr(kp, name))) is not None:
                g.add_metric([month], v)
        yield g
    for dimension, label in SEGMENT_LABELS.items():
        g = _gauge(f"mrr_mrr_by_{label}",
                   f"MRR in force now by subscription {dimension.replace('_', ' ')}; the top N values "
                   "plus `other` (reporting currency, major units).", [label, "currency"])
        for value, minor in snap.segments.get(dimension, {}).items():
            g.add_metric([value, c], major(minor, c) or 0.0)
        yield g


def _verify(snap: BusinessSnapshot) -> Iterator[Metric]:
    """The last `mrr verify` result; nothing at all when none is stored (so an alert on
    `mrr_verify_differences > 0` stays silent and `absent(mrr_verify_timestamp_seconds)` shows it)."""
    if (verify := snap.verify) is None:
        return
    yield GaugeMetricFamily("mrr_verify_differences",
                            "Differences between the projections and the ledger recomputed from scratch "
                            "that the last `mrr verify` found (0: none).", value=verify.differences)
    yield GaugeMetricFamily("mrr_verify_timestamp_seconds",
                            "Unix time the last `mrr verify` checked the projections.", value=verify.timestamp)
