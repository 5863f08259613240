"""`mrr worker` against the real broker and PostgreSQL: projections equal a from-scratch computation."""

from __future__ import annotations

import pytest

from ledger.demo import generate_business
from tests.worker.support import (
    expected_store,
    migrated,
    new_topic,
    publish_arrivals,
    snapshot,
    start_worker,
    wait_caught_up,
)




async def test_worker_projects_the_ledger_like_a_from_scratch_computation(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    arrivals = generate_business(seed=3, customers=150, months=12)
    await publish_arrivals(kafka_bootstrap, topic, arrivals)
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic)
    try:
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])
    finally:
        code = worker.terminate()
    assert code == 0, worker.tail()
    expected = await expected_store(kafka_bootstrap, topic, tmp_path / "expected.sqlite")
    assert await snapshot(url) == await snapshot(expected)
    await expected.close()


def test_worker_refuses_to_run_without_kafka_and_postgres(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from streams.cli.main import cli

    for name in ("MRR_KAFKA_BOOTSTRAP", "MRR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "MRR_KAFKA_BOOTSTRAP" in result.output and "MRR_DATABASE_URL" in result.output
