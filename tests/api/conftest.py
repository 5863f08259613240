"""Fixtures of the API tests: an app on a fresh embedded ledger per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from tests.api.support import client, embedded_app


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ledger.sqlite"


@pytest.fixture
async def http(ledger_path: Path) -> AsyncIterator[AsyncTestClient]:
    """A client of the API on the embedded ledger at `ledger_path`."""
    async with client(embedded_app(ledger_path)) as http:
        yield http
