"""End to end: the same business through the embedded default and through Kafka + `mrr worker` +
PostgreSQL gives the same reports, row for row."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from ledger.demo import generate_business
from tests.streams.test_cli_backends import mrr, record_arrivals
from tests.worker.support import migrated, new_topic, publish_arrivals, start_worker, wait_caught_up

START, MONTHS = dt.date(2023, 1, 1), 12
END = "2024-01-01T00:00:00Z"
MID = "2023-07-15T00:00:00Z"
REPORTS = [
    ["bridge", "--period", "month"],
    ["kpis", "--period", "quarter"],
    ["snapshot", "--period", "month"],
    ["movements", "--period", "month"],
]


async def through_kafka(tmp_path: Path, bootstrap: str, url: str, arrivals) -> str:
    topic = await new_topic(bootstrap)
    await publish_arrivals(bootstrap, topic, arrivals)
    worker = start_worker(tmp_path, bootstrap, url, topic)
    try:
        await wait_caught_up(bootstrap, topic, url, [worker])
    finally:
        assert worker.terminate() == 0, worker.tail()
    return topic


def test_demo_business_reports_equal_on_both_paths(tmp_path: Path, kafka_bootstrap: str, fresh_database: str) -> None:
    arrivals = generate_business(seed=21, customers=400, months=MONTHS, start=START)
    record_arrivals(tmp_path / "data", arrivals)
    url = asyncio.run(migrated(fresh_database))
    topic = asyncio.run(through_kafka(tmp_path, kafka_bootstrap, url, arrivals))
    production = {"MRR_KAFKA_BOOTSTRAP": kafka_bootstrap, "MRR_LEDGER_TOPIC": topic, "MRR_DATABASE_URL": url}
    compared = 0
    for report in REPORTS:
        for known_at in (MID, END):  # as known mid-year (before late events) and at the end
            args = ["report", *report, "--json", "--from", "2023-01", "--to", "2023-12",
                    "--as-of", END, "--known-at", known_at]
            embedded = mrr(tmp_path, *args)
            kafka = mrr(tmp_path, *args, **production)
            assert embedded.exit_code == 0, embedded.output + embedded.stderr
            assert kafka.exit_code == 0, kafka.output + kafka.stderr
            want, got = json.loads(embedded.stdout), json.loads(kafka.stdout)
            assert want["rows"], f"{report} has no rows"
            assert got == want, f"{report[0]} known at {known_at} differs"
            compared += len(want["rows"])
    assert compared > 100
