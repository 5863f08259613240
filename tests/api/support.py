"""Helpers for the API tests: an app on an embedded ledger in a tmp dir, and reading it back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from ledger.api import ApiSettings, create_app
from ledger.embedded import EmbeddedLedger
from ledger.ports import LedgerWriter
from tests.ledger.contract import read_all

TOKEN = "test-token-0123456789"
OTHER_TOKEN = "second-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def embedded_app(path: Path, **settings: Any) -> Litestar:
    """The API on the embedded ledger at `path`, with the test tokens."""

    async def writer() -> LedgerWriter:
        return EmbeddedLedger(path)

    options: dict[str, Any] = {"tokens": (TOKEN, OTHER_TOKEN), **settings}
    return create_app(writer, ApiSettings(**options))


def stub_app(append: Callable[..., Awaitable[Any]], **settings: Any) -> Litestar:
    """The API on a writer whose `append_many` is `append` (failure modes of real writers)."""

    class Stub:
        append_many = staticmethod(append)

        async def close(self) -> None:
            return None

    async def writer() -> Any:
        return Stub()

    return create_app(writer, ApiSettings(tokens=(TOKEN,), **settings))


@asynccontextmanager
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    """An HTTP client on `app`, with its lifespan (the writer is opened and closed)."""
    async with AsyncTestClient(app, raise_server_exceptions=False) as http:
        yield http


async def stored_ids(path: Path) -> list[str]:
    """The event ids in the embedded ledger at `path`, in offset order."""
    if not path.exists():
        return []
    async with EmbeddedLedger(path) as ledger:
        return [record.event.event_id for record in await read_all(ledger)]
