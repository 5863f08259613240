"""How the worker retries a failed projector transaction (DESIGN.md decision 3: never skip).

Two kinds of failure: PostgreSQL or Kafka is unreachable (a restart, a failover, a network blip),
which is waited out with capped exponential backoff for up to `database_retry_seconds`; anything else,
retried `apply_retries` times and then fatal. Fencing, gaps and settings mismatches are not
failures of this kind: the caller handles them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from projections.projector import FencingError, OffsetGapError, SettingsMismatchError

log = logging.getLogger(__name__)
T = TypeVar("T")

_NOT_RETRIED = (FencingError, OffsetGapError, SettingsMismatchError)


class ProjectionHalted(RuntimeError):
    """A batch could not be applied after every retry: the worker must stop, loudly."""


def server_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means "cannot reach PostgreSQL or Kafka right now" rather than a bug or bad data."""
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    transient_kafka = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError, *transient_kafka)):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OSError):
            return True
        name = type(exc).__name__
        # asyncpg: PostgresConnectionError family, CannotConnectNowError ("starting up"),
        # AdminShutdownError ("terminating connection due to administrator command").
        if name in {"CannotConnectNowError", "AdminShutdownError", "ConnectionDoesNotExistError",
                    "ConnectionFailureError", "PostgresConnectionError", "InterfaceError",
                    "TooManyConnectionsError"}:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


@dataclass
class RetryPolicy:
    """Retry budget of one projector transaction."""

    database_retry_seconds: float = 600.0
    apply_retries: int = 3
    first_delay: float = 0.2
    max_delay: float = 5.0

    async def run(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until it succeeds; raise `ProjectionHalted` when the budget is spent."""
        failures, delay, down_since = 0, self.first_delay, None
        while True:
            try:
                return await attempt()
            except _NOT_RETRIED:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                if server_unavailable(exc):
                    down_since = down_since or time.monotonic()
                    waited = time.monotonic() - down_since
                    if waited > self.database_retry_seconds:
                        raise ProjectionHalted(
                            f"{what}: server unreachable for {waited:.0f}s: {exc}"
                        ) from exc
                    log.warning("%s: server unreachable (%s); retrying in %.1fs",
                                what, _short(exc), delay)
                else:
                    failures += 1
                    if failures > self.apply_retries:
                        raise ProjectionHalted(
                            f"{what} failed {failures} times, last with {type(exc).__name__}: {exc}"
                        ) from exc
                    log.warning("%s failed (%s: %s); retry %d of %d in %.1fs", what,
                                type(exc).__name__, _short(exc), failures, self.apply_retries, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
