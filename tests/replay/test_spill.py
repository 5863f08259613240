"""The replay's spilled ledger (`streams.ledger_spill`) and its buckets computed one at a time
(`streams.replay_shards.compute_bucket`): together they give exactly the rows of a whole-ledger
rebuild in memory (`projections.rebuild.rebuild`), duplicates and conflicts included, whatever
the number of buckets and the order in which partitions are read. No server needed."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import msgspec
import pytest

from ledger.events import FxRatePublished, customer_of, encode_event
from ledger.kafka.messages import RawRecord
from ledger.ports import LedgerRecord
from projections.engine import MrrSettings
from projections.rebuild import bucket_of, ledger_rows, rebuild
from projections.verify.loaded import LedgerFigures, expected_figures
from streams.ledger_spill import BUCKET_EVENTS, bucket_count, spill_ledger
from streams.replay_shards import compute_bucket
from tests.projections.test_rebuild import demo_records

HORIZON = dt.timedelta(days=366)


def raw(record: LedgerRecord) -> RawRecord:
    return RawRecord(record.partition, record.offset, None, encode_event(record.event),
                     int(record.event.recorded_at.timestamp() * 1000))


async def batches(records: list[LedgerRecord], size: int = 37):
    """The records as raw messages, partitions read in reverse order and interleaved in chunks
    (as a scan of several partitions may deliver them)."""
    by_partition: dict[int, list[LedgerRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    queues = [sorted(by_partition[p], key=lambda r: r.offset) for p in sorted(by_partition, reverse=True)]
    while any(queues):
        for queue in queues:
            chunk, queue[:] = queue[:size], queue[size:]
            if chunk:
                yield [raw(r) for r in chunk]


def append(records: list[LedgerRecord], ends: dict[int, int], partition: int, event) -> LedgerRecord:
    record = LedgerRecord(partition, ends.get(partition, 0), event)
    ends[partition] = record.offset + 1
    records.append(record)
    return record


def ledger_with_copies(buckets: int) -> tuple[list[LedgerRecord], dict[int, int]]:
    """A demo ledger plus: a duplicate, a same-customer conflict, a copy of a customer's event
    under another customer (in another bucket unless there is one) that comes first in
    (partition, offset) order (so the original is the conflict), a duplicated FX rate and a
    conflicting copy of every rate."""
    records, ends = demo_records(customers=30, months=8)
    customer_events = [r for r in records if customer_of(r.event) is not None]
    first, second = customer_events[3], customer_events[10]
    append(records, ends, first.partition, first.event)  # duplicate
    append(records, ends, second.partition, msgspec.structs.replace(
        second.event, occurred_at=second.event.occurred_at + dt.timedelta(seconds=1)))  # conflict
    victim = next(r for r in customer_events[20:] if r.partition > 0)
    others = {customer_of(r.event) for r in customer_events} - {customer_of(victim.event)}
    other = next(c for c in sorted(others) if buckets == 1 or bucket_of(c, buckets) != bucket_of(customer_of(victim.event), buckets))
    append(records, ends, 0, msgspec.structs.replace(victim.event, customer_id=other))  # first in (partition, offset) order
    rates = [r for r in records if isinstance(r.event, FxRatePublished)]
    append(records, ends, rates[0].partition, rates[0].event)  # duplicated rate
    for rate in rates:  # conflicting copies of every rate: none may convert anything
        append(records, ends, rate.partition, msgspec.structs.replace(rate.event, rate=rate.event.rate * 3))
    return records, ends


def comparable(tables: dict[str, list[dict]]) -> dict[str, Counter]:
    return {name: Counter(tuple(sorted((k, str(v)) for k, v in row.items() if k != "id")) for row in rows)
            for name, rows in tables.items()}


@pytest.mark.parametrize("buckets", [1, 3, 7])
async def test_spilled_buckets_give_the_rows_of_a_whole_ledger_rebuild(tmp_path, buckets):
    records, ends = ledger_with_copies(buckets)
    spilled = await spill_ledger(batches(records), tmp_path, ends, buckets=buckets, horizon=HORIZON)
    assert spilled.events == len(records) and sum(spilled.sizes) == len(records)
    assert not list(tmp_path.glob("ids-*"))  # the id files are gone once resolved

    got: dict[str, list[dict]] = {}
    figures = LedgerFigures()
    for bucket in range(buckets):
        computed = compute_bucket(spilled, bucket, MrrSettings())
        assert computed.check.differences == []
        for name, rows in computed.tables.items():
            got.setdefault(name, []).extend(rows)
        figures.add(computed.figures)
    for name, rows in ledger_rows(ends, MrrSettings(), []).items():
        got.setdefault(name, []).extend(rows)

    want = rebuild(records, ends, MrrSettings())
    assert want.duplicates == 2 and want.conflicts == 2 + len([r for r in records if isinstance(r.event, FxRatePublished)]) // 2
    expected, actual = comparable(want.tables), comparable(got)
    for name in expected:
        assert actual.get(name, Counter()) == expected[name], name
    whole = expected_figures(records)
    assert (figures.counts, figures.partitions, figures.customers) == (whole.counts, whole.partitions, whole.customers)


async def test_spill_leaves_out_dead_letters_and_events_recorded_after_the_cutoff(tmp_path):
    records, ends = demo_records(customers=10, months=4)
    cutoff = sorted(r.event.recorded_at for r in records)[len(records) // 2]

    async def with_poison():
        async for batch in batches(records):
            yield batch
        yield [RawRecord(0, ends[0], None, b'{"not": "an event"}', 0)]

    spilled = await spill_ledger(with_poison(), tmp_path, {**ends, 0: ends[0] + 1}, buckets=2,
                                 horizon=HORIZON, until_recorded=cutoff)
    kept = [r for r in records if r.event.recorded_at <= cutoff]
    assert (spilled.events, spilled.after_cutoff, spilled.dead_letters) == (len(kept), len(records) - len(kept), 1)
    read = sorted((r for b in range(2) for r in spilled.read_bucket(b)), key=lambda r: (r.partition, r.offset))
    assert read == sorted(kept, key=lambda r: (r.partition, r.offset))


def test_bucket_count_keeps_buckets_small_and_shared_equally_by_jobs():
    assert bucket_count(0, 1) == 1 and bucket_count(10, 4) == 4
    assert bucket_count(BUCKET_EVENTS * 5, 2) == 6
    for messages, jobs in ((1, 1), (BUCKET_EVENTS + 1, 1), (BUCKET_EVENTS * 25, 3)):
        count = bucket_count(messages, jobs)
        assert count % jobs == 0 and messages / count <= BUCKET_EVENTS
