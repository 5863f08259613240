"""Verification: the projections against the ledger, recomputed independently.

`expected_state(records, ends, settings)` recomputes everything from the ledger with the pure
engine from scratch (`compute_timeline` per customer over its events in recorded order, the FX
table of every rate): no projector, no incremental engine, no bitemporal diff, none of the code
whose output is being checked. `read_state(conn)` reads the same things from a projection store:
the current (not superseded) rows of every bitemporal table, the event index, the reference
tables, the conflicts and the offsets. `compare` lists every difference, per customer where
there is one, and per month of the MRR bridge (movement and FX-impact totals by type), so a
report says which customers and which months are wrong, and why.
"""

from projections.verify.compare import (
    RowsCheck,
    check_rows,
    combine,
    compare,
    customer_ranges,
    in_range,
)
from projections.verify.expected import (
    expected_reference,
    expected_rows,
    expected_state,
    first_copies,
)
from projections.verify.model import BridgeDifference, Difference, ProjectionState, VerifyResult
from projections.verify.stored import read_reference, read_rows, read_state

__all__ = [
    "BridgeDifference", "Difference", "ProjectionState", "RowsCheck", "VerifyResult", "check_rows",
    "combine", "compare", "customer_ranges", "expected_reference", "expected_rows",
    "expected_state", "first_copies", "in_range", "read_reference", "read_rows", "read_state",
]
