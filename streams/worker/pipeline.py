"""`ProjectionPipeline`: one consumer batch of raw ledger messages to one projector transaction.

Per batch: decode every message (a message that is not an event becomes a dead letter), send the
dead letters, then apply the events with the partition range the batch covers. PostgreSQL owns
the offsets (DESIGN.md decision 3), so the consumer's position is only a hint:
- records below the stored offset are skipped by the projector;
- a batch that starts above the stored offset is a gap (Faust acked a batch that was never
  applied, or committed ahead): the missing range is read straight from Kafka and applied first;
- a fenced batch (another worker moved the offset) is retried with fresh positions, where the
  projector skips what the other worker applied;
- any other failure is retried (`RetryPolicy`), then stops the worker with `ProjectionHalted`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.kafka.dead_letters import DeadLetter, DeadLetterWriter
from ledger.kafka.messages import PoisonMessage, RawRecord, decode_ledger_value
from ledger.kafka.reader import KafkaLedgerReader
from ledger.ports import LedgerRecord
from projections.projector import BatchResult, FencingError, OffsetGapError, Projector
from streams.worker.retry import ProjectionHalted, RetryPolicy

log = logging.getLogger(__name__)

FENCING_RETRIES = 5
SLOW_BATCH_SECONDS = 0.5
SLOW_RECORD_SECONDS = 0.0002
"""A committed batch is logged with what it did when it took longer than `SLOW_BATCH_SECONDS`
and longer than `SLOW_RECORD_SECONDS` per record (big catch-up batches are not news)."""


class BatchObserver(Protocol):
    """Told about every committed batch (`streams.worker.metrics.WorkerMetrics`)."""

    def on_batch(self, result: BatchResult, records: Sequence[LedgerRecord], seconds: float,
                 positions: Mapping[int, int]) -> None: ...


@dataclass
class PipelineStats:
    """Running totals since the worker started (logged; exported as metrics)."""

    consumed: int = 0
    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    skipped: int = 0
    dead_letters: int = 0
    gap_records: int = 0
    fenced: int = 0
    restated: int = 0
    observer: BatchObserver | None = field(default=None, repr=False, compare=False)

    def add(self, result: BatchResult, records: Sequence[LedgerRecord] = (), seconds: float = 0.0,
            positions: Mapping[int, int] | None = None) -> None:
        """Count one committed batch (`positions`: the stored offsets before it)."""
        self.batches += 1
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.conflicts += result.conflicts
        self.skipped += result.skipped
        self.restated += result.restated
        if self.observer is not None:
            self.observer.on_batch(result, records, seconds, positions or {})


def decode_batch(
    raws: Sequence[RawRecord], horizon: dt.timedelta
) -> tuple[list[LedgerRecord], list[DeadLetter]]:
    """Split raw messages into ledger records and dead letters (with the reason)."""
    records: list[LedgerRecord] = []
    letters: list[DeadLetter] = []
    for raw in raws:
        try:
            event = decode_ledger_value(raw.value, raw.timestamp_ms, horizon=horizon)
        except PoisonMessage as exc:
            letters.append(DeadLetter(raw, exc.reason))
            continue
        records.append(LedgerRecord(raw.partition, raw.offset, event))
    return records, letters


def covered_range(raws: Sequence[RawRecord]) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition, the first offset of the batch and the next offset after it."""
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for raw in raws:
        p = raw.partition
        starts[p] = min(starts.get(p, raw.offset), raw.offset)
        ends[p] = max(ends.get(p, raw.offset + 1), raw.offset + 1)
    return starts, ends


class ProjectionPipeline:
    """Applies consumer batches exactly once in effect; see the module docstring."""

    def __init__(
        self,
        projector: Projector,
        reader: KafkaLedgerReader,
        dead_letters: DeadLetterWriter,
        *,
        horizon: dt.timedelta,
        batch_size: int,
        retry: RetryPolicy,
    ) -> None:
        self.projector = projector
        self.reader = reader
        self.dead_letters = dead_letters
        self.horizon = horizon
        self.batch_size = batch_size
        self.retry = retry
        self.stats = PipelineStats()
        self._sent: set[tuple[int, int]] = set()
        """Positions of dead letters sent by this process (a retried batch does not resend them)."""

    async def process(self, raws: Sequence[RawRecord]) -> None:
        """Apply one consumer batch (any partitions, any order). Raises `ProjectionHalted`."""
        if not raws:
            return
        starts, ends = covered_range(raws)
        self.stats.consumed += len(raws)
        records, letters = decode_batch(raws, self.horizon)  # once, whatever the retries
        fenced = 0
        while True:
            try:
                try:
                    await self._apply(records, letters, starts, ends)
                    return
                except OffsetGapError as gap:
                    await self._fill(gap)  # then apply the batch again
            except FencingError as exc:
                fenced += 1
                self.stats.fenced += 1
                if fenced > FENCING_RETRIES:
                    raise ProjectionHalted(f"fenced {fenced} times in a row: {exc}") from exc
                log.warning("batch fenced (%s); retrying from the stored offsets", exc)
                self.projector.forget_positions()

    async def _apply(
        self,
        records: list[LedgerRecord],
        letters: list[DeadLetter],
        starts: dict[int, int],
        ends: dict[int, int],
    ) -> None:
        await self._send_dead_letters(letters)
        before, started = self.projector.positions, time.monotonic()
        result = await self.retry.run(
            "projector batch",
            lambda: self.projector.apply_batch(records, ends, starts=starts),
        )
        seconds = time.monotonic() - started
        self.stats.add(result, records, seconds, before)
        if seconds > max(SLOW_BATCH_SECONDS, SLOW_RECORD_SECONDS * len(records)):
            log.info("slow batch: %.2f s for %d records (%d applied, %d customers, %d restated)",
                     seconds, len(records), result.applied, result.customers, result.restated)

    async def _fill(self, gap: OffsetGapError) -> None:
        """Apply partition `gap.partition`'s offsets `gap.start..gap.end-1`, read from Kafka."""
        log.info("partition %d: offsets %d..%d were not applied (the consumer was ahead of the "
                 "projections); reading them from Kafka", gap.partition, gap.start, gap.end - 1)
        position = gap.start
        while position < gap.end:
            limit = min(self.batch_size, gap.end - position)
            raws = await self.retry.run(
                "reading a gap from Kafka",
                lambda: self.reader.read_raw(gap.partition, position, limit),
            )
            raws = [r for r in raws if r.offset < gap.end]
            after = raws[-1].offset + 1 if raws else gap.end
            records, letters = decode_batch(raws, self.horizon)
            await self._apply(records, letters, {gap.partition: position}, {gap.partition: after})
            self.stats.gap_records += len(raws)
            position = after

    async def _send_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        positions = self.projector.positions
        if any(l.record.partition not in positions for l in letters):
            positions = {**await self.projector.store.offsets(), **positions}
        fresh = [l for l in letters if l.record.offset >= positions.get(l.record.partition, 0)
                 and (l.record.partition, l.record.offset) not in self._sent]
        if not fresh:
            return
        for letter in fresh:
            log.warning("dead letter: partition %d offset %d: %s", letter.record.partition,
                        letter.record.offset, letter.reason)
        await self.retry.run("sending dead letters", lambda: self.dead_letters.send_many(fresh))
        self.stats.dead_letters += len(fresh)
        if len(self._sent) > 100_000:
            self._sent.clear()  # only an optimisation: delivery is at least once anyway
        self._sent.update((l.record.partition, l.record.offset) for l in fresh)
