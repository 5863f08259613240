"""The read side: one module per report, each a synchronous function over a SQLAlchemy
`Connection` (run it with `ProjectionStore.read`) plus a `*_json` renderer of MRR_SPEC.md §7.

Every report takes a `Scope`: `as_of` (business instant), `known_at` (recorded instant) and an
optional customer. See docs/reports.md for the semantics.
"""

from projections.queries.bridge import BridgeRow, bridge, bridge_json
from projections.queries.common import BridgeImbalanceError, Scope, resolve_periods
from projections.queries.customer import CustomerView, customer, customer_json
from projections.queries.kpis import Kpis, kpis, kpis_json
from projections.queries.movements import MovementRow, movements, movements_json
from projections.queries.snapshot import SnapshotRow, snapshot, snapshot_json

__all__ = [
    "BridgeImbalanceError",
    "BridgeRow",
    "CustomerView",
    "Kpis",
    "MovementRow",
    "Scope",
    "SnapshotRow",
    "bridge",
    "bridge_json",
    "customer",
    "customer_json",
    "kpis",
    "kpis_json",
    "movements",
    "movements_json",
    "resolve_periods",
    "snapshot",
    "snapshot_json",
]
