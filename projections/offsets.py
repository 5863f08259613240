"""The projector's offsets: which records of a batch are new, where each partition goes next,
and the locks and compare-and-set that keep two workers from applying one partition twice.

PostgreSQL owns the offsets (DESIGN.md decision 3): `projection_offsets` holds each partition's
next offset, written in the same transaction as the projection rows.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, text, update

from ledger.ports import LedgerRecord
from projections import bulk, schema


class FencingError(RuntimeError):
    """The stored offset is not the one this worker expected: another worker owns the partition."""


class OffsetGapError(RuntimeError):
    """The batch starts above the stored offset: records `start..end-1` must be applied first."""

    def __init__(self, partition: int, start: int, end: int) -> None:
        super().__init__(
            f"partition {partition}: batch starts at offset {end}, stored next offset is {start}; "
            f"apply offsets {start}..{end - 1} first"
        )
        self.partition, self.start, self.end = partition, start, end


def lock_offsets(conn: Connection, partitions: set[int]) -> dict[int, int]:
    """Create missing offset rows (next offset 0), lock the batch's rows until commit and return
    their stored next offsets.

    Two projectors writing the same partition queue here instead of racing; rows are
    taken in partition order so overlapping batches cannot deadlock. SQLite serialises
    writers with BEGIN IMMEDIATE already."""
    if not partitions:
        return {}
    table = schema.projection_offsets
    ordered = sorted(partitions)
    conn.execute(
        bulk.dialect_insert(conn, table)
        .values([{"partition": p, "next_offset": 0} for p in ordered])
        .on_conflict_do_nothing(index_elements=["partition"])
    )
    query = (select(table.c.partition, table.c.next_offset)
             .where(table.c.partition.in_(ordered)).order_by(table.c.partition))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {p: o for p, o in conn.execute(query).all()}


def keep_unapplied(
    partitions: set[int],
    by_partition: dict[int, list[LedgerRecord]],
    starts: dict[int, int],
    stored: dict[int, int],
) -> tuple[list[LedgerRecord], int]:
    """The records at or after their partition's stored offset, and how many were below it.
    Raises `OffsetGapError` when a partition's batch starts after the stored offset."""
    kept: list[LedgerRecord] = []
    skipped = 0
    for p in partitions:
        recs = sorted(by_partition.get(p, ()), key=lambda r: r.offset)
        position = stored.get(p, 0)
        first = starts.get(p, recs[0].offset if recs else None)
        if recs and first is not None and first > recs[0].offset:
            raise ValueError(f"partition {p}: start {first} is after the first record {recs[0].offset}")
        if first is not None and first > position:
            raise OffsetGapError(p, position, first)
        fresh = [r for r in recs if r.offset >= position]
        skipped += len(recs) - len(fresh)
        kept.extend(fresh)
    return kept, skipped


def next_offsets(
    partitions: set[int],
    by_partition: dict[int, list[LedgerRecord]],
    offsets: dict[int, int],
    stored: dict[int, int],
) -> dict[int, int]:
    """The next offset to store per partition: `offsets[p]`, else past the batch's last record;
    never below the stored one."""
    targets: dict[int, int] = {}
    for p in partitions:
        last = by_partition[p][-1].offset + 1 if by_partition.get(p) else None
        target = offsets.get(p, last)
        if target is None:
            continue
        if last is not None and target < last:
            raise ValueError(f"partition {p}: next offset {target} is not past the batch (ends at {last - 1})")
        targets[p] = max(target, stored.get(p, 0))
    return targets


def advance(conn: Connection, targets: dict[int, int], stored: dict[int, int]) -> dict[int, int]:
    """Compare-and-set each partition's next offset from `stored` to `targets` (one statement
    on PostgreSQL); a row that moved meanwhile raises `FencingError`."""
    table = schema.projection_offsets
    moves = [(p, stored.get(p, 0), target) for p, target in sorted(targets.items())
             if target != stored.get(p, 0)]
    if not moves:
        return targets
    if bulk.set_based(conn):
        hit = conn.execute(text(
            "UPDATE projection_offsets AS t SET next_offset = v.target "
            "FROM unnest(CAST(:partitions AS INTEGER[]), CAST(:expected AS BIGINT[]), "
            "CAST(:targets AS BIGINT[])) AS v(partition, expected, target) "
            "WHERE t.partition = v.partition AND t.next_offset = v.expected"),
            {"partitions": [m[0] for m in moves], "expected": [m[1] for m in moves],
             "targets": [m[2] for m in moves]},
        ).rowcount
        if hit != len(moves):
            now = dict(conn.execute(select(table.c.partition, table.c.next_offset)
                                    .where(table.c.partition.in_([m[0] for m in moves]))).all())
            moved = [m for m in moves if now.get(m[0]) != m[1]] or moves
            raise FencingError(f"partition {moved[0][0]}: next offset moved from {moved[0][1]} concurrently")
        return targets
    for p, expected, target in moves:
        hit = conn.execute(
            update(table)
            .where(table.c.partition == p, table.c.next_offset == expected)
            .values(next_offset=target)
        ).rowcount
        if hit != 1:
            raise FencingError(f"partition {p}: next offset moved from {expected} concurrently")
    return targets
