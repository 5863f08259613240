"""Through the real stack: `mrr serve` (uvicorn subprocess) on a Kafka topic, events posted with
`LedgerClient.http` and a signed Stripe webhook, then `mrr worker` projects them into PostgreSQL.
The projections must equal those computed from scratch from the topic, and hold the posted
customers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx

from ledger.client import LedgerClient, item, terms
from tests.adapters.test_stripe import FIXTURES, sign
from tests.api.support import TOKEN
from tests.api.test_cli_serve import free_port
from tests.stack.base import spawn, tail
from tests.worker.support import (
    expected_store,
    migrated,
    new_topic,
    snapshot,
    start_worker,
    wait_caught_up,
)

SECRET = "whsec_stack_test"
MRR = str(Path(sys.executable).with_name("mrr"))


async def wait_ready(base: str, server: object, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            assert server.poll() is None, f"mrr serve exited:\n{tail(log, 40)}"  # type: ignore[attr-defined]
            try:
                if (await http.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"mrr serve not ready:\n{tail(log, 40)}"
            await asyncio.sleep(0.2)


async def test_posted_events_and_a_stripe_webhook_are_projected_by_the_worker(
    tmp_path: Path, kafka_bootstrap: str, fresh_database: str
) -> None:
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env |= {"MRR_KAFKA_BOOTSTRAP": kafka_bootstrap, "MRR_LEDGER_TOPIC": topic,
            "MRR_API_TOKENS": TOKEN, "MRR_API_PORT": str(port),
            "MRR_STRIPE_WEBHOOK_SECRET": SECRET, "MRR_DATA_DIR": str(tmp_path / "data"),
            "MRR_CONFIG": str(tmp_path / "absent.toml"), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "serve.log"
    server = spawn([MRR, "serve"], log, cwd=tmp_path, env=env)
    try:
        await wait_ready(base, server, log)
        async with LedgerClient.http(base, TOKEN, source="stack-test") as ledger:
            at = {"occurred_at": "2024-03-01T00:00:00Z"}
            events = [
                ledger.subscription_started(event_id="a-start", customer_id="c-a",
                                            subscription_id="s-a", **at,
                                            terms=terms("active", "USD", [item("pro", 10_000)])),
                ledger.subscription_updated(event_id="a-up", customer_id="c-a",
                                            subscription_id="s-a",
                                            occurred_at="2024-04-01T00:00:00Z",
                                            terms=terms("active", "USD", [item("pro", 15_000)])),
                ledger.subscription_started(event_id="b-start", customer_id="c-b",
                                            subscription_id="s-b", **at,
                                            terms=terms("active", "EUR",
                                                        [item("team", 12_000, interval="year")])),
                ledger.subscription_canceled(event_id="b-end", customer_id="c-b",
                                             subscription_id="s-b",
                                             occurred_at="2024-05-01T00:00:00Z"),
                ledger.fx_rate_published(event_id="fx-eur", base="EUR", quote="USD",
                                         rate="1.0850", effective_date="2024-01-01", **at),
            ]
            published = await ledger.publish(events)
            assert [p.status for p in published] == ["accepted"] * len(events)
        payload = (FIXTURES / "subscription_created_multi_item_coupon.json").read_bytes()
        async with httpx.AsyncClient() as http:
            answers = [await http.post(f"{base}/v1/webhooks/stripe", content=payload,
                                       headers={"Stripe-Signature": sign(payload, int(time.time()), SECRET)})
                       for _ in range(2)]  # a redelivery: Kafka stores it again
    finally:
        server.terminate()
        server.wait(timeout=20)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "processed" and answer.json()["accepted"] >= 1
    stripe_ids = [r["event_id"] for r in answers[0].json()["results"]]
    assert stripe_ids[0] == "evt_1OpMultiItemCoupon0001"

    worker = start_worker(tmp_path, kafka_bootstrap, url, topic)
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])
    finally:
        assert worker.terminate() == 0, worker.tail()

    got = await snapshot(url)
    expected = await expected_store(kafka_bootstrap, topic, tmp_path / "expected.sqlite")
    try:
        assert got == await snapshot(expected)
    finally:
        await expected.close()
    projected_ids = [row[0] for row in got["events"]]
    assert projected_ids == sorted([e.event_id for e in events] + stripe_ids)  # each id once
    customers = {row[0] for row in got["customer_mrr"]}
    assert {"c-a", "c-b", "cus_Multi"} <= customers
    current_a = sorted((row[1], row[3]) for row in got["customer_mrr"] if row[0] == "c-a")
    assert current_a[-1][1] == "15000"  # USD 150.00 (minor units) since April
    assert sum(got["offsets"].values()) == len(events) + 2 * len(stripe_ids)
