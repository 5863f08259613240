"""Proof: an async SQLAlchemy engine with pool_pre_ping survives a PostgreSQL restart."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.postgres


async def test_engine_reconnects_after_server_restart(
    postgres_url: str, restart_postgres: Callable[[], None]
) -> None:
    engine = create_async_engine(postgres_url, pool_pre_ping=True, pool_size=2)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(text("SELECT pg_postmaster_start_time()"))).scalar()

        await asyncio.to_thread(restart_postgres)  # the pooled connection is now dead

        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT pg_postmaster_start_time()"))).scalar()
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert after > before, "the server was not restarted"
    finally:
        await engine.dispose()
