"""Response bodies of the ingest API, as msgspec Structs (Litestar encodes them and documents them
in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

EventStatus = Literal["accepted", "duplicate", "rejected"]


class EventResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """What happened to the event at `index` (0-based position in the request).

    `path` names the offending field (`terms.items[0].unit_amount`, `body`, `event_id`, …) and
    `reason` says why; both are absent for accepted and duplicate events. A valid event that was
    not appended because another event of an all-or-nothing batch is invalid is `rejected` with a
    `reason` but no `path`."""

    index: int
    event_id: str | None
    status: EventStatus
    path: str | None = None
    reason: str | None = None


class IngestResponse(msgspec.Struct, frozen=True):
    """The answer to `POST /v1/events`: counts and one result per event, in request order."""

    accepted: int
    duplicate: int
    rejected: int
    results: list[EventResult]


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """Every answer that is not about single events: 400, 401, 413, 429, 503. The shape of
    Litestar's own errors (`status_code`, `detail`, `extra`), plus `path` and `reason` when the
    body could not be split into events (`path` is then `body`)."""

    status_code: int
    detail: str
    path: str | None = None
    reason: str | None = None
    extra: dict[str, Any] | list[Any] | None = None


class Health(msgspec.Struct, frozen=True):
    """`/healthz` and `/readyz`: `ok`, or `unavailable` (details go to the server log only)."""

    status: Literal["ok", "unavailable"]

