"""What a replay's load kept, checked in SQL against what its buckets checked in memory.

The buckets of `mrr replay` compare their rows with a from-scratch computation before they COPY
them (`projections.verify.rebuilt`). `check_loaded` then checks the loaded schema itself, with
aggregates PostgreSQL computes where the data is instead of reading millions of rows back:

- every bitemporal table holds the rows copied and as many current rows as expected;
- every customer's MRR now (its open, current customer interval) is the expected one;
- every month's bridge (current movements per type, FX impacts) has the expected totals, in the
  rows and in the bridge totals the load filled from them, whose MRR level now is the sum of
  the customers' MRR now;
- the event index holds, per partition, exactly the applied records (count and sum of offsets;
  event ids are its primary key), the reference tables and conflicts the expected counts;
- the offsets are the replay's end offsets.

Expected reference figures come from the ledger records deduplicated on their own
(`expected_figures`, per replay bucket), not from what the buckets loaded. `mrr verify` is the full row-by-row check
of a schema as stored, for any time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.events import AcquisitionCostRecorded, CustomerAttributesSet, FxRatePublished, customer_of
from ledger.ports import LedgerRecord
from projections.customer_state import ROW_KINDS
from projections.totals import LEVELS
from projections.verify.compare import RowsCheck
from projections.verify.expected import conflicting_copies, first_of_each
from projections.verify.model import BridgeDifference, Difference, VerifyResult


@dataclass
class LedgerFigures:
    """What ledger records should leave in the reference tables and the event index."""

    counts: Counter[str] = field(default_factory=Counter)
    """Rows per reference table (`fx_rates`, `acquisition_costs`, `customer_attributes`,
    `event_conflicts`)."""
    partitions: dict[int, tuple[int, int]] = field(default_factory=dict)
    """(records, sum of offsets) per partition of the event index."""
    customers: int = 0

    def add(self, other: LedgerFigures) -> None:
        """Add the figures of records disjoint from these (another replay bucket's)."""
        self.counts.update(other.counts)
        for p, (n, total) in other.partitions.items():
            mine = self.partitions.get(p, (0, 0))
            self.partitions[p] = (mine[0] + n, mine[1] + total)
        self.customers += other.customers


def expected_figures(records: Sequence[LedgerRecord]) -> LedgerFigures:
    """The figures that the ledger records `records` (deduplicated here on their own) should leave."""
    first = first_of_each(records)
    figures = LedgerFigures()
    figures.counts.update({"fx_rates": 0, "acquisition_costs": 0, "customer_attributes": 0,
                           "event_conflicts": sum(1 for _ in conflicting_copies(records, first))})
    customers = set()
    for record in first.values():
        n, total = figures.partitions.get(record.partition, (0, 0))
        figures.partitions[record.partition] = (n + 1, total + record.offset)
        event = record.event
        if isinstance(event, FxRatePublished):
            figures.counts["fx_rates"] += 1
        elif isinstance(event, AcquisitionCostRecorded):
            figures.counts["acquisition_costs"] += 1
        elif isinstance(event, CustomerAttributesSet):
            figures.counts["customer_attributes"] += len(event.attributes)
        customers.add(customer_of(event))
    customers.discard(None)
    figures.customers = len(customers)
    return figures


async def check_loaded(conn: AsyncConnection, schema: str, figures: LedgerFigures, ends: Mapping[int, int],
                       checks: Sequence[RowsCheck], copied: Mapping[str, int]) -> VerifyResult:
    """The differences the buckets found (`checks`) and those between the loaded schema `schema`
    and what it should hold: `copied` rows per table, the buckets' expected figures, and the
    reference `figures` of the ledger up to `ends`."""
    q = _qualifier(conn, schema)
    differences = [d for check in checks for d in check.differences]
    current = Counter[str]()
    for check in checks:
        current.update(check.current_rows)
    for table, _, _ in ROW_KINDS:
        name = str(table.name)
        total, now = (await conn.execute(text(
            f"SELECT count(*), count(*) FILTER (WHERE superseded_at IS NULL) FROM {q(name)}"))).one()
        if total != copied.get(name, 0) or now != current[name]:
            differences.append(Difference(name, "different", None, f"loaded {total} rows ({now} current), "
                                          f"copied {copied.get(name, 0)} ({current[name]} current expected)"))
    differences += await _mrr_now(conn, q, checks)
    counts, partitions = figures.counts, figures.partitions
    for name, want in counts.items():
        got = (await conn.execute(text(f"SELECT count(*) FROM {q(name)}"))).scalar_one()
        if got != want:
            differences.append(Difference(name, "different", None, f"loaded {got} rows, the ledger gives {want}"))
    stored = {p: (n, int(s)) for p, n, s in await conn.execute(text(
        f'SELECT partition, count(*), sum("offset") FROM {q("events")} GROUP BY partition'))}
    for p in sorted(set(stored) | set(partitions)):
        if stored.get(p) != partitions.get(p):
            differences.append(Difference("events", "different", None, f"partition {p}: loaded (records, sum "
                                          f"of offsets) {stored.get(p)}, the ledger gives {partitions.get(p)}"))
    offsets = dict((await conn.execute(text(f"SELECT partition, next_offset FROM {q('projection_offsets')}"))).all())
    for p in sorted(set(offsets) | set(ends)):
        if offsets.get(p, 0) != ends.get(p, 0):
            differences.append(Difference("projection_offsets", "different", None,
                                          f"partition {p}: stored {offsets.get(p, 0)}, ledger read to {ends.get(p, 0)}"))
    return VerifyResult(checked_at=dt.datetime.now(dt.UTC), offsets=dict(ends), events=sum(n for n, _ in partitions.values()),
                        customers=figures.customers, differences=differences, bridge=await _bridge(conn, q, checks))


def _qualifier(conn: AsyncConnection, schema: str) -> Any:
    preparer = conn.dialect.identifier_preparer
    return lambda table: f"{preparer.quote(schema)}.{preparer.quote(table)}"


async def _mrr_now(conn: AsyncConnection, q: Any, checks: Sequence[RowsCheck]) -> list[Difference]:
    want: dict[str, int] = {}
    for check in checks:
        want.update(check.mrr_now)
    got = dict((await conn.execute(text(
        f"SELECT customer_id, mrr FROM {q('customer_mrr')} WHERE superseded_at IS NULL AND valid_to IS NULL"))).all())
    return [Difference("customer_mrr", "different", cid, f"MRR now: loaded {got.get(cid)}, expected {want.get(cid)}")
            for cid in sorted(set(want) | set(got)) if want.get(cid) != got.get(cid)]


async def _bridge(conn: AsyncConnection, q: Any, checks: Sequence[RowsCheck]) -> list[BridgeDifference]:
    """Month totals per movement type and of FX impacts against what the buckets computed, as
    the rows give them and as the bridge totals the load filled give them (`type` then ends in
    ` (bridge_totals)`), and the totals' MRR level now against the customers' MRR now."""
    want: Counter[tuple[str, str]] = Counter()
    mrr_now = 0
    for check in checks:
        want.update(check.expected_totals)
        mrr_now += sum(check.mrr_now.values())
    month = "to_char(effective_at AT TIME ZONE 'UTC', 'YYYY-MM')"
    from_rows = await conn.execute(text(
        f"SELECT {month}, type, sum(amount) FROM {q('movements')} WHERE superseded_at IS NULL GROUP BY 1, 2 "
        f"UNION ALL SELECT {month}, 'fx_impact', sum(amount) FROM {q('fx_impacts')} "
        "WHERE superseded_at IS NULL GROUP BY 1"))
    from_totals = await conn.execute(text(
        f"SELECT to_char(day, 'YYYY-MM'), measure, sum(amount) FROM {q('bridge_totals')} "
        f"WHERE measure NOT IN ({', '.join(repr(m) for m in LEVELS)}) GROUP BY 1, 2"))
    differences = []
    for rows, suffix in ((from_rows, ""), (from_totals, " (bridge_totals)")):
        got = {(m, kind): int(total) for m, kind, total in rows}
        differences += [BridgeDifference(m, kind + suffix, want.get((m, kind), 0), got.get((m, kind), 0))
                        for m, kind in sorted(set(want) | set(got)) if want.get((m, kind), 0) != got.get((m, kind), 0)]
    level = (await conn.execute(text(
        f"SELECT coalesce(sum(amount), 0) FROM {q('bridge_totals')} WHERE measure = 'mrr'"))).scalar_one()
    if int(level) != mrr_now:
        differences.append(BridgeDifference("now", "mrr (bridge_totals)", mrr_now, int(level)))
    return differences
