"""Proof: the Prometheus fixture scrapes a prometheus_client endpoint and answers queries."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.stack.prometheus import query
from tests.stack.base import free_port

pytestmark = pytest.mark.prometheus


async def test_prometheus_sees_a_scraped_metric(prometheus_server: Callable[[str], str]) -> None:
    registry = CollectorRegistry()
    Gauge("mrr_stack_probe", "Set by the test stack's proof test.", registry=registry).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        base = prometheus_server(f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: probe
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
        result: list[dict] = []
        async with asyncio.timeout(30):
            while not result:
                await asyncio.sleep(0.5)
                result = await asyncio.to_thread(query, base, 'mrr_stack_probe{job="probe"}')
        assert float(result[0]["value"][1]) == 42.0
        assert result[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)
