"""Exactly once in effect under failure: SIGKILL at random moments, a failing batch that Faust
acked anyway, PostgreSQL down for 10 s, two workers with one killed. Real servers throughout;
every test ends by comparing the projections with a from-scratch computation of the topic."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.demo import generate_business
from tests.worker.support import (
    assert_equals_from_scratch,
    end_offsets,
    migrated,
    new_topic,
    publish_arrivals,
    start_worker,
    stored_offsets,
    wait_caught_up,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def applied_count(url: str) -> int:
    return sum((await stored_offsets(url)).values())


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    arrivals = generate_business(seed=11, customers=13_500, months=24)
    assert len(arrivals) >= 100_000
    await publish_arrivals(kafka_bootstrap, topic, arrivals)
    total = sum((await end_offsets(kafka_bootstrap, topic)).values())
    rng = random.Random(20261123)
    kills, progress = 0, [0]
    # Each run: wait until the worker has committed something new (so it is mid-stream), then
    # kill it at a random moment up to 1.5 s later, mostly inside a batch's transaction.
    env = {"MRR_BATCH_SIZE": "2000"}
    while kills < 5:
        worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name=f"k{kills}", extra_env=env)
        deadline = time.monotonic() + 60
        while await applied_count(url) <= progress[-1]:
            assert worker.alive(), worker.tail()
            assert time.monotonic() < deadline, f"no progress after start {kills}:\n{worker.tail()}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        worker.kill()
        kills += 1
        progress.append(await applied_count(url))
        assert progress[-1] < total, f"caught up before kill {kills}: make the ledger bigger"
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name="final", extra_env=env)
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker], timeout=300)
    finally:
        assert worker.terminate() == 0, worker.tail()
    got = await assert_equals_from_scratch(kafka_bootstrap, topic, url, tmp_path)
    assert len(got["events"]) == total  # every record applied, none twice (event ids are unique)
    assert sorted(progress) == progress and len(set(progress)) == len(progress)


INJECT = """
CREATE SEQUENCE fault_hits;
CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.event_id = '{event_id}' AND nextval('fault_hits') <= {times} THEN
    RAISE EXCEPTION 'injected failure for %', NEW.event_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER inject_fault BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION inject_fault();
"""


async def inject_fault(url: str, event_id: str, times: int) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for statement in INJECT.format(event_id=event_id, times=times).split(";\nCREATE"):
            sql = statement if statement.lstrip().startswith("CREATE") else "CREATE" + statement
            await conn.execute(text(sql))
    await engine.dispose()


async def committed_group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def test_a_transient_failure_is_retried_in_place(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    arrivals = generate_business(seed=5, customers=300, months=12)
    victim = arrivals[len(arrivals) // 2][1].event_id
    await inject_fault(url, victim, times=2)
    await publish_arrivals(kafka_bootstrap, topic, arrivals)
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic)
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])
    finally:
        assert worker.terminate() == 0, worker.tail()
    log = worker.log.read_text()
    assert "injected failure" in log and "retry 2 of 3" in log
    await assert_equals_from_scratch(kafka_bootstrap, topic, url, tmp_path)


async def test_a_failing_batch_stops_the_worker_and_is_applied_after_recovery(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap, partitions=1)
    arrivals = generate_business(seed=6, customers=400, months=12)
    victim_index = len(arrivals) // 2
    victim = arrivals[victim_index][1].event_id
    await inject_fault(url, victim, times=1_000_000)
    await publish_arrivals(kafka_bootstrap, topic, arrivals)
    group = f"g-{topic}"
    env = {"MRR_APPLY_RETRIES": "1", "MRR_BATCH_SIZE": "500"}
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name="failing", group=group, extra_env=env)
    code = await asyncio.to_thread(worker.proc.wait, 120)
    assert code == 70, worker.tail()
    log = worker.log.read_text()
    assert "injected failure" in log and "cannot continue" in log
    stored = (await stored_offsets(url)).get(0, 0)
    assert stored <= victim_index  # the failing batch is not applied (nor skipped)
    # Faust acked the failed batch anyway: its committed offset is past the stored one.
    committed = (await committed_group_offsets(kafka_bootstrap, group, topic)).get(0, 0)
    assert committed > stored, (committed, stored)

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER inject_fault ON events"))
    await engine.dispose()
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name="recovered", group=group, extra_env=env)
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])
    finally:
        assert worker.terminate() == 0, worker.tail()
    assert "were not applied (the consumer was ahead" in worker.log.read_text()
    got = await assert_equals_from_scratch(kafka_bootstrap, topic, url, tmp_path)
    assert victim in {row[0] for row in got["events"]}


async def test_postgres_down_for_ten_seconds_mid_stream(kafka_bootstrap, fresh_database, restart_postgres, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    arrivals = generate_business(seed=8, customers=6000, months=24)
    await publish_arrivals(kafka_bootstrap, topic, arrivals)
    total = sum((await end_offsets(kafka_bootstrap, topic)).values())
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, extra_env={"MRR_BATCH_SIZE": "1000"})
    try:
        deadline = time.monotonic() + 60
        while (done := await applied_count(url)) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert 0 < done < total, "stop Postgres mid-stream: make the ledger bigger"
        await asyncio.to_thread(restart_postgres, 10.0)
        assert worker.alive(), worker.tail()
        await wait_caught_up(kafka_bootstrap, topic, url, [worker], timeout=180)
    finally:
        assert worker.terminate() == 0, worker.tail()
    assert "server unreachable" in worker.log.read_text()
    await assert_equals_from_scratch(kafka_bootstrap, topic, url, tmp_path)


async def test_two_workers_split_partitions_and_one_survives_the_other(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    arrivals = generate_business(seed=9, customers=8000, months=24)
    await publish_arrivals(kafka_bootstrap, topic, arrivals)
    total = sum((await end_offsets(kafka_bootstrap, topic)).values())
    group = f"g-{topic}"
    env = {"MRR_BATCH_SIZE": "1000", "MRR_WORKER_SESSION_TIMEOUT_SECONDS": "6"}
    a = start_worker(tmp_path, kafka_bootstrap, url, topic, name="a", group=group, extra_env=env)
    b = start_worker(tmp_path, kafka_bootstrap, url, topic, name="b", group=group, extra_env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            offsets = await stored_offsets(url)
            if len([p for p, o in offsets.items() if o > 0]) >= 3:
                break
            await asyncio.sleep(0.2)
        assert "rebalance: partitions" in a.log.read_text() + b.log.read_text()
        assert sum((await stored_offsets(url)).values()) < total, "kill mid-stream: make the ledger bigger"
        b.kill()
        await wait_caught_up(kafka_bootstrap, topic, url, [a], timeout=180)
    finally:
        b.kill()
        assert a.terminate() == 0, a.tail()
    await assert_equals_from_scratch(kafka_bootstrap, topic, url, tmp_path)
