"""The PostgreSQL set-based write path (`projections.bulk`) stores exactly what the portable path does.

Both paths project the same ledger into two schemas of the real server (the stack plugin's
`postgres_url`), and every row of every table is compared as PostgreSQL's own text of the row:
ids, instants, JSON text, NULLs, all of it.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import AsyncIterator

import msgspec
import pytest
from sqlalchemy import Connection, select

from ledger.demo import generate_business
from ledger.events import customer_of, event_type
from ledger.ports import LedgerRecord
from projections import bulk, schema
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.store import ProjectionStore

PARTITIONS = 3


def demo_records(customers: int = 80, months: int = 12) -> list[LedgerRecord]:
    """The demo business (late events, FX rates, cancellations…) as records on 3 partitions."""
    offsets = [0] * PARTITIONS
    records = []
    for arrival, event in generate_business(seed=11, customers=customers, months=months):
        partition = zlib.crc32((customer_of(event) or event_type(event)).encode()) % PARTITIONS
        records.append(LedgerRecord(partition, offsets[partition],
                                    msgspec.structs.replace(event, recorded_at=arrival)))
        offsets[partition] += 1
    return records


async def schema_store(url: str, name: str, portable: bool) -> ProjectionStore:
    admin = ProjectionStore.from_url(url)
    await admin.transaction(lambda c: c.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    await admin.transaction(lambda c: c.exec_driver_sql(f'CREATE SCHEMA "{name}"'))
    await admin.close()
    store = ProjectionStore.from_url(url, connect_args={"server_settings": {"search_path": name}},
                                     execution_options={bulk.PORTABLE: portable})
    await store.create_all()
    return store


@pytest.fixture
async def stores(postgres_url) -> AsyncIterator[dict[bool, ProjectionStore]]:
    """{portable: store}: one schema per path on the real server, dropped afterwards."""
    names = {True: "bulk_test_portable", False: "bulk_test_set_based"}
    opened = {portable: await schema_store(postgres_url, name, portable)
              for portable, name in names.items()}
    yield opened
    for store in opened.values():
        await store.close()
    admin = ProjectionStore.from_url(postgres_url)
    for name in names.values():
        await admin.transaction(lambda c, n=name: c.exec_driver_sql(f'DROP SCHEMA "{n}" CASCADE'))
    await admin.close()


def dump(conn: Connection) -> dict[str, list[str]]:
    """Every row of every table as PostgreSQL's text of the whole row, sorted."""
    return {
        t.name: [text for (text,) in conn.exec_driver_sql(f'SELECT r::text FROM "{t.name}" r ORDER BY 1')]
        for t in schema.metadata.sorted_tables
    }


async def test_set_based_path_writes_the_same_rows_as_the_portable_one(stores):
    assert await stores[True].read(bulk.set_based) is False
    assert await stores[False].read(bulk.set_based) is True
    records = demo_records()
    for portable, store in stores.items():
        projector = Projector(store, MrrSettings())
        for i in range(0, len(records), 250):
            await projector.apply_batch(records[i : i + 250], {})
    portable, set_based = (await stores[True].read(dump)), (await stores[False].read(dump))
    assert portable == set_based
    assert len(set_based["events"]) == len(records)
    assert set_based["fx_rates"] and set_based["customer_attributes"] and set_based["fx_impacts"]

    def superseded_count(conn: Connection) -> int:
        return sum(len(conn.execute(select(t.c.id).where(t.c.superseded_at.is_not(None))).all())
                   for t in schema.BITEMPORAL_TABLES)

    assert await stores[False].read(superseded_count) > 0  # stored rows were superseded in bulk


UTC = dt.timezone.utc
PARIS = dt.timezone(dt.timedelta(hours=1))


async def test_insert_and_supersede_handle_nulls_zones_json_and_big_money(stores):
    at = dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=PARIS)  # stored as 11:30:15 UTC
    rows = [
        {"customer_id": "c1", "effective_at": at, "type": "new", "amount": 2**40 + 1,
         "mrr_before": 0, "mrr_after": 2**40 + 1, "event_ids": ["e1", "é\"2"],
         "recorded_at": at, "superseded_at": None},
        {"customer_id": "c2", "effective_at": at.astimezone(UTC), "type": "churn",
         "amount": -(2**40), "mrr_before": 2**40, "mrr_after": 0, "event_ids": [],
         "recorded_at": at, "superseded_at": at + dt.timedelta(days=1)},
    ]
    events = [{"event_id": f"e{i}", "customer_id": None if i else "c1", "type": "fx.rate_published",
               "occurred_at": at, "recorded_at": at, "partition": 2, "offset": 2**35 + i,
               "body": "{}"} for i in range(3)]

    def write(conn: Connection) -> None:
        bulk.insert_rows(conn, schema.movements, [dict(r) for r in rows])
        bulk.insert_rows(conn, schema.events, events)
        ids = conn.execute(select(schema.movements.c.id).order_by(schema.movements.c.id)).scalars().all()
        bulk.supersede_rows(conn, schema.movements, [{"row_id": ids[0], "at": at},
                                                     {"row_id": ids[0], "at": at + dt.timedelta(hours=2)}])
        bulk.insert_rows(conn, schema.movements, [])
        bulk.supersede_rows(conn, schema.movements, [])

    for store in stores.values():
        await store.transaction(write)
    dumps = [await store.read(dump) for store in stores.values()]
    assert dumps[0] == dumps[1]
    assert any("2024-03-01 11:30:15.123456+00" in row for row in dumps[1]["movements"])
    assert any("1099511627777" in row for row in dumps[1]["movements"])

    def naive(conn: Connection) -> None:
        bulk.insert_rows(conn, schema.movements, [{**rows[0], "recorded_at": at.replace(tzinfo=None)}])

    for store in stores.values():
        with pytest.raises(Exception, match="naive datetime"):
            await store.transaction(naive)


async def test_select_in_reads_every_id_once(stores):
    ids = [f"c{i:05d}" for i in range(1203)]  # more than two portable chunks

    def go(conn: Connection) -> list[str]:
        bulk.insert_rows(conn, schema.customer_mrr, [
            {"customer_id": cid, "valid_from": dt.datetime(2024, 1, 1, tzinfo=UTC), "valid_to": None,
             "mrr": i, "recorded_at": dt.datetime(2024, 1, 1, tzinfo=UTC), "superseded_at": None}
            for i, cid in enumerate(ids)
        ])
        t = schema.customer_mrr
        query = select(t.c.customer_id).order_by(t.c.id)
        wanted = ids[::2] + ["missing"]
        return [cid for result in bulk.select_in(conn, t.c.customer_id, wanted, query.where)
                for cid in result.scalars()]

    for store in stores.values():
        assert await store.transaction(go) == ids[::2]
