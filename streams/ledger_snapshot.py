"""Read a whole ledger (Kafka or embedded) up to fixed end offsets into memory: the input of
`mrr replay` and `mrr verify`.

Kafka is read with `ledger.kafka.scan.scan_topic` (every partition at once, large `getmany`
batches) and decoded exactly as the worker decodes (`decode_batch`): a message that is not a
valid event is counted as a dead letter and left out, as the worker left it out (it is in the
dead-letter topic already). The embedded ledger is read in chunks of its single partition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ledger.ports import LedgerRecord
from streams.config import Config

CHUNK = 50_000

Progress = Callable[[int], None]
"""Called with the number of ledger messages read since the last call."""


@dataclass
class LedgerSnapshot:
    """Every record of the ledger below `ends` (next offset per partition), decoded."""

    ends: dict[int, int]
    records: list[LedgerRecord] = field(default_factory=list)
    dead_letters: int = 0
    """Messages that are not events (skipped, as the worker skips them)."""
    after_cutoff: int = 0
    """Events left out because they were recorded after `until_recorded`."""


async def ledger_ends(config: Config) -> dict[int, int]:
    """The ledger's current end offsets (next offset per partition)."""
    if config.kafka_bootstrap:
        from ledger.kafka.scan import end_offsets

        return await end_offsets(config.kafka_bootstrap, config.ledger_topic)
    from streams.bootstrap import open_embedded_ledger

    ledger = open_embedded_ledger(config)
    try:
        return await ledger.end_offsets()
    finally:
        await ledger.close()


async def read_ledger(config: Config, ends: Mapping[int, int], *,
                      until_recorded: dt.datetime | None = None,
                      progress: Progress | None = None) -> LedgerSnapshot:
    """Every event of the ledger of `config` below `ends` (recorded up to `until_recorded`)."""
    snapshot = LedgerSnapshot(ends=dict(ends))
    tick = progress or (lambda n: None)
    if config.kafka_bootstrap:
        from ledger.kafka.scan import scan_topic
        from streams.worker.pipeline import decode_batch

        horizon = dt.timedelta(days=config.future_horizon_days)
        async for raws in scan_topic(config.kafka_bootstrap, config.ledger_topic, ends):
            records, letters = decode_batch(raws, horizon)
            snapshot.dead_letters += len(letters)
            _keep(snapshot, records, until_recorded)
            tick(len(raws))
        return snapshot
    from streams.bootstrap import open_embedded_ledger

    ledger = open_embedded_ledger(config)
    try:
        for partition, end in ends.items():
            position = 0
            while position < end:
                records = [r for r in await ledger.read(partition, position, min(CHUNK, end - position))
                           if r.offset < end]
                if not records:
                    break
                _keep(snapshot, records, until_recorded)
                tick(records[-1].offset + 1 - position)
                position = records[-1].offset + 1
    finally:
        await ledger.close()
    return snapshot


def _keep(snapshot: LedgerSnapshot, records: list[LedgerRecord], until: dt.datetime | None) -> None:
    if until is None:
        snapshot.records.extend(records)
        return
    kept = [r for r in records if r.event.recorded_at <= until]  # type: ignore[operator]
    snapshot.after_cutoff += len(records) - len(kept)
    snapshot.records.extend(kept)
