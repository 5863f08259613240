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

Shards. Customers never interact except through FX rates, so the work splits by customer
(`shard`): each shard gets its customers' events plus every FX rate, and computes its customers'
rows on its own (`rebuild_shard`, one process each in `mrr replay`); the rows of all shards
together are exactly the unsharded result up to row ids.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ledger.events import EventBase, FxRatePublished, customer_of
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


class _InMemoryBatch(Batch):
    """A `Batch` over an empty store: customers start blank, nothing is read or written.
    Without `reference`, events of no customer (FX rates) are applied but not indexed: another
    shard indexes them."""

    def __init__(self, records: list[LedgerRecord], settings: MrrSettings, reference: bool) -> None:
        super().__init__(None, records, settings, FxTable())  # type: ignore[arg-type]
        self.reference = reference

    def _customers_looking_up_rates_since(self, day: dt.date) -> set[str]:
        return set()  # no stored customers: the ones in memory are checked step by step

    def _load(self, all_ids: list[str]) -> None:
        for cid in all_ids:
            self.customers[cid] = CustomerState(cid, self.reporting)

    def _index(self, event: EventBase) -> None:
        if self.reference or customer_of(event) is not None:
            super()._index(event)


def deduplicate(records: Sequence[LedgerRecord]) -> tuple[list[LedgerRecord], int, list[dict[str, Any]]]:
    """The records to apply (first copy of each event id in (partition, offset) order), the
    number of duplicates, and the `event_conflicts` rows."""
    return split_known(sorted(records, key=lambda r: (r.partition, r.offset)), {})


def bucket_of(key: str | None, count: int) -> int:
    """The shard/bucket of a customer's events (a stable hash of the id, independent of how
    producers partitioned the ledger); events of no customer: 0."""
    return 0 if key is None else zlib.crc32(key.encode()) % count


def shard(records: Sequence[LedgerRecord], count: int) -> list[list[LedgerRecord]]:
    """`records` (deduplicated) split into `count` shards by customer (a stable hash of the id,
    so the split does not depend on how producers partitioned the ledger). Events of no
    customer go to shard 0, which indexes them; FX rates go to every shard too, since they
    convert every shard's customers."""
    count = max(1, count)
    shards: list[list[LedgerRecord]] = [[] for _ in range(count)]
    rates: list[LedgerRecord] = []
    for record in records:
        cid = customer_of(record.event)
        if cid is None:
            shards[0].append(record)
            if isinstance(record.event, FxRatePublished):
                rates.append(record)
        else:
            shards[bucket_of(cid, count)].append(record)
    for other in shards[1:]:
        other.extend(rates)
    return shards


def rebuild_shard(records: list[LedgerRecord], settings: MrrSettings, *, index: int = 0,
                  count: int = 1, progress: Callable[[int], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows of one shard (`shard`): ids of the bitemporal tables are `k * count + index + 1`
    for the shard's k-th row, so shards never collide and each customer's rows keep their
    order; shard 0 also indexes the events of no customer. `progress`: records applied so far
    are reported as they go (`Batch.compute`)."""
    batch = _InMemoryBatch(records, settings, reference=index == 0)
    batch.compute(progress)
    positions = {r.event.event_id: (r.partition, r.offset) for r in records}
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, rows in batch.inserts.items():
        if name in BITEMPORAL:
            rows = [row for row in rows if not row.pop("_drop", False)]
            for k, row in enumerate(rows):
                row["id"] = k * count + index + 1
        elif name == "events":
            for row in rows:
                row["partition"], row["offset"] = positions[row["event_id"]]
        tables[name] = rows
    tables["customer_fx_lookups"] = [
        {"customer_id": c.customer_id, "last_lookup_day": c.last_fx_lookup}
        for c in batch.customers.values() if c.last_fx_lookup is not None
    ]
    return tables


def ledger_rows(ends: Mapping[int, int], settings: MrrSettings,
                conflicts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows that belong to no shard: conflicts, offsets (the replay's end offsets) and meta."""
    return {
        "event_conflicts": conflicts,
        "projection_offsets": [{"partition": p, "next_offset": o} for p, o in sorted(ends.items())],
        "projection_meta": [
            {"key": "settings", "value": settings_json(settings)},
            {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
        ],
    }


def rebuild(records: Sequence[LedgerRecord], ends: Mapping[int, int],
            settings: MrrSettings, shards: int = 1) -> RebuiltProjection:
    """The projections of `records` (a whole ledger up to `ends`, the next offset per
    partition) under `settings`, as rows for every projection table, computed in this process
    (`shards` > 1 only to check that sharding changes nothing)."""
    new, duplicates, conflicts = deduplicate(records)
    parts = shard(new, shards)
    out = RebuiltProjection(applied=len(new), duplicates=duplicates, conflicts=len(conflicts),
                            customers=len({customer_of(r.event) for r in new} - {None}))
    out.tables = {t.name: [] for t in schema.metadata.sorted_tables}
    for index, part in enumerate(parts):
        for name, rows in rebuild_shard(part, settings, index=index, count=len(parts)).items():
            out.tables[name].extend(rows)
    out.tables.update(ledger_rows(ends, settings, conflicts))
    return out
