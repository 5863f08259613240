"""`mrr replay` against a real broker and a real PostgreSQL: the rebuild equals the live
projection, a replay during live ingestion hands over without loss or double count, and a
killed replay leaves the live projections serving and resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.demo import generate_business
from tests.replay.support import bridge_report, json_lines, live_projection, mrr_env, run_mrr
from tests.worker.support import (
    MRR,
    assert_equals_from_scratch,
    end_offsets,
    migrated,
    new_topic,
    publish_arrivals,
    snapshot,
    start_worker,
    wait_caught_up,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def schemas(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'mrr_%'"))
            return {name for (name,) in rows}
    finally:
        await engine.dispose()


async def test_replay_of_the_demo_business_equals_the_live_projection(kafka_bootstrap, fresh_database, tmp_path):
    topic, url = await live_projection(tmp_path, kafka_bootstrap, fresh_database)
    live = await snapshot(url)
    env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
    bridge_before = bridge_report(env)

    done = run_mrr(["replay", "--json"], env)
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    phases = [line["phase"] for line in lines]
    assert phases[:1] == ["reading"] and "verifying" in phases and "swapping" in phases
    progress = [line for line in lines if line["phase"] == "computing" and "done" in line]
    assert progress and all(0 <= line["done"] <= line["total"] for line in progress)
    result = lines[-1]
    assert result["stage"] == "swapped" and result["verify_differences"] == 0
    assert result["events"] == len(live["events"]) and result["swapped_into"] == "public"

    replayed = await snapshot(url)
    for key in live:
        assert replayed[key] == live[key], f"{key} differs after the replay"
    assert await schemas(url) == set()  # replay and retired schemas are gone
    assert bridge_report(env) == bridge_before
    verified = run_mrr(["verify"], env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_replay_during_live_ingestion_then_swap_loses_and_double_counts_nothing(
        kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    arrivals = generate_business(seed=33, customers=900, months=12)
    first = int(len(arrivals) * 0.6)
    await publish_arrivals(kafka_bootstrap, topic, arrivals[:first])
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name="live", extra_env={"MRR_BATCH_SIZE": "500"})
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker], timeout=240)
        env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
        replay = await asyncio.create_subprocess_exec(MRR, "replay", "--json", env=env,
                                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rest = arrivals[first:]
        step = max(len(rest) // 12, 1)
        for i in range(0, len(rest), step):  # keep publishing while the replay runs
            await publish_arrivals(kafka_bootstrap, topic, rest[i:i + step])
            await asyncio.sleep(0.25)
        out, err = await asyncio.wait_for(replay.communicate(), timeout=300)
        assert replay.returncode == 0, err.decode()
        result = json_lines(out.decode())[-1]
        assert result["stage"] == "swapped"
        total = sum((await end_offsets(kafka_bootstrap, topic)).values())
        assert sum(result["ends"].values()) < total, "the replay should have started before ingestion ended"
        await wait_caught_up(kafka_bootstrap, topic, url, [worker], timeout=240)
    finally:
        assert worker.terminate() == 0, worker.tail()
    # The worker had committed past the replay's end offsets: after the swap it was fenced and
    # carried on from the swapped-in offsets, reading the range the replay did not cover.
    assert "batch fenced" in worker.log.read_text(), worker.tail()
    got = await assert_equals_from_scratch(kafka_bootstrap, topic, url, tmp_path)
    assert len(got["events"]) == total  # none lost; ids are unique, so none counted twice


@pytest.mark.parametrize("kill_at", ["computing", "verifying"])
async def test_a_killed_replay_leaves_the_live_projections_serving_and_resumes(
        kafka_bootstrap, fresh_database, tmp_path, kill_at):
    topic, url = await live_projection(tmp_path, kafka_bootstrap, fresh_database, customers=200)
    live = await snapshot(url)
    env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
    bridge_before = bridge_report(env)

    proc = subprocess.Popen([MRR, "replay", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.extend(line["phase"] for line in json_lines(line))
        if kill_at in seen:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, f"replay ended before {kill_at}: {seen}"

    assert await snapshot(url) == live  # the live projections are untouched and still serve
    assert bridge_report(env) == bridge_before
    assert "mrr_replay" in await schemas(url)
    again = run_mrr(["replay"], env)
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = run_mrr(["replay", "--resume", "--json"], env)
    assert resumed.returncode == 0, resumed.stderr
    phases = [line["phase"] for line in json_lines(resumed.stdout)]
    assert ("loading" in phases) == (kill_at == "computing")  # loaded before the kill: not loaded again
    assert json_lines(resumed.stdout)[-1]["stage"] == "swapped"
    replayed = await snapshot(url)
    for key in live:
        assert replayed[key] == live[key], f"{key} differs after the resumed replay"
    assert await schemas(url) == set()


async def test_abort_drops_an_interrupted_replay(kafka_bootstrap, fresh_database, tmp_path):
    topic, url = await live_projection(tmp_path, kafka_bootstrap, fresh_database, customers=50, months=6)
    env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
    proc = subprocess.Popen([MRR, "replay", "--json"], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if any(l["phase"] == "computing" for l in json_lines(line)):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    assert "mrr_replay" in await schemas(url)
    aborted = run_mrr(["replay", "--abort"], env)
    assert aborted.returncode == 0, aborted.stderr
    assert await schemas(url) == set()
    assert run_mrr(["replay", "--resume"], env).returncode == 2
