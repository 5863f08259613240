"""`POST /v1/webhooks/stripe`: Stripe webhooks, verified and mapped by `ledger.adapters.stripe`.

No bearer token: Stripe signs every delivery (`Stripe-Signature`, HMAC with the endpoint's
signing secret, `ApiSettings.stripe_webhook_secret`). The mapped ledger events go through the
same path as `POST /v1/events` (`ledger.api.batch.ingest`: validation, append, per-event results,
429/503 when the ledger is busy or down), so the answers have the same shape. Stripe's event id
is the ledger `event_id`: a redelivered webhook is answered with `duplicate` results (embedded
ledger; Kafka stores it again and the projector applies it once).

Answers (docs/stripe.md): 200 processed or ignored; 400 bad signature or unmappable payload;
409/207 conflicts; 429/503 ledger busy/unavailable; 503 when no signing secret is configured.
Stripe retries every non-2xx answer for up to three days.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter

from ledger.adapters.stripe import (
    DEFAULT_TOLERANCE,
    StripeMapping,
    StripeMappingError,
    StripeSignatureError,
    verify_and_map,
)
from ledger.api.batch import status_code
from ledger.api.models import ErrorBody, EventResult
from ledger.api.routes import append_or_retry_later
from ledger.api.settings import ApiSettings
from ledger.events import encode_event

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/v1/webhooks/stripe"
NOT_CONFIGURED = (
    "Stripe webhooks are not configured on this server (set MRR_STRIPE_WEBHOOK_SECRET)"
)


class WebhookCounters:
    """In-process counts of Stripe webhooks by outcome (`processed`, `ignored`,
    `invalid_signature`, `mapping_error`, `not_configured`) and of ignored ones by Stripe type.
    Per server process; reset on restart (Prometheus metrics come later)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.ignored_types: Counter[str] = Counter()

    def count(self, outcome: str, stripe_type: str | None = None) -> int:
        """Add one `outcome` (and, for `ignored`, one of `stripe_type`); return its new total."""
        with self._lock:
            self.outcomes[outcome] += 1
            if outcome == "ignored" and stripe_type is not None:
                self.ignored_types[stripe_type] += 1
            return self.outcomes[outcome]


class StripeWebhookResponse(msgspec.Struct, frozen=True):
    """The answer to a verified Stripe webhook.

    `status` is `processed` (ledger events appended; `results` as for `POST /v1/events`) or
    `ignored` (nothing for the ledger: `reason`, and `ignored_total`, the number of webhooks this
    server process ignored since it started). `warnings` name what was mapped approximately."""

    status: Literal["processed", "ignored"]
    stripe_event_id: str
    stripe_event_type: str
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    results: list[EventResult] = msgspec.field(default_factory=list)
    reason: str | None = None
    ignored_total: int | None = None
    warnings: list[str] = msgspec.field(default_factory=list)


