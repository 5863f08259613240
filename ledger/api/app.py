"""`create_app`: the Litestar application of the ingest API.

The caller (the `mrr serve` command, or a test) decides which ledger is written to: it passes
`writer_factory`, called once at startup (the writer is closed at shutdown), and optionally a
`readiness` probe that raises when the ledger cannot be reached. It may add routes and lifespan
hooks of its own (`mrr serve --metrics` adds `GET /metrics`, unauthenticated like /healthz).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from ledger.api.auth import SECURITY_SCHEME, bearer_guard
from ledger.api.openapi import publish_event_schema
from ledger.api.routes import healthz, post_events, readyz
from ledger.api.settings import ApiSettings
from ledger.api.stripe_route import WebhookCounters, stripe_webhook
from ledger.ports import LedgerWriter

WriterFactory = Callable[[], Awaitable[LedgerWriter]]
Readiness = Callable[[], Awaitable[None]]
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def create_app(
    writer_factory: WriterFactory,
    settings: ApiSettings,
    *,
    readiness: Readiness | None = None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    extra_lifespans: Sequence[Lifespan] = (),
) -> Litestar:
    """The ingest API on the ledger `writer_factory` opens.

    Raises `InsecureConfigurationError` when `settings` has no token and does not say
    `insecure_no_auth`. `readiness` defaults to "the writer was opened". `extra_routes` are
    served without the bearer guard; `extra_lifespans` run after the writer is opened."""
    settings.check()
    guards = [] if settings.insecure_no_auth else [bearer_guard(settings.tokens)]
    v1 = Router(
        path="/v1",
        route_handlers=[post_events],
        guards=guards,
        security=None if settings.insecure_no_auth else [{SECURITY_SCHEME: []}],
        tags=["ingest"],
    )

    @asynccontextmanager
    async def ledger_writer(app: Litestar) -> AsyncIterator[None]:
        app.state.writer = await writer_factory()
        try:
            yield
        finally:
            await app.state.writer.close()

    async def writer_opened() -> None:
        return None

    app = Litestar(
        route_handlers=[v1, stripe_webhook, healthz, readyz, *extra_routes],  # Stripe signs: no bearer guard
        lifespan=[ledger_writer, *extra_lifespans],
        state=State({"settings": settings, "readiness": readiness or writer_opened,
                     "stripe_webhooks": WebhookCounters()}),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="mrr-ledger ingest API",
            version="1",
            description="Publish subscription events into the ledger (docs/api.md).",
            path="/schema",
            components=Components(
                security_schemes={
                    SECURITY_SCHEME: SecurityScheme(
                        type="http", scheme="bearer", description="a token of MRR_API_TOKENS"
                    )
                }
            ),
        ),
    )
    publish_event_schema(app, max_batch=settings.max_batch)
    return app
