"""Find records in an opened ledger `Source`: the latest, new ones as they come, one event id's
copies, one customer's records.

What the reading is (where it looks, how much it reads) is told through `note`, and long reads
through a `progress` bar, both given by the caller (the CLI writes them to stderr).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Callable

from streams.ledger_inspect.sources import Entry, KafkaSource, LedgerUnavailable, Source

if TYPE_CHECKING:
    from streams.config import Config
    from streams.ledger_snapshot import Progress

CHUNK = 5000
FOLLOW_SECONDS = 0.5

Note = Callable[[str], None]
"""Told, in a sentence, where a lookup reads and anything odd it meets."""
ProgressBar = Callable[[int], AbstractContextManager["Progress"]]
"""Opens a progress display over a number of records, yielding the function to advance it."""


async def scan(source: Source, ranges: dict[int, tuple[int, int]], advance: Progress,
               **filters: Any) -> list[Entry]:
    """Every record in the `[start, end)` offset range of each partition that passes `filters`,
    in offset order per partition; `advance(n)` after each chunk of n offsets read."""
    found: list[Entry] = []
    for partition, (start, end) in sorted(ranges.items()):
        position = start
        while position < end:
            entries, after = await source.fetch(partition, position, min(CHUNK, end - position),
                                                **filters)
            found.extend(e for e in entries if e.offset < end)
            after = end if after <= position else min(after, end)  # nothing more before `end`
            advance(after - position)
            position = after
    return found


async def tail(source: Source, count: int) -> tuple[list[Entry], dict[int, int]]:
    """The last `count` records across partitions (each partition's last `count`, merged by
    recorded_at), and the end offsets they were read up to."""
    ends = await source.ends()
    ranges = {p: (max(0, end - count), end) for p, end in ends.items() if count}
    entries = sorted(await scan(source, ranges, lambda _n: None), key=Entry.order)
    return (entries[-count:] if count else []), ends


async def follow(source: Source, positions: dict[int, int],
                 emit: Callable[[list[Entry]], None]) -> None:
    """Poll for records after `positions` and `emit` each new lot in recorded_at order; forever."""
    while True:
        await asyncio.sleep(FOLLOW_SECONDS)
        ends = await source.ends()
        ranges = {p: (positions.get(p, 0), end) for p, end in ends.items()}
        new = await scan(source, ranges, lambda _n: None)
        positions.update(ends)
        if new:
            emit(sorted(new, key=Entry.order))


async def find_event(source: Source, config: Config, event_id: str, *, force_scan: bool,
                     note: Note, progress: ProgressBar) -> list[Entry]:
    """Every copy of `event_id`: by the projections' event index on Kafka with a database
    configured (unless `force_scan`), else by reading every partition."""
    if isinstance(source, KafkaSource) and config.database_url and not force_scan:
        positions = await _indexed_positions(config, event_id)
        note("looked up in the event index of the projections: the applied copy and any "
             "conflicting ones (identical re-sends are not indexed: --scan finds them)")
        found: list[Entry] = []
        for partition, offset in positions:
            entries, _ = await source.fetch(partition, offset, 1)
            record = [e for e in entries if e.offset == offset]
            found += record
            if not record:
                note(f"the event index places {event_id} at partition {partition} offset "
                     f"{offset}, but the topic has no such record (was it recreated?)")
        return found
    ends = await source.ends()
    plain = event_id.isascii() and event_id.isprintable() and not set(event_id) & set('"\\/')
    if isinstance(source, KafkaSource):
        note(f"no event index{' used' if config.database_url else ' (MRR_DATABASE_URL unset)'}: "
             f"scanning every partition of {source.where}, {sum(ends.values())} records")
    with progress(sum(ends.values())) as advance:
        entries = await scan(source, {p: (0, end) for p, end in ends.items()}, advance,
                             needle=event_id.encode() if plain else None)
    return [e for e in entries if (e.event.event_id == event_id if e.event is not None
                                   else e.value is not None and event_id.encode() in e.value)]


async def customer_events(source: Source, customer_id: str, *, note: Note,
                          progress: ProgressBar) -> tuple[list[Entry], int]:
    """The records keyed `customer_id`, in ledger order, read from its one partition."""
    ends = await source.ends()
    partition = source.partition_of(customer_id, sorted(ends))
    if isinstance(source, KafkaSource):
        note(f"reading partition {partition} of {len(ends)} of {source.where} (murmur2 of the "
             f"key, as aiokafka and the Java client partition), {ends[partition]} records")
    with progress(ends[partition]) as advance:
        found = await scan(source, {partition: (0, ends[partition])}, advance, key=customer_id)
    return found, partition


async def _indexed_positions(config: Config, event_id: str) -> list[tuple[int, int]]:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from projections import schema
    from projections.migrate import SchemaRevisionError
    from streams.bootstrap import open_store

    def query(conn: Any) -> list[tuple[int, int]]:
        rows = []
        for table in (schema.events, schema.event_conflicts):
            where = table.c.event_id == event_id
            rows += conn.execute(select(table.c.partition, table.c["offset"]).where(where)).all()
        return sorted({(p, o) for p, o in rows})

    try:
        store = await open_store(config)
        try:
            return await store.read(query)
        finally:
            await store.close()
    except (SQLAlchemyError, SchemaRevisionError, OSError) as exc:
        raise LedgerUnavailable(f"the event index in MRR_DATABASE_URL cannot be read: {exc}; "
                                "--scan reads the topic instead") from None