@post(
    WEBHOOK_PATH,
    status_code=200,
    summary="Receive a Stripe webhook",
    description=(
        "Stripe's signed webhook delivery (no bearer token: the `Stripe-Signature` header is "
        "verified with the endpoint's signing secret). Mapped event types are appended as "
        "ledger events whose `event_id` is Stripe's event id (a redelivery is `duplicate`); "
        "other types are acknowledged with `status: ignored`. Mapping rules: docs/stripe.md."
    ),
    tags=["webhooks"],
    responses={
        207: ResponseSpec(StripeWebhookResponse, generate_examples=False, description="some mapped events conflict with stored ones"),
        400: ResponseSpec(ErrorBody, generate_examples=False, description="invalid or expired `Stripe-Signature`, or a signed payload that cannot be mapped (`path`, `reason`)"),
        409: ResponseSpec(StripeWebhookResponse, generate_examples=False, description="every mapped event conflicts with a stored one"),
        413: ResponseSpec(ErrorBody, generate_examples=False, description="body too large"),
        422: ResponseSpec(StripeWebhookResponse, generate_examples=False, description="the ledger rejected a mapped event"),
        429: ResponseSpec(ErrorBody, generate_examples=False, description="ledger busy; `Retry-After`"),
        503: ResponseSpec(ErrorBody, generate_examples=False, description="ledger unavailable (`Retry-After`), or no signing secret configured"),
    },
)
async def stripe_webhook(
    request: Request,
    state: State,
    stripe_signature: Annotated[
        str | None,
        HeaderParameter(name="Stripe-Signature", required=False,
                  description="`t=<unix seconds>,v1=<hex HMAC-SHA256>` as Stripe sends it"),
    ] = None,
) -> Response[StripeWebhookResponse]:
    """Verify, map and append one Stripe webhook (contract in docs/stripe.md)."""
    settings: ApiSettings = state.settings
    counters: WebhookCounters = state.stripe_webhooks
    if not settings.stripe_webhook_secret:
        counters.count("not_configured")
        log.error("Stripe webhook refused with 503: %s", NOT_CONFIGURED)
        return Response(ErrorBody(503, NOT_CONFIGURED), status_code=503)  # type: ignore[arg-type]
    payload = await request.body()
    header = stripe_signature or ""
    try:
        mapping = verify_and_map(payload, header, settings.stripe_webhook_secret,
                                 tolerance=DEFAULT_TOLERANCE, now=int(time.time()))
    except StripeSignatureError as exc:
        counters.count("invalid_signature")
        log.warning("Stripe webhook refused with 400: %s", exc)
        return Response(ErrorBody(400, str(exc), reason=str(exc)),  # type: ignore[arg-type]
                        status_code=400)
    except StripeMappingError as exc:
        counters.count("mapping_error")
        log.error("Stripe webhook %s could not be mapped (400, Stripe will retry): %s",
                  _event_id_hint(payload), exc)
        return Response(ErrorBody(400, f"cannot map the Stripe event: {exc}", path=exc.path,
                                  reason=exc.reason), status_code=400)
    for warning in mapping.warnings:
        log.warning("Stripe event %s (%s): %s", mapping.stripe_event_id,
                    mapping.stripe_event_type, warning)
    if mapping.ignored or not mapping.events:
        return _ignored(mapping, counters)
    return await _append(mapping, state, settings, counters)


def _ignored(mapping: StripeMapping, counters: WebhookCounters) -> Response:  # type: ignore[type-arg]
    reason = mapping.reason or "nothing to record"
    total = counters.count("ignored", mapping.stripe_event_type)
    log.info("Stripe event %s (%s) ignored: %s; %d ignored since start",
             mapping.stripe_event_id, mapping.stripe_event_type, reason, total)
    return Response(StripeWebhookResponse(
        "ignored", mapping.stripe_event_id, mapping.stripe_event_type, reason=reason,
        ignored_total=total, warnings=mapping.warnings,
    ))


async def _append(
    mapping: StripeMapping, state: State, settings: ApiSettings, counters: WebhookCounters
) -> Response:  # type: ignore[type-arg]
    """Append the mapped events through `ledger.api.batch.ingest`, as `POST /v1/events` does."""
    result = await append_or_retry_later(
        [encode_event(event) for event in mapping.events], state, settings, partial=False,
        context=f" to Stripe event {mapping.stripe_event_id}",
    )
    if isinstance(result, Response):
        return result
    code = status_code(result)
    if code != 200:
        log.error("Stripe event %s (%s): ledger answered %d: %s", mapping.stripe_event_id,
                  mapping.stripe_event_type, code,
                  [(r.event_id, r.path, r.reason) for r in result.results if r.reason])
    counters.count("processed")
    return Response(StripeWebhookResponse(
        "processed", mapping.stripe_event_id, mapping.stripe_event_type,
        accepted=result.accepted, duplicate=result.duplicate, rejected=result.rejected,
        results=result.results, warnings=mapping.warnings,
    ), status_code=code)


_hint = msgspec.json.Decoder()


def _event_id_hint(payload: bytes) -> str:
    """The Stripe event id of an unmappable payload, for the log (or `?`)."""
    try:
        obj = _hint.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return "?"
    event_id = obj.get("id") if isinstance(obj, dict) else None
    return event_id if isinstance(event_id, str) else "?"
