"""Ingest JSON Lines into a ledger: every line validated on its own, valid ones appended in batches.

A bad line is reported with its line number and reason and written nowhere; it never stops the
rest of the file. Appending is idempotent by `event_id`, so re-ingesting a file (after a crash
half-way, or by mistake) changes nothing that is already recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from msgspec import Struct, field

from ledger.events import EventBase
from ledger.ports import LedgerWriter
from ledger.validation import DEFAULT_HORIZON, MAX_BODY_BYTES, EventValidationError, decode_event


class Rejection(Struct, frozen=True):
    """One line that was not appended: 1-based `line`, `reason` as `path: reason`."""

    line: int
    reason: str
    event_id: str | None = None
    conflict: bool = False


class IngestReport(Struct):
    """Counts and rejections of one ingestion; `rejected` includes `conflicts`."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    conflicts: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return self.rejected == 0

    def reject(self, rejection: Rejection) -> None:
        """Record one rejected line."""
        self.rejections.append(rejection)
        self.rejected += 1
        self.conflicts += rejection.conflict

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary (`mrr ingest --json`)."""
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "rejections": [
                {"line": r.line, "reason": r.reason, "event_id": r.event_id}
                for r in self.rejections
            ],
        }


async def ingest_lines(
    lines: Iterable[bytes | str],
    writer: LedgerWriter,
    *,
    now: dt.datetime | None = None,
    horizon: dt.timedelta = DEFAULT_HORIZON,
    batch_size: int = 1000,
    max_bytes: int = MAX_BODY_BYTES,
    recorded_at: dt.datetime | None = None,
) -> IngestReport:
    """Validate each JSON line (blank lines skipped) and append the valid ones in file order.

    `now` (default: the clock) bounds `occurred_at` with `horizon`; `recorded_at` overrides the
    writer's clock (imports, tests). Batches of `batch_size` keep memory flat on large files.
    Writer errors propagate; batches already appended stay, and re-running is safe.
    """
    now = now or dt.datetime.now(dt.UTC)
    report = IngestReport()
    batch: list[tuple[int, EventBase]] = []
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = _strip_bom(line)
        if not line.strip():
            continue
        try:
            batch.append(
                (
                    number,
                    decode_event(_strip_eol(line), now=now, horizon=horizon, max_bytes=max_bytes),
                )
            )
        except EventValidationError as exc:
            report.reject(Rejection(number, str(exc)))
        if len(batch) >= batch_size:
            await _flush(batch, writer, report, recorded_at)
    await _flush(batch, writer, report, recorded_at)
    return report


async def _flush(
    batch: list[tuple[int, EventBase]],
    writer: LedgerWriter,
    report: IngestReport,
    recorded_at: dt.datetime | None,
) -> None:
    if not batch:
        return
    results = await writer.append_many([event for _, event in batch], now=recorded_at)
    for (number, event), result in zip(batch, results, strict=True):
        if result.status == "accepted":
            report.accepted += 1
        elif result.status == "duplicate":
            report.duplicate += 1
        else:
            detail = result.reason or "already recorded with a different body"
            reason = f"event_id: conflict: {event.event_id!r} {detail}"
            report.reject(Rejection(number, reason, event.event_id, conflict=True))
    batch.clear()


def _strip_bom(line: bytes | str) -> bytes | str:
    if isinstance(line, bytes):
        return line.removeprefix(b"\xef\xbb\xbf")
    return line.removeprefix("\ufeff")


def _strip_eol(line: bytes | str) -> bytes | str:
    return line.rstrip(b"\r\n") if isinstance(line, bytes) else line.rstrip("\r\n")
