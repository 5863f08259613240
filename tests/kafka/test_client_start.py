"""A Kafka client whose start fails (no broker) is stopped again: no half-started aiokafka
client is left holding connections (aiokafka warns "Unclosed AIOKafka…" when one is collected).
No server needed: nothing listens on the port."""

from __future__ import annotations

import gc
import socket
import warnings

import pytest

from ledger.kafka.reader import KafkaLedgerReader
from ledger.kafka.writer import KafkaLedgerWriter


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"  # closed again when this returns


@pytest.mark.parametrize("make", [
    lambda bootstrap: KafkaLedgerReader(bootstrap, "ledger", request_timeout_ms=1000),
    lambda bootstrap: KafkaLedgerWriter(bootstrap, "ledger"),
], ids=["reader", "writer"])
async def test_a_failed_start_leaves_no_unclosed_client(make):
    client = make(closed_port())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception):
            await client.start()
        gc.collect()
    unclosed = [w for w in caught if "Unclosed" in str(w.message)]
    assert not unclosed, [str(w.message) for w in unclosed]
