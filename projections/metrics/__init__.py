"""Prometheus business gauges read from the projections (DESIGN.md decision 7, docs/metrics.md).

`snapshot.take_snapshot` runs the existing report queries (bridge, KPIs) plus one segment query
and reads the last `mrr verify` summary (`verify.read_verify`) on a `Connection`; `refresher.SnapshotRefresher` does that in the background every N seconds;
`collector.BusinessCollector` serves the latest snapshot from its synchronous `collect()`.
"""

from projections.metrics.collector import BusinessCollector
from projections.metrics.refresher import SnapshotRefresher
from projections.metrics.snapshot import BusinessSnapshot, take_snapshot

__all__ = ["BusinessCollector", "BusinessSnapshot", "SnapshotRefresher", "take_snapshot"]
