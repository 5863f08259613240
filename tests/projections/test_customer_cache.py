"""The projector's customer cache: projecting with it gives exactly what projecting without it
gives, and every cached entry equals a fresh load from the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import zlib
from decimal import Decimal

import msgspec
import pytest
from sqlalchemy import select

from ledger.demo import generate_business
from ledger.events import FxRatePublished, customer_of
from ledger.ports import LedgerRecord
from projections import schema
from projections.batch import Batch
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.store import ProjectionStore, sqlite_url

PARTITIONS = 3


def demo_records() -> list[LedgerRecord]:
    """The demo business, plus a rate published late (two thirds in, effective two months
    earlier) that restates many cached customers."""
    offsets: dict[int, int] = {}
    records = []
    arrivals = generate_business(seed=4, customers=150, months=12)
    at, _ = arrivals[len(arrivals) * 2 // 3]
    late = FxRatePublished(event_id="late-eur", occurred_at=at, source="test", base="EUR",
                           quote="USD", rate=Decimal("1.2345"), effective_date=(at - dt.timedelta(days=60)).date())
    arrivals.insert(len(arrivals) * 2 // 3 + 1, (at, late))
    for arrival, event in arrivals:
        p = zlib.crc32((customer_of(event) or "ref").encode()) % PARTITIONS
        offsets[p] = offsets.get(p, -1) + 1
        records.append(LedgerRecord(p, offsets[p], msgspec.structs.replace(event, recorded_at=arrival)))
    return records


async def project(store: ProjectionStore, records: list[LedgerRecord], *, cached: bool,
                  cache_size: int = 200_000) -> Projector:
    projector = Projector(store, MrrSettings(), cache_size=cache_size if cached else 0)
    for i in range(0, len(records), 97):  # many small batches: customers come back often
        chunk = records[i : i + 97]
        await projector.apply_batch(chunk, {r.partition: r.offset + 1 for r in chunk})
    return projector


def current_rows(state) -> dict[str, list[tuple]]:
    """A customer state's current rows per table as (id, value), by id."""
    return {name: sorted(((r.id, r.value) for r in state.settled[name] + state.open[name]),
                         key=lambda pair: pair[0])
            for name in state.settled}


async def all_rows(store: ProjectionStore) -> dict[str, list[tuple]]:
    def read(conn):
        return {t.name: sorted(tuple(str(v) for k, v in row._mapping.items() if k != "id")
                               for row in conn.execute(select(t)))
                for t in schema.metadata.sorted_tables}
    return await store.read(read)


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_stores(request, tmp_path):
    if request.param == "sqlite":
        urls = [sqlite_url(tmp_path / "a.sqlite"), sqlite_url(tmp_path / "b.sqlite")]
    else:
        base = request.getfixturevalue("postgres_url")
        urls = [base, base]
    stores = [ProjectionStore.from_url(u) for u in urls]
    if request.param == "sqlite":
        for store in stores:
            await store.create_all()
    yield request.param, stores
    for store in stores:
        await store.close()


async def test_cached_projection_equals_uncached_and_entries_equal_a_fresh_load(two_stores, monkeypatch):
    backend, (a, b) = two_stores
    records = demo_records()
    await a.reset()
    kept_for_rates = []  # cached customers put back after an FX rate restated them
    committed = Batch.committed_customers

    def counting(batch):
        own = {customer_of(r.event) for r in batch.records}
        kept_for_rates.extend(c for c, _ in committed(batch) if c not in own)
        return committed(batch)

    monkeypatch.setattr(Batch, "committed_customers", counting)
    projector = await project(a, records, cached=True)
    cache = projector.customer_cache
    assert cache.hits > 100 and len(cache) > 50
    assert len(kept_for_rates) >= 5  # and their entries are checked below like every other
    with_cache = await all_rows(a)

    def fresh(conn, ids):
        batch = Batch(conn, [], MrrSettings(), projector.fx_table(conn))
        batch._load(ids)
        return batch.customers

    ids = sorted(cache._entries)
    loaded = await a.read(fresh, ids)
    for cid in ids:
        entry, again = cache._entries[cid], loaded[cid]
        assert entry.events == again.events, cid
        assert current_rows(entry) == current_rows(again), cid
        assert (entry.last_recorded, entry.last_fx_lookup) == (again.last_recorded, again.last_fx_lookup)

    await b.reset()  # on PostgreSQL the same database: compare with the first run's rows
    await project(b, records, cached=False)
    assert await all_rows(b) == with_cache


async def test_a_small_cache_keeps_its_capacity_and_changes_nothing(tmp_path):
    records = demo_records()
    small, none = (ProjectionStore.from_url(sqlite_url(tmp_path / f"{n}.sqlite")) for n in ("small", "none"))
    try:
        for store in (small, none):
            await store.create_all()
        projector = await project(small, records, cached=True, cache_size=25)
        assert len(projector.customer_cache) == 25 and projector.customer_cache.hits > 0
        await project(none, records, cached=False)
        assert await all_rows(small) == await all_rows(none)
    finally:
        await small.close()
        await none.close()
