"""Every projection row of a whole ledger, computed in memory: what the projector would have
written had it applied the ledger in recorded order, as rows ready for a bulk load.

`rebuild(records, ends, settings)` runs the projector's own batch logic (`projections.batch.Batch`:
the same engine steps in ascending `recorded_at`, the same bitemporal diff) over all records at
once with no database: every customer is new, so nothing is read, and rows superseded within the
rebuild already carry their `superseded_at`. The result differs from a live projection only in
row ids and, for customers restated by an FX rate that the live worker saw interleaved with
other partitions, in recorded instants of superseded history (docs/operations.md, "Replay");
the current rows, the event index, the reference tables and the offsets are identical.

Duplicates and conflicts: the first copy of an `event_id` in (partition, offset) order wins,
as it does for a live worker within a partition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ledger.ports import LedgerRecord
from projections import schema
from projections.batch import Batch
from projections.customer_state import ROW_KINDS, CustomerState
from projections.dedupe import split_known
from projections.engine import FxTable, MrrSettings
from projections.projector import settings_json

BITEMPORAL = tuple(table.name for table, _, _ in ROW_KINDS)


@dataclass
class RebuiltProjection:
    """Rows per table name (dicts keyed by column name, ids assigned from 1), plus counts."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    customers: int = 0

    def row_count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


class _InMemoryBatch(Batch):
    """A `Batch` over an empty store: customers start blank, nothing is read or written."""

    def __init__(self, records: list[LedgerRecord], settings: MrrSettings) -> None:
        super().__init__(None, records, settings, FxTable())  # type: ignore[arg-type]

    def _customers_looking_up_rates_since(self, day: dt.date) -> set[str]:
        return set()  # no stored customers: the ones in memory are checked step by step

    def _load(self, all_ids: list[str]) -> None:
        for cid in all_ids:
            state = CustomerState(cid, self.reporting)
            self.customers[cid] = state


def rebuild(records: Sequence[LedgerRecord], ends: Mapping[int, int],
            settings: MrrSettings) -> RebuiltProjection:
    """The projections of `records` (a whole ledger up to `ends`, the next offset per
    partition) under `settings`, as rows for every projection table."""
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    new, duplicates, conflicts = split_known(ordered, {})
    batch = _InMemoryBatch(new, settings)
    batch.compute()
    out = RebuiltProjection(applied=len(new), duplicates=duplicates, conflicts=len(conflicts),
                            customers=len(batch.customers))
    positions = {r.event.event_id: (r.partition, r.offset) for r in new}
    for name, rows in batch.inserts.items():
        if name in BITEMPORAL:
            rows = [row for row in rows if not row.pop("_drop", False)]
            for row_id, row in enumerate(rows, start=1):
                row["id"] = row_id
        elif name == "events":
            for row in rows:
                row["partition"], row["offset"] = positions[row["event_id"]]
        out.tables[name] = rows
    for name in (*BITEMPORAL, "events", "fx_rates", "acquisition_costs", "customer_attributes"):
        out.tables.setdefault(name, [])
    out.tables["event_conflicts"] = conflicts
    out.tables["customer_fx_lookups"] = [
        {"customer_id": c.customer_id, "last_lookup_day": c.last_fx_lookup}
        for c in batch.customers.values() if c.last_fx_lookup is not None
    ]
    out.tables["projection_offsets"] = [
        {"partition": p, "next_offset": o} for p, o in sorted(ends.items())
    ]
    out.tables["projection_meta"] = [
        {"key": "settings", "value": settings_json(settings)},
        {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
    ]
    return out
