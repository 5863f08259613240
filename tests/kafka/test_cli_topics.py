"""`mrr topics create` against the real broker, and its usage errors without one."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from streams.cli.main import cli


def run(tmp_path: Path, *args: str, **env: str) -> Any:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    environ = {"MRR_KAFKA_BOOTSTRAP": "", "MRR_CONFIG": str(tmp_path / "absent.toml"), **env}
    return runner.invoke(cli, ["topics", "create", *args], env=environ)


def test_creates_then_checks(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = f"cli-ledger-{uuid.uuid4().hex[:8]}"
    first = run(tmp_path, "--topic", topic, "--partitions", "2", MRR_KAFKA_BOOTSTRAP=kafka_bootstrap)
    assert first.exit_code == 0, first.output + first.stderr
    assert f"{topic}: created; 2 partitions; cleanup.policy=delete, retention.ms=-1" in first.output
    assert f"{topic}.dlq: created; 2 partitions" in first.output
    again = run(tmp_path, "--bootstrap", kafka_bootstrap, "--topic", topic)
    assert again.exit_code == 0, again.output + again.stderr
    assert f"{topic}: exists, checked; 2 partitions" in again.output


def test_refuses_a_compacted_ledger(tmp_path: Path, kafka_bootstrap: str) -> None:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"cli-compacted-{uuid.uuid4().hex[:8]}"

    async def make() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
            )
        finally:
            await admin.close()

    asyncio.run(make())
    result = run(tmp_path, "--bootstrap", kafka_bootstrap, "--topic", topic)
    assert result.exit_code == 1
    assert "cannot hold the ledger: cleanup.policy=compact" in result.stderr
    assert "created" not in result.output  # nothing is created next to a refused ledger


def test_without_kafka_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.exit_code == 2
    assert "no Kafka configured" in result.stderr
