"""429 + Retry-After from a real Kafka producer that cannot deliver: the API on its own broker,
which is stopped mid-test. Nothing is reported accepted that Kafka did not acknowledge."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ledger.kafka.topics import ensure_topics
from streams.cli.serve import api_settings, build_app
from streams.config import load_config
from tests.api.support import AUTH, TOKEN, client
from tests.ledger.factory import started
from tests.stack.kafka import KafkaServer

pytestmark = pytest.mark.kafka


async def test_a_stalled_producer_answers_429_with_retry_after(tmp_path: Path) -> None:
    broker = await asyncio.to_thread(KafkaServer(tmp_path / "kafka").start)
    try:
        await ensure_topics(broker.bootstrap, "ledger", partitions=1)
        config = load_config({"kafka_bootstrap": broker.bootstrap, "ledger_topic": "ledger",
                              "data_dir": str(tmp_path / "data"), "api_tokens": TOKEN,
                              "api_append_timeout_seconds": 2.0}, environ={})
        async with client(build_app(config, api_settings(config))) as http:
            ok = await http.post("/v1/events", content=json.dumps(started("a", customer_id="c")),
                                 headers=AUTH)
            assert ok.status_code == 200 and ok.json()["accepted"] == 1
            await asyncio.to_thread(broker.stop, True)  # the producer can no longer deliver
            busy = await http.post("/v1/events", headers=AUTH,
                                   content=json.dumps([started(f"b{i}", customer_id="c") for i in range(50)]))
    finally:
        await asyncio.to_thread(broker.stop)
    assert busy.status_code == 429, busy.text
    assert int(busy.headers["Retry-After"]) > 0
    assert "nothing was accepted" in busy.json()["detail"]
