"""Composition root: builds the ledger, the projection store and the projector from a `Config`.

Embedded default: the ledger is `<data_dir>/ledger.sqlite` and the projections are SQLite at
`<data_dir>/projections.sqlite`. `database_url` names PostgreSQL projections instead (schema by
Alembic, `mrr db upgrade`); `kafka_bootstrap` selects the Kafka ledger (`ledger_topic`), which
`mrr worker` projects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.config import Config

if TYPE_CHECKING:
    from ledger.embedded import EmbeddedLedger
    from ledger.kafka.writer import KafkaLedgerWriter
    from projections.store import ProjectionStore

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
"""Records per projector transaction when catching up from the embedded ledger."""

_FENCING_RETRIES = 3


def ledger_path(config: Config) -> Path:
    return config.data_path / "ledger.sqlite"


def projections_url(config: Config) -> str:
    """The async SQLAlchemy URL of the projections."""
    from projections.store import sqlite_url

    if config.database_url:
        url = config.database_url
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url
    return sqlite_url(config.data_path / "projections.sqlite")


def engine_options(config: Config) -> dict[str, Any]:
    """SQLAlchemy engine options of the projections (PostgreSQL: `database_schema`)."""
    from projections.store import schema_options

    return schema_options(config.database_schema) if config.database_url else {}


async def open_store(config: Config) -> "ProjectionStore":
    """The projection store of `config`, ready to use.

    SQLite: its tables are created if missing. Any other database (PostgreSQL) belongs to
    Alembic: it must already be at the head revision, else `projections.migrate.
    SchemaRevisionError` tells the user to run `mrr db upgrade`; no table is created here."""
    from projections.migrate import require_head
    from projections.store import ProjectionStore

    if not config.database_url:
        config.data_path.mkdir(parents=True, exist_ok=True)
    url = projections_url(config)
    options = engine_options(config)
    store = ProjectionStore.from_url(url, **options)
    if store.dialect == "sqlite":
        await store.create_all()
        return store
    try:
        await require_head(url, options)
    except BaseException:
        await store.close()
        raise
    return store


def open_embedded_ledger(config: Config) -> "EmbeddedLedger":
    """The embedded ledger at `<data_dir>/ledger.sqlite` (created if missing)."""
    from ledger.embedded import EmbeddedLedger

    return EmbeddedLedger(ledger_path(config))


async def open_kafka_writer(config: Config) -> "KafkaLedgerWriter":
    """A started `KafkaLedgerWriter` on `config.ledger_topic`, once the topic is known to exist."""
    from ledger.kafka.topics import require_topic
    from ledger.kafka.writer import KafkaLedgerWriter

    assert config.kafka_bootstrap, "open_kafka_writer needs kafka_bootstrap"
    await require_topic(config.kafka_bootstrap, config.ledger_topic)
    return await KafkaLedgerWriter(config.kafka_bootstrap, config.ledger_topic).start()


async def ensure_settings(store: "ProjectionStore", config: Config) -> bool:
    """Make the projections match `config`'s MRR settings; True if they had to be reset.

    Projections computed with other settings (another reporting currency, churn rule, …) are
    wrong for these ones. With the embedded ledger they are a cache that can be rebuilt, so they
    are dropped; with Kafka they must be rebuilt by a replay, so this raises.
    """
    from projections.projector import SettingsMismatchError, settings_json, settings_match

    stored = await store.stored_settings()
    settings = config.mrr_settings()
    if stored is None or settings_match(stored, settings):
        return False
    if config.kafka_bootstrap:
        raise SettingsMismatchError(
            f"projections were computed with {stored}, not {settings_json(settings)}; replay the ledger"
        )
    log.warning("MRR settings changed (%s -> %s): rebuilding the projections", stored, settings_json(settings))
    await store.reset()
    return True


async def project_pending(
    config: Config,
    *,
    batch_size: int = BATCH_SIZE,
    store: "ProjectionStore | None" = None,
    ledger: "EmbeddedLedger | None" = None,
) -> int:
    """Apply every embedded-ledger record not yet projected; return how many events were applied.

    Reads each partition from its stored offset in batches of `batch_size`, one projector
    transaction per batch. Safe to run concurrently with itself: a batch fenced by another
    process is retried from the new stored offset.
    """
    from projections.projector import FencingError, Projector

    own_store, own_ledger = store is None, ledger is None
    store = store or await open_store(config)
    ledger = ledger or open_embedded_ledger(config)
    try:
        await ensure_settings(store, config)
        projector = Projector(store, config.mrr_settings())
        applied = 0
        ends = await ledger.end_offsets()
        for partition in await ledger.partitions():
            applied += await _catch_up(projector, ledger, partition, ends.get(partition, 0), batch_size,
                                       FencingError)
        return applied
    finally:
        if own_ledger:
            await ledger.close()
        if own_store:
            await store.close()


async def _catch_up(projector, ledger, partition: int, end: int, batch_size: int, fencing) -> int:  # type: ignore[no-untyped-def]
    applied, retries = 0, 0
    while True:
        position = (await projector.store.offsets()).get(partition, 0)
        if position >= end:
            return applied
        records = await ledger.read(partition, position, batch_size)
        if not records:
            return applied
        try:
            result = await projector.apply_batch(records, {partition: records[-1].offset + 1})
        except fencing:
            retries += 1
            if retries > _FENCING_RETRIES:
                raise
            projector.forget_positions([partition])
            continue
        applied += result.applied
