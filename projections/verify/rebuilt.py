"""A rebuilt shard's rows checked before they are loaded (`mrr replay`).

`check_rebuilt(records, tables, settings)` compares the current (not superseded) rows a shard of
a replay is about to COPY (`projections.rebuild.rebuild_shard`: row dicts) with its records
recomputed from scratch (`expected_rows`: `compute_timeline` per customer), row by row, per
customer. It runs in the shard's own process, on rows already in memory, so the replay's
verification costs one engine pass from scratch instead of reading every row back from
PostgreSQL; what the load itself kept is then checked in SQL (`projections.verify.loaded`).
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter
from typing import Any, Mapping, Sequence

from ledger.ports import LedgerRecord
from projections.customer_state import ROW_KINDS
from projections.engine import MrrSettings
from projections.verify.compare import RowsCheck, check_rows
from projections.verify.expected import expected_rows


def current_values(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Counter[Any]]:
    """The current rows of every bitemporal table in `tables` (row dicts with `superseded_at`),
    as the engine's row Structs."""
    out: dict[str, Counter[Any]] = {}
    for table, cls, _ in ROW_KINDS:
        fields = cls.__struct_fields__
        pick = itemgetter(*fields)
        at = fields.index("event_ids") if "event_ids" in fields else None
        values: Counter[Any] = Counter()
        for row in tables.get(str(table.name), ()):
            if row["superseded_at"] is None:
                picked = list(pick(row))
                if at is not None:  # a JSON list in the row, a tuple in the engine's Struct
                    picked[at] = tuple(picked[at])
                values[cls(*picked)] += 1
        out[str(table.name)] = values
    return out


def check_rebuilt(records: Sequence[LedgerRecord], tables: Mapping[str, Sequence[Mapping[str, Any]]],
                  settings: MrrSettings) -> RowsCheck:
    """The current rows in `tables` (one shard's) against `records` (the shard's: its customers'
    events and every FX rate) recomputed from scratch. The result also carries, for the check of
    the loaded schema, how many current rows each table should hold and every customer's MRR
    now (its open customer interval)."""
    applied = sorted(records, key=lambda r: (r.event.recorded_at, r.partition, r.offset))  # type: ignore[arg-type, return-value]
    want = expected_rows(applied, settings)
    check = check_rows(want, current_values(tables))
    check.current_rows = {name: sum(rows.values()) for name, rows in want.items()}
    check.mrr_now = {row.customer_id: row.mrr for row in want["customer_mrr"] if row.valid_to is None}
    return check
