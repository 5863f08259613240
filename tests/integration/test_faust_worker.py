"""Proof: a real Faust worker (faust-streaming, subprocess) consumes the real broker in batches
and writes rows to the real PostgreSQL through SQLAlchemy async + asyncpg."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration import faust_worker_app
from tests.stack.base import spawn, stop_process, tail

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 1_000


async def test_faust_worker_writes_batches_to_postgres(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    topic, table, app_id = f"proof-faust-{run}", f"proof_faust_{run}", f"mrr-proof-{run}"

    # Faust must find its topics, with the partition count it declares, already there.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(topic, faust_worker_app.PARTITIONS, 1),
            NewTopic(f"{app_id}-__assignor-__leader", 1, 1),
        ])
    finally:
        await admin.close()
    engine = create_async_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(text(
            f"CREATE TABLE {table} (seq bigint PRIMARY KEY, customer text NOT NULL, "
            "batch_id text NOT NULL)"))

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        for seq in range(MESSAGES):
            customer = f"c{seq % 50}"
            await producer.send(topic, key=customer.encode(),
                                value=json.dumps({"seq": seq, "customer": customer}).encode())
        await producer.flush()
    finally:
        await producer.stop()

    log = tmp_path / "faust-worker.log"
    env = dict(os.environ, PROOF_KAFKA=kafka_bootstrap, PROOF_DATABASE_URL=postgres_url,
               PROOF_TOPIC=topic, PROOF_TABLE=table, PROOF_APP_ID=app_id,
               PYTHONPATH=str(REPO))
    worker = spawn([sys.executable, "-m", "faust", "-A", "tests.integration.faust_worker_app",
                    "worker", "--without-web", "--loglevel", "info"],
                   log, cwd=tmp_path, env=env)
    try:
        count = 0
        async with asyncio.timeout(60):
            while count < MESSAGES:
                assert worker.poll() is None, f"worker exited:\n{tail(log)}"
                await asyncio.sleep(0.3)
                async with engine.connect() as conn:
                    count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
        async with engine.connect() as conn:
            seqs = (await conn.execute(text(f"SELECT seq FROM {table} ORDER BY seq"))).scalars()
            batches = (await conn.execute(
                text(f"SELECT count(DISTINCT batch_id) FROM {table}"))).scalar()
        assert list(seqs) == list(range(MESSAGES))
        assert batches < MESSAGES / 10, "the agent did not consume in batches"
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc!r}\n--- Faust worker log ---\n{tail(log)}") from exc
    finally:
        await asyncio.to_thread(stop_process, worker, 20)
        await engine.dispose()
    assert worker.returncode is not None
