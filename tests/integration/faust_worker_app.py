"""A minimal Faust app, run as a real worker by test_faust_worker.py.

Its one agent consumes a topic in batches (`stream.take`) and writes each batch to PostgreSQL in
one transaction with one set-based INSERT: the shape of the real projector, without the ledger.
Configured by environment so the test can point it at the servers it started:
  PROOF_KAFKA (host:port), PROOF_DATABASE_URL (postgresql+asyncpg://...), PROOF_TOPIC,
  PROOF_TABLE, PROOF_APP_ID (also the consumer group).
Run: python -m faust -A tests.integration.faust_worker_app worker --without-web
"""

from __future__ import annotations

import os
import uuid

import faust
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

PARTITIONS = 3
BATCH = 200

app = faust.App(
    os.environ.get("PROOF_APP_ID", "mrr-proof"),
    broker=f"kafka://{os.environ.get('PROOF_KAFKA', '127.0.0.1:9092')}",
    store="memory://",  # no Faust tables: Postgres is the state
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
)
topic = app.topic(os.environ.get("PROOF_TOPIC", "proof-faust"), partitions=PARTITIONS,
                  key_type=bytes, value_serializer="json")
TABLE = os.environ.get("PROOF_TABLE", "proof_faust_rows")
INSERT = text(
    f"INSERT INTO {TABLE} (seq, customer, batch_id) "
    "SELECT * FROM unnest(CAST(:seqs AS bigint[]), CAST(:customers AS text[]), "
    "CAST(:batch_ids AS text[]))"
)
engine = create_async_engine(os.environ.get("PROOF_DATABASE_URL", "postgresql+asyncpg:///mrr"))


@app.agent(topic, concurrency=1)
async def project(stream):
    async for values in stream.take(BATCH, within=0.5):
        batch_id = uuid.uuid4().hex
        async with engine.begin() as conn:
            await conn.execute(INSERT, {
                "seqs": [v["seq"] for v in values],
                "customers": [v["customer"] for v in values],
                "batch_ids": [batch_id] * len(values),
            })
