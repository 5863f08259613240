"""`mrr verify` against a real broker and PostgreSQL (and on the embedded default): passes on a
healthy projection, also while a worker is writing, and names what a corrupted row broke."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.demo import generate_business
from tests.replay.support import live_projection, mrr_env, run_mrr
from tests.worker.support import MRR, publish_arrivals, start_worker, wait_caught_up


async def execute(url: str, sql: str) -> list[tuple]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql))
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.kafka
@pytest.mark.postgres
async def test_verify_passes_on_a_healthy_projection_and_detects_a_corrupted_row(
        kafka_bootstrap, fresh_database, tmp_path):
    topic, url = await live_projection(tmp_path, kafka_bootstrap, fresh_database, customers=150)
    env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
    healthy = run_mrr(["verify"], env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "no differences" in healthy.stdout
    [(stored,)] = await execute(url, "SELECT value FROM projection_meta WHERE key = 'verify'")
    assert json.loads(stored)["differences"] == 0

    [(customer, month)] = await execute(url, (
        "UPDATE movements SET amount = amount + 500 WHERE id = (SELECT min(id) FROM movements "
        "WHERE superseded_at IS NULL AND type = 'new_business') "
        "RETURNING customer_id, to_char(effective_at AT TIME ZONE 'UTC', 'YYYY-MM')"))
    broken = run_mrr(["verify", "--jobs", "3"], env)  # customers checked in 3 forked slices
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"customer {customer}" in broken.stdout and f"bridge {month} new_business" in broken.stdout
    as_json = run_mrr(["verify", "--json", "--jobs", "1"], env)  # and in this process
    assert as_json.stdout, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and payload["ok"] is False and payload["difference_count"] == 4
    assert {(d["table"], d["kind"], d["customer_id"]) for d in payload["differences"]} == {
        ("movements", "missing", customer), ("movements", "unexpected", customer),
        ("bridge_totals", "different", None)}  # the totals the projector kept no longer match the rows
    [totals] = [d["row"] for d in payload["differences"] if d["table"] == "bridge_totals"]
    stored_amount, rows_amount = (int(part.split(" over ")[0].rsplit(" ", 1)[1]) for part in totals.split(", the rows"))
    assert " new_business: stored " in totals and rows_amount - stored_amount == 500
    assert [(b["month"], b["type"], b["actual"] - b["expected"]) for b in payload["bridge"]] == [
        (month, "new_business", 500)]
    [(stored,)] = await execute(url, "SELECT value FROM projection_meta WHERE key = 'verify'")
    assert json.loads(stored)["differences"] == 4


@pytest.mark.kafka
@pytest.mark.postgres
async def test_verify_is_consistent_while_a_worker_is_writing(kafka_bootstrap, fresh_database, tmp_path):
    topic, url = await live_projection(tmp_path, kafka_bootstrap, fresh_database, customers=100, months=8)
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name="busy", extra_env={"MRR_BATCH_SIZE": "200"})
    try:
        env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
        verify = await asyncio.create_subprocess_exec(MRR, "verify", "--no-record", env=env,
                                                      stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        more = generate_business(seed=77, customers=400, months=8)
        for i in range(0, len(more), 400):
            await publish_arrivals(kafka_bootstrap, topic, more[i:i + 400])
        out, err = await verify.communicate()
        assert verify.returncode == 0, out.decode() + err.decode()
        await wait_caught_up(kafka_bootstrap, topic, url, [worker], timeout=240)
    finally:
        assert worker.terminate() == 0, worker.tail()
    final = run_mrr(["verify"], mrr_env(tmp_path, kafka_bootstrap, url, topic))
    assert final.returncode == 0, final.stdout + final.stderr


def test_verify_on_the_embedded_default(tmp_path):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    demo = subprocess.run([MRR, "demo", "--customers", "60", "--out", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    env["MRR_DATA_DIR"] = str(tmp_path / "out" / "data")  # where `mrr demo --out` keeps its data
    ok = subprocess.run([MRR, "verify"], env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    import sqlite3

    db = sqlite3.connect(tmp_path / "out" / "data" / "projections.sqlite")
    with db:
        db.execute("DELETE FROM customer_mrr WHERE id = (SELECT max(id) FROM customer_mrr WHERE superseded_at IS NULL)")
    db.close()
    bad = subprocess.run([MRR, "verify"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "customer_mrr: customer " in bad.stdout, bad.stdout + bad.stderr
