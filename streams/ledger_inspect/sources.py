"""The configured ledger opened for reading by position, and the records read from it.

Kafka when `kafka_bootstrap` is set (a group-less `KafkaLedgerReader`), else the embedded SQLite
ledger in `data_dir`, whose one partition is 0 and whose offsets are its own sequence. Kafka
records are decoded exactly as the worker decodes them (`decode_ledger_value`), so a record the
worker would dead-letter is an `Entry` with the reason, never hidden.
"""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

if TYPE_CHECKING:
    from streams.config import Config


class LedgerUnavailable(Exception):
    """The configured ledger (or event index) cannot be read; the message says why."""


@dataclass(frozen=True)
class Entry:
    """One ledger record as shown: its position, and its event or why it is not one."""

    partition: int
    offset: int
    recorded_at: dt.datetime
    key: str | None
    event: Any = None
    """The decoded `EventBase`; None for an undecodable record."""
    problem: str | None = None
    value: bytes | None = None

    def order(self) -> tuple[dt.datetime, int, int]:
        """Merge order across partitions: recorded_at, then position."""
        return (self.recorded_at, self.partition, self.offset)


class KafkaSource:
    """Kafka: raw records, filtered on key/bytes before decoding, decoded as the worker does."""

    def __init__(self, reader: Any, horizon: dt.timedelta) -> None:
        self.reader, self.horizon = reader, horizon
        self.where = f"Kafka topic {reader.topic!r}"

    async def ends(self) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""
        return await self.reader.end_offsets()

    def partition_of(self, key: str, partitions: list[int]) -> int:
        """The partition the ledger writer puts records keyed `key` in."""
        from ledger.kafka.reader import partition_for_key

        return partition_for_key(key.encode(), partitions)

    async def fetch(self, partition: int, start: int, limit: int, *, key: str | None = None,
                    needle: bytes | None = None) -> tuple[list[Entry], int]:
        """Records from `start` (at most `limit`) that pass the filters, and the offset after
        the last one read (`start` when the partition has nothing more)."""
        raws = await self.reader.read_raw(partition, start, limit)
        wanted = key.encode() if key is not None else None
        entries = [self._decode(raw) for raw in raws
                   if (wanted is None or raw.key == wanted)
                   and (needle is None or (raw.value is not None and needle in raw.value))]
        return entries, (raws[-1].offset + 1 if raws else start)

    def _decode(self, raw: Any) -> Entry:
        from ledger.kafka.messages import PoisonMessage, decode_ledger_value

        key = None if raw.key is None else raw.key.decode("utf-8", "replace")
        try:
            event = decode_ledger_value(raw.value, raw.timestamp_ms, horizon=self.horizon)
        except PoisonMessage as exc:
            stamp = dt.datetime.fromtimestamp(raw.timestamp_ms / 1000, dt.UTC)
            return Entry(raw.partition, raw.offset, stamp, key, problem=exc.reason, value=raw.value)
        return Entry(raw.partition, raw.offset, event.recorded_at, key, event)


class EmbeddedSource:
    """The embedded ledger: one partition, every record a validated event."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.where = f"embedded ledger {ledger.path}"

    async def ends(self) -> dict[int, int]:
        """The end offset of the one partition."""
        return await self.ledger.end_offsets()

    def partition_of(self, key: str, partitions: list[int]) -> int:
        """The one partition, whatever the key."""
        return partitions[0]

    async def fetch(self, partition: int, start: int, limit: int, *, key: str | None = None,
                    needle: bytes | None = None) -> tuple[list[Entry], int]:
        """As `KafkaSource.fetch`; the key is the one the Kafka writer would give the event."""
        from ledger.kafka.writer import key_of

        records = await self.ledger.read(partition, start, limit)
        entries = [Entry(r.partition, r.offset, r.event.recorded_at, key_of(r.event).decode(),
                         r.event) for r in records]
        entries = [e for e in entries if key is None or e.key == key]
        return entries, (records[-1].offset + 1 if records else start)


Source = KafkaSource | EmbeddedSource


@asynccontextmanager
async def open_source(config: Config) -> AsyncIterator[Source]:
    """The configured ledger, opened for reading; raises `LedgerUnavailable` if it cannot be."""
    if config.kafka_bootstrap:
        from ledger.kafka.reader import KafkaLedgerReader

        reader = KafkaLedgerReader(config.kafka_bootstrap, config.ledger_topic)
        try:
            try:
                await reader.partitions()  # starts the consumer; a missing topic raises here
            except LookupError as exc:
                raise LedgerUnavailable(str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - unreachable broker: say which and stop
                raise LedgerUnavailable(f"Kafka at {config.kafka_bootstrap}: {exc!r}") from None
            yield KafkaSource(reader, dt.timedelta(days=config.future_horizon_days))
        finally:
            await reader.close()
        return
    from streams.bootstrap import ledger_path, open_embedded_ledger

    path = ledger_path(config)
    if not path.is_file():  # open_embedded_ledger would create an empty one
        raise LedgerUnavailable(f"no embedded ledger at {path} (set --data-dir / MRR_DATA_DIR, "
                                "or MRR_KAFKA_BOOTSTRAP for the Kafka ledger)")
    async with open_embedded_ledger(config) as ledger:
        yield EmbeddedSource(ledger)
