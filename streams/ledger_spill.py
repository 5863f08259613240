"""Read the ledger once and spill it to local disk in buckets of customers: the input of
`mrr replay`, so that each of its processes holds one bucket at a time instead of the whole
ledger (memory stays flat as the ledger grows; docs/operations.md, "Replay").

Every message is decoded here, exactly as the worker decodes it (`decode_batch`; a message that
is not an event is a dead letter, left out), and the records recorded up to the cutoff are
appended to the file of their customer's bucket (a stable hash of the customer id) as the raw
message value with its position and timestamp; events of no customer go to bucket 0. Each
bucket is then decoded again, on its own, by the process that computes it (`read_bucket`).

Duplicates and conflicts keep the rule of a whole-ledger rebuild (the first copy of an
`event_id` in (partition, offset) order wins): copies of an event id in the same bucket are
classified by that bucket's process. Copies in different buckets necessarily carry different
customers, so every copy outside the first one's bucket is a conflict: a second pass over id
files (bucketed by event id, one in memory at a time) finds those ids (`SpilledLedger.foreign`)
and which FX rate copies are first copies (`SpilledLedger.rates`, given to every bucket since
rates convert every customer).
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterable, Callable, Iterator

import msgspec

from ledger.events import FxRatePublished, customer_of

from ledger.kafka.messages import PoisonMessage, RawRecord, decode_ledger_value
from ledger.ports import LedgerRecord
from projections.rebuild import bucket_of

BUCKET_EVENTS = 200_000
"""Ledger messages per bucket, at most (about 0.5 to 1 GB of a computing process's memory)."""
FLUSH_EVERY = 4_096
"""Entries buffered per file before they are written as one frame."""

_FRAME = struct.Struct("<I")
_encoder = msgspec.msgpack.Encoder()
_records = msgspec.msgpack.Decoder(list[tuple[int, int, int, bytes]])
_ids = msgspec.msgpack.Decoder(list[tuple[str, int, int, int]])

Progress = Callable[[int], None]
"""Called with the number of ledger messages read since the last call."""


def bucket_count(messages: int, jobs: int) -> int:
    """Buckets for a ledger of `messages`: at most `BUCKET_EVENTS` messages each, at least one
    per job, a multiple of `jobs` so that jobs get equal shares."""
    jobs = max(1, jobs)
    return jobs * max(1, math.ceil(messages / BUCKET_EVENTS / jobs))


@dataclass
class SpilledLedger:
    """A ledger below `ends`, spilled into `buckets` files under `directory`."""

    directory: Path
    ends: dict[int, int]
    buckets: int
    horizon: dt.timedelta
    sizes: list[int] = field(default_factory=list)
    """Records spilled per bucket."""
    rates: list[LedgerRecord] = field(default_factory=list)
    """The first copy of every FX rate, in (partition, offset) order."""
    foreign: list[set[str]] = field(default_factory=list)
    """Per bucket, the event ids whose first copy is in another bucket (their copies here are
    conflicts)."""
    events: int = 0
    """Records kept (every copy, before duplicates are set aside)."""
    dead_letters: int = 0
    after_cutoff: int = 0

    def path(self, kind: str, bucket: int) -> Path:
        return self.directory / f"{kind}-{bucket:05d}.bin"

    def read_bucket(self, bucket: int) -> list[LedgerRecord]:
        """The records spilled into `bucket`, decoded, in the order they were read."""
        return [LedgerRecord(p, o, decode_ledger_value(value, ts, horizon=self.horizon))
                for frame in _frames(self.path("records", bucket), _records) for p, o, ts, value in frame]


def _frames(path: Path, decoder: msgspec.msgpack.Decoder) -> Iterator[list]:  # type: ignore[type-arg]
    if not path.exists():
        return
    with path.open("rb") as f:
        while header := f.read(_FRAME.size):
            (size,) = _FRAME.unpack(header)
            yield decoder.decode(f.read(size))


class _Files:
    """Append-only framed files, one per bucket, buffered."""

    def __init__(self, spilled: SpilledLedger, kind: str) -> None:
        self.paths = [spilled.path(kind, b) for b in range(spilled.buckets)]
        self.buffers: list[list[tuple]] = [[] for _ in self.paths]  # type: ignore[type-arg]

    def add(self, bucket: int, entry: tuple) -> None:  # type: ignore[type-arg]
        buffer = self.buffers[bucket]
        buffer.append(entry)
        if len(buffer) >= FLUSH_EVERY:
            self._write(bucket)

    def _write(self, bucket: int) -> None:
        frame = _encoder.encode(self.buffers[bucket])
        with self.paths[bucket].open("ab") as f:
            f.write(_FRAME.pack(len(frame)) + frame)
        self.buffers[bucket].clear()

    def close(self) -> None:
        for bucket, buffer in enumerate(self.buffers):
            if buffer:
                self._write(bucket)


async def spill_ledger(batches: AsyncIterable[list[RawRecord]], directory: Path, ends: dict[int, int], *,
                       buckets: int, horizon: dt.timedelta, until_recorded: dt.datetime | None = None,
                       progress: Progress | None = None) -> SpilledLedger:
    """Spill the raw message `batches` (a ledger read below `ends`) into `directory`; see the
    module docstring."""
    spilled = SpilledLedger(directory, dict(ends), buckets, horizon, sizes=[0] * buckets)
    records, ids = _Files(spilled, "records"), _Files(spilled, "ids")
    rate_copies: list[LedgerRecord] = []
    tick = progress or (lambda n: None)
    async for raws in batches:
        for raw in raws:
            try:  # decoded exactly as the worker decodes (`streams.worker.pipeline.decode_batch`)
                event = decode_ledger_value(raw.value, raw.timestamp_ms, horizon=horizon)
            except PoisonMessage:
                spilled.dead_letters += 1
                continue
            if until_recorded is not None and event.recorded_at > until_recorded:  # type: ignore[operator]
                spilled.after_cutoff += 1
                continue
            bucket = bucket_of(customer_of(event), buckets)
            records.add(bucket, (raw.partition, raw.offset, raw.timestamp_ms, raw.value))
            ids.add(bucket_of(event.event_id, buckets), (event.event_id, raw.partition, raw.offset, bucket))
            spilled.sizes[bucket] += 1
            if isinstance(event, FxRatePublished):
                rate_copies.append(LedgerRecord(raw.partition, raw.offset, event))
        tick(len(raws))
    spilled.events = sum(spilled.sizes)
    records.close()
    ids.close()
    firsts = _resolve_ids(spilled, {r.event.event_id for r in rate_copies})
    spilled.rates = sorted((r for r in rate_copies if firsts.get(r.event.event_id) == (r.partition, r.offset)),
                           key=lambda r: (r.partition, r.offset))
    return spilled


def _resolve_ids(spilled: SpilledLedger, watched: set[str]) -> dict[str, tuple[int, int]]:
    """Fill `spilled.foreign` from the id files (one in memory at a time, deleted once read);
    returns the position of the first copy of each id in `watched`."""
    spilled.foreign = [set() for _ in range(spilled.buckets)]
    firsts: dict[str, tuple[int, int]] = {}
    for id_bucket in range(spilled.buckets):
        entries = sorted(entry for frame in _frames(spilled.path("ids", id_bucket), _ids) for entry in frame)
        previous: str | None = None
        first_bucket = 0
        for event_id, partition, offset, bucket in entries:
            if event_id != previous:
                previous, first_bucket = event_id, bucket
                if event_id in watched:
                    firsts[event_id] = (partition, offset)
            elif bucket != first_bucket:
                spilled.foreign[bucket].add(event_id)
        spilled.path("ids", id_bucket).unlink(missing_ok=True)
    return firsts
