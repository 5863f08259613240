"""429 + Retry-After when the Kafka producer cannot take a batch; 503 when the ledger is down.

The writers here fail the way `KafkaLedgerWriter` does: aiokafka raises `KafkaTimeoutError` when
a partition's buffer stays full for `request_timeout_ms`, and a send blocks while it is full
(bounded by `append_timeout_seconds`). The same answer from a real producer whose broker stopped
is in test_kafka_backpressure.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from tests.api.support import AUTH, client, stub_app
from tests.ledger.factory import started

BODY = json.dumps([started("a"), started("b")])


async def buffer_full(events: Any, **_: Any) -> Any:
    raise KafkaTimeoutError()


async def blocks(events: Any, **_: Any) -> Any:
    await asyncio.sleep(60)


async def broker_down(events: Any, **_: Any) -> Any:
    raise KafkaConnectionError("connection refused")


@pytest.mark.parametrize(
    ("append", "settings", "code"),
    [
        (buffer_full, {}, 429),
        (blocks, {"append_timeout_seconds": 0.2}, 429),
        (broker_down, {}, 503),
    ],
    ids=["kafka-timeout", "send-blocks", "broker-down"],
)
async def test_ledger_cannot_take_the_batch(append: Any, settings: dict[str, Any],
                                            code: int) -> None:
    async with client(stub_app(append, retry_after_seconds=3, **settings)) as http:
        response = await http.post("/v1/events", content=BODY, headers=AUTH)
    assert response.status_code == code
    assert response.headers["retry-after"] == "3"
    body = response.json()
    assert body["status_code"] == code
    assert "nothing was accepted" in body["detail"]
    assert "accepted" not in body  # never a per-event "accepted"


async def test_invalid_events_are_rejected_before_the_ledger_is_asked() -> None:
    async with client(stub_app(buffer_full)) as http:
        response = await http.post("/v1/events", content=b'{"type": 1}', headers=AUTH)
    assert response.status_code == 422
