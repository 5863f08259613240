"""The HTTP handlers: `POST /v1/events`, `GET /healthz`, `GET /readyz`.

Handlers find the ledger writer, the settings and the readiness probe in `app.state` (set by
`ledger.api.app`). The request body is read raw and validated by `ledger.validation`, so
producers get the ledger's own field paths and reasons rather than a framework's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from typing import Annotated

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from ledger.api.batch import BodyRejected, ingest, split_body, status_code
from ledger.api.models import ErrorBody, Health, IngestResponse
from ledger.api.settings import ApiSettings

log = logging.getLogger(__name__)

_QUERY_PARAMETERS = {"partial"}
_RETRYABLE_DESCRIPTION = "sent with a `Retry-After` header; nothing was accepted"


def _backpressure_errors() -> tuple[type[BaseException], ...]:
    from aiokafka.errors import KafkaTimeoutError

    return (KafkaTimeoutError, TimeoutError)


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    from aiokafka.errors import KafkaError

    return (KafkaError, OSError, sqlite3.OperationalError)


@post(
    "/events",
    status_code=200,
    summary="Append events to the ledger",
    description=(
        "One event (a JSON object) or a batch (a JSON array of up to 1,000 events). Every event "
        "is validated; the answer lists each one as `accepted`, `duplicate` or `rejected` (with "
        "the field `path` and the `reason`). A batch is all-or-nothing unless `partial=true`."
    ),
    responses={
        207: ResponseSpec(IngestResponse, generate_examples=False, description="some events appended, some rejected"),
        400: ResponseSpec(ErrorBody, generate_examples=False, description="the body is not an event or a JSON array, or an unknown or malformed query parameter"),
        401: ResponseSpec(ErrorBody, generate_examples=False, description="no valid bearer token"),
        409: ResponseSpec(IngestResponse, generate_examples=False, description="every event conflicts with a stored one"),
        413: ResponseSpec(ErrorBody, generate_examples=False, description="body too large or more than 1,000 events"),
        422: ResponseSpec(IngestResponse, generate_examples=False, description="rejected events; nothing was appended"),
        429: ResponseSpec(ErrorBody, generate_examples=False, description=f"ledger busy, {_RETRYABLE_DESCRIPTION}"),
        503: ResponseSpec(ErrorBody, generate_examples=False, description=f"ledger unavailable, {_RETRYABLE_DESCRIPTION}"),
    },
)
async def post_events(
    request: Request,
    state: State,
    partial: Annotated[
        bool,
        QueryParameter(description="append the valid events even if some are invalid"),
    ] = False,
) -> Response[IngestResponse]:
    """Validate and append the events of the body (see docs/api.md for the contract)."""
    settings: ApiSettings = state.settings
    unknown = sorted(set(request.query_params) - _QUERY_PARAMETERS)
    if unknown:  # a typo such as ?parital=true must not silently mean all-or-nothing
        reason = f"unknown query parameter {unknown[0]!r} (known: partial)"
        return Response(ErrorBody(400, reason, path=f"query.{unknown[0]}", reason=reason),
                        status_code=400)  # type: ignore[arg-type]
    body = await request.body()
    try:
        raws = split_body(body, max_batch=settings.max_batch)
    except BodyRejected as exc:
        return Response(exc.error, status_code=exc.status_code)  # type: ignore[arg-type]
    result = await append_or_retry_later(raws, state, settings, partial=partial)
    if isinstance(result, Response):
        return result
    return Response(result, status_code=status_code(result))


async def append_or_retry_later(
    raws: list[bytes], state: State, settings: ApiSettings, *, partial: bool, context: str = ""
) -> IngestResponse | Response:  # type: ignore[type-arg]
    """Validate and append `raws` through `ledger.api.batch.ingest`; a busy ledger (producer
    buffer full, or slower than `append_timeout_seconds`) gives a 429, an unreachable one a 503,
    each with `Retry-After`. `context` names the request in the logs."""
    work = ingest(
        raws,
        state.writer,
        partial=partial,
        now=dt.datetime.now(dt.UTC),
        horizon=settings.horizon,
        max_event_bytes=settings.max_event_bytes,
    )
    try:
        if settings.append_timeout_seconds is None:
            return await work
        return await asyncio.wait_for(work, settings.append_timeout_seconds)
    except _backpressure_errors() as exc:
        log.warning("ledger busy, answering 429%s: %r", context, exc)
        return _retry_later(429, "the ledger is busy (producer buffer full)", settings)
    except _unavailable_errors() as exc:
        log.error("ledger unavailable, answering 503%s: %r", context, exc)
        return _retry_later(503, "the ledger is unavailable", settings)


def _retry_later(code: int, reason: str, settings: ApiSettings) -> Response:  # type: ignore[type-arg]
    seconds = settings.retry_after_seconds
    return Response(
        ErrorBody(code, f"{reason}: nothing was accepted, retry after {seconds} s"),
        status_code=code,
        headers={"Retry-After": str(seconds)},
    )


@get("/healthz", summary="The process is up", sync_to_thread=False)
def healthz() -> Health:
    """Always `ok` while the process serves requests (liveness)."""
    return Health("ok")


@get(
    "/readyz",
    summary="The ledger is reachable",
    responses={503: ResponseSpec(Health, generate_examples=False, description="the ledger cannot be reached")},
)
async def readyz(state: State) -> Response[Health]:
    """`ok` when the ledger answers (embedded file opens, Kafka topic exists), else 503."""
    settings: ApiSettings = state.settings
    try:
        await asyncio.wait_for(state.readiness(), settings.readiness_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; logged, not shown
        log.warning("not ready: %r", exc)
        return Response(Health("unavailable"), status_code=503)
    return Response(Health("ok"))
