"""The API on the real Kafka ledger (`mrr serve` with MRR_KAFKA_BOOTSTRAP): events posted arrive
in the topic; readiness follows the topic."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.api import ApiSettings
from ledger.kafka.reader import KafkaLedgerReader
from ledger.kafka.topics import ensure_topics
from streams.cli.serve import api_settings, build_app
from streams.config import load_config
from tests.api.support import AUTH, TOKEN, client
from tests.kafka.test_kafka_ledger import new_topic
from tests.ledger.contract import read_all
from tests.ledger.factory import fx, started, with_


def kafka_config(tmp_path: Path, bootstrap: str, topic: str):  # type: ignore[no-untyped-def]
    return load_config({"kafka_bootstrap": bootstrap, "ledger_topic": topic,
                        "data_dir": str(tmp_path / "data"), "api_tokens": TOKEN}, environ={})


async def test_posted_events_arrive_in_the_topic(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = new_topic()
    await ensure_topics(kafka_bootstrap, topic, partitions=3)
    config = kafka_config(tmp_path, kafka_bootstrap, topic)
    settings = api_settings(config)
    assert settings.append_timeout_seconds == config.api_append_timeout_seconds
    batch = [started("a", customer_id="cus-a"), fx("b"), started("c", customer_id="cus-c")]
    async with client(build_app(config, settings)) as http:
        ok = await http.post("/v1/events", content=json.dumps(batch), headers=AUTH)
        bad = await http.post("/v1/events", headers=AUTH, content=json.dumps(
            [started("d"), with_(started("e"), "terms.currency", "XYZ")]))
        again = await http.post("/v1/events", content=json.dumps(batch[0]), headers=AUTH)
        ready = await http.get("/readyz")
    assert ok.status_code == 200 and ok.json()["accepted"] == 3
    assert bad.status_code == 422
    assert again.status_code == 200  # Kafka cannot tell a re-sent event: stored again
    assert ready.json() == {"status": "ok"}
    async with KafkaLedgerReader(kafka_bootstrap, topic) as reader:
        records = await read_all(reader)
    assert sorted(r.event.event_id for r in records) == ["a", "a", "b", "c"]  # nothing of d, e
    assert all(r.event.recorded_at is not None for r in records)
    assert not (tmp_path / "data").exists()  # the embedded ledger was not used


async def test_readyz_follows_the_topic(tmp_path: Path, kafka_bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    topic = new_topic()
    await ensure_topics(kafka_bootstrap, topic, partitions=1)
    config = kafka_config(tmp_path, kafka_bootstrap, topic)
    settings = ApiSettings(tokens=(TOKEN,), readiness_timeout_seconds=10)
    async with client(build_app(config, settings)) as http:
        assert (await http.get("/readyz")).status_code == 200
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic, topic + ".dlq"])
        finally:
            await admin.close()
        ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
