"""The ingest use case without HTTP: split a body into events, validate, append, report.

A body is one event (a JSON object) or a batch (a JSON array of events). Each event is
validated on its own by `ledger.validation`. Without `partial`, a batch is all-or-nothing with
respect to validation: one invalid event means nothing is appended. With `partial`, the valid
events are appended and the invalid ones listed. Conflicts (same `event_id`, other body) are only
known to the ledger while appending (the embedded ledger detects them, Kafka cannot): they are
reported per event and never stop the other events of the batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec

from ledger.api.models import ErrorBody, EventResult, IngestResponse
from ledger.ports import LedgerWriter
from ledger.validation import validate_batch

NOT_APPENDED = (
    "not appended: the batch is all-or-nothing and other events in it are invalid "
    "(fix them, or send ?partial=true to append the valid ones)"
)

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_any = msgspec.json.Decoder()


class BodyRejected(Exception):
    """The body cannot be split into events; `status_code` is 400 or 413."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.error = ErrorBody(status_code, f"body: {reason}", path="body", reason=reason)


def split_body(body: bytes, *, max_batch: int) -> list[bytes]:
    """The events of a request body: a JSON array gives its items, anything else is one event
    (left for `decode_event` to judge). Raises `BodyRejected` for an unreadable or empty array
    (400) or one with more than `max_batch` items (413)."""
    if not body.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"["):
        return [body]
    try:
        items = _raw_list.decode(body)
    except msgspec.DecodeError as exc:
        detail = str(exc).removeprefix("JSON is malformed: ")
        raise BodyRejected(400, f"malformed JSON array: {detail[:1].lower()}{detail[1:]}") from None
    except UnicodeDecodeError:
        raise BodyRejected(400, "malformed JSON array: invalid UTF-8") from None
    if not items:
        raise BodyRejected(400, "an empty batch: send at least one event")
    if len(items) > max_batch:
        raise BodyRejected(413, f"a batch holds at most {max_batch} events, got {len(items)}")
    return [bytes(item) for item in items]


async def ingest(
    raws: Sequence[bytes],
    writer: LedgerWriter,
    *,
    partial: bool,
    now: dt.datetime,
    horizon: dt.timedelta,
    max_event_bytes: int,
) -> IngestResponse:
    """Validate every event, append the valid ones (all-or-nothing unless `partial`) and return
    one result per event in input order. Writer errors propagate (nothing is reported)."""
    checked = validate_batch(raws, now=now, horizon=horizon, max_bytes=max_event_bytes)
    results: dict[int, EventResult] = {
        index: EventResult(index, _event_id_of(raws[index]), "rejected", exc.path, exc.reason)
        for index, exc in checked.errors
    }
    if checked.errors and not partial:
        for index, event in checked.events:
            results[index] = EventResult(index, event.event_id, "rejected", reason=NOT_APPENDED)
    elif checked.events:
        appended = await writer.append_many([event for _, event in checked.events])
        for (index, event), outcome in zip(checked.events, appended, strict=True):
            if outcome.status == "conflict":
                detail = outcome.reason or "already recorded with a different body"
                results[index] = EventResult(
                    index, event.event_id, "rejected", "event_id", f"conflict: {detail}"
                )
            else:
                results[index] = EventResult(index, event.event_id, outcome.status)
    ordered = [results[index] for index in range(len(raws))]
    counts = {status: 0 for status in ("accepted", "duplicate", "rejected")}
    for result in ordered:
        counts[result.status] += 1
    return IngestResponse(results=ordered, **counts)


def status_code(response: IngestResponse) -> int:
    """200 when nothing was rejected; 207 when some events were appended (or duplicates) and
    some rejected; 409 when every event is a conflict; else 422 (nothing appended)."""
    if not response.rejected:
        return 200
    if response.accepted or response.duplicate:
        return 207
    if all(r.path == "event_id" and (r.reason or "").startswith("conflict:")
           for r in response.results):
        return 409
    return 422


def _event_id_of(raw: bytes) -> str | None:
    """The `event_id` a rejected event carried, when it is readable as a string."""
    try:
        obj: Any = _any.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    event_id = obj.get("event_id") if isinstance(obj, dict) else None
    return event_id if isinstance(event_id, str) else None
