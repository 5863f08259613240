"""The ledger's ports: what every ledger backend (embedded SQLite log, Kafka) offers.

A ledger is a set of partitions, each an append-only sequence of records numbered by offset.
Writers stamp `recorded_at` on append; readers return records in offset order per partition.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Protocol, Sequence

from msgspec import Struct

from ledger.events import EventBase

AppendStatus = Literal["accepted", "duplicate", "conflict"]


class AppendResult(Struct, frozen=True):
    """What happened to one appended event. `partition`/`offset` locate it (the original one for a
    duplicate; None for a conflict, which is rejected and written nowhere)."""

    event_id: str
    status: AppendStatus
    partition: int | None = None
    offset: int | None = None
    reason: str | None = None


class LedgerRecord(Struct, frozen=True):
    """One stored event with its position; `event.recorded_at` is always set."""

    partition: int
    offset: int
    event: EventBase


class LedgerWriter(Protocol):
    """Appends validated events; idempotent by `event_id`."""

    async def append_many(
        self, events: Sequence[EventBase], *, now: dt.datetime | None = None
    ) -> list[AppendResult]:
        """Append in order; `now` overrides the clock for `recorded_at` (imports, tests, demo)."""
        ...

    async def close(self) -> None: ...


class LedgerReader(Protocol):
    """Reads records back by partition and offset."""

    async def partitions(self) -> list[int]: ...

    async def end_offsets(self) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""
        ...

    async def read(self, partition: int, from_offset: int, limit: int) -> list[LedgerRecord]: ...

    async def close(self) -> None: ...
