"""Settings of the ingest API, independent of how the `mrr` command reads its configuration."""

from __future__ import annotations

import datetime as dt

import msgspec

from ledger.validation import DEFAULT_HORIZON, MAX_BODY_BYTES

MAX_BATCH = 1000
"""Most events in one `POST /v1/events`."""


class InsecureConfigurationError(ValueError):
    """No bearer token is configured and running without authentication was not asked for."""


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the API needs to know; `streams/cli/serve.py` fills it from `streams.config.Config`."""

    tokens: tuple[str, ...] = ()
    """Accepted bearer tokens on /v1/*. Empty refuses to start unless `insecure_no_auth`."""
    insecure_no_auth: bool = False
    """Serve /v1/* without authentication (local use only)."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body read; larger ones get 413 before the handler runs."""
    max_batch: int = MAX_BATCH
    """Most events in one request."""
    max_event_bytes: int = MAX_BODY_BYTES
    """Largest single event (its JSON text) inside a body."""
    horizon: dt.timedelta = DEFAULT_HORIZON
    """Events occurring further in the future are rejected."""
    append_timeout_seconds: float | None = None
    """If set, a ledger append that takes longer answers 429 (Kafka producer buffer full).
    Leave unset for the embedded ledger: its appends finish in their thread regardless."""
    retry_after_seconds: int = 1
    """`Retry-After` sent with 429 and 503 answers."""
    readiness_timeout_seconds: float = 5.0
    """`/readyz` answers 503 when the ledger check takes longer."""
    stripe_webhook_secret: str | None = None
    """Signing secret of `POST /v1/webhooks/stripe`; None: that route answers 503."""

    def check(self) -> None:
        """Raise `InsecureConfigurationError` (no tokens) or ValueError (nonsense limits)."""
        if not self.insecure_no_auth and not any(t for t in self.tokens):
            raise InsecureConfigurationError(
                "no API token configured: set MRR_API_TOKENS (comma-separated) or, for local "
                "use only, pass --insecure-no-auth"
            )
        if self.max_batch < 1 or self.max_body_bytes < 1 or self.max_event_bytes < 1:
            raise ValueError("max_batch, max_body_bytes and max_event_bytes must be positive")
