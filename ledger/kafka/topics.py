"""Ledger topic administration: create the ledger and dead-letter topics, check existing ones.

The ledger is the system of record (DESIGN.md, decision 1): `cleanup.policy=delete` with
`retention.ms=-1` and `retention.bytes=-1`, so Kafka never deletes or compacts an event. A topic
that would lose events (compacted, or with a finite retention) is refused, never "fixed" in place:
changing the retention of a system of record is a decision for a human.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PARTITIONS = 12
DLQ_SUFFIX = ".dlq"


class TopicSettingsError(RuntimeError):
    """An existing topic's settings would lose ledger events."""


class KafkaSetupError(RuntimeError):
    """The Kafka ledger can not be written: the broker does not answer or the topic is missing."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    """Defaults to `replication_factor - 1` (at most 2) when the factor is above 1."""

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
        if self.replication_factor > 1:
            isr = self.min_insync_replicas or min(2, self.replication_factor - 1)
            if not 1 <= isr <= self.replication_factor:
                raise ValueError(
                    f"min.insync.replicas={isr} must be between 1 and the replication factor "
                    f"({self.replication_factor})"
                )
            configs["min.insync.replicas"] = str(isr)
        return configs


@dataclass
class TopicStatus:
    name: str
    created: bool
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def dlq_name(ledger_topic: str) -> str:
    return ledger_topic + DLQ_SUFFIX


async def require_topic(bootstrap: str, topic: str) -> None:
    """Raise `KafkaSetupError` unless `topic` exists on the cluster at `bootstrap`.

    Asks for the list of all topics: a metadata request naming the topic would create it on a
    broker with `auto.create.topics.enable`, and topics are only made by `mrr topics create`."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        topics = await admin.list_topics()
    except Exception as exc:  # noqa: BLE001 - any client error here means "cannot use Kafka"
        raise KafkaSetupError(f"Kafka at {bootstrap} does not answer: {exc!r}") from exc
    finally:
        await admin.close()
    if topic not in topics:
        raise KafkaSetupError(
            f"Kafka topic {topic!r} does not exist at {bootstrap}; create it with "
            "`mrr topics create` (topics are never auto-created)"
        )


def check_configs(name: str, configs: dict[str, str]) -> None:
    """Raise `TopicSettingsError` if a topic with these configs could lose events."""
    problems = []
    policy = configs.get("cleanup.policy", "")
    if "compact" in policy:
        problems.append(f"cleanup.policy={policy} (compaction keeps only the last event per key)")
    for key in ("retention.ms", "retention.bytes"):
        if configs.get(key, "-1") != "-1":
            problems.append(f"{key}={configs[key]} (finite retention deletes old events)")
    if problems:
        raise TopicSettingsError(
            f"topic {name!r} cannot hold the ledger: {'; '.join(problems)}. The ledger needs "
            "cleanup.policy=delete, retention.ms=-1 and retention.bytes=-1; fix the topic "
            "(kafka-configs --alter) or choose another ledger_topic."
        )


async def ensure_topics(
    bootstrap: str,
    ledger_topic: str,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> list[TopicStatus]:
    """Create the ledger topic and `<ledger>.dlq` if missing; check both. Returns their status.

    An existing topic keeps its partition count (it is fixed at creation: changing it would move
    customers to other partitions); the caller reports it."""
    from aiokafka.admin import AIOKafkaAdminClient

    specs = [
        TopicSpec(name, partitions, replication_factor, min_insync_replicas)
        for name in (ledger_topic, dlq_name(ledger_topic))
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for spec in specs:  # refuse a bad existing topic before creating anything
            if spec.name in existing:
                check_configs(spec.name, await describe_topic_configs(admin, spec.name))
        created: set[str] = set()
        # One at a time, ledger first: a topic created moments ago by someone else may be missing
        # from the list above; then creating it answers "already exists", and it is checked
        # before the next one is created.
        for spec in specs:
            if spec.name in existing:
                continue
            made = await _create(admin, [spec])
            await _wait_until_visible(admin, spec.name)
            if made:
                created |= made
            else:
                check_configs(spec.name, await describe_topic_configs(admin, spec.name))
        statuses = []
        for spec in specs:
            configs = await describe_topic_configs(admin, spec.name)
            check_configs(spec.name, configs)
            statuses.append(
                TopicStatus(spec.name, spec.name in created, await _partitions(admin, spec.name),
                            configs)
            )
        return statuses
    finally:
        await admin.close()


async def _create(admin, specs: list[TopicSpec]) -> set[str]:
    from aiokafka.admin import NewTopic
    from aiokafka.errors import for_code

    if not specs:
        return set()
    response = await admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs())
         for s in specs]
    )
    created = set()
    for name, code, *rest in response.topic_errors:
        if code == 36:  # TOPIC_ALREADY_EXISTS: another process won the race; it gets checked
            continue
        if code:
            message = rest[0] if rest else ""
            raise for_code(code)(f"creating topic {name!r}: {message}")
        created.add(name)
    return created


async def _wait_until_visible(admin, name: str, timeout: float = 15.0) -> None:
    """Wait until the broker's metadata has the new topic (creation returns before every broker
    learned of it, and describing it meanwhile fails with UNKNOWN_TOPIC_OR_PARTITION)."""
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            [topic] = await admin.describe_topics([name])
            if topic["error_code"] == 0 and topic["partitions"]:
                return
            await asyncio.sleep(0.05)


async def describe_topic_configs(admin, name: str) -> dict[str, str]:
    """The topic's effective configs (explicit and broker defaults)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import for_code

    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    configs: dict[str, str] = {}
    for code, message, _type, _name, entries in response.resources:
        if code:
            raise for_code(code)(f"describing topic {name!r}: {message}")
        for entry in entries:
            configs[entry[0]] = entry[1]
    return configs


async def _partitions(admin, name: str) -> int:
    [topic] = await admin.describe_topics([name])
    return len(topic["partitions"])
