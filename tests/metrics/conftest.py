"""Fixtures of the metrics tests: a clean `MRR_*`-free environment and fresh Postgres databases."""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture
def clean_env(tmp_path) -> dict[str, str]:
    """The environment for `mrr` subprocesses: no outside MRR_* settings, data in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env["MRR_DATA_DIR"] = str(tmp_path / "data")
    return env


async def new_database(postgres_url: str) -> str:
    """A new database on the test server, migrated to the Alembic head (left for the server's
    throwaway data directory to drop)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from projections.migrate import upgrade

    name = "m_" + uuid.uuid4().hex[:12]
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = f"{postgres_url.rpartition('/')[0]}/{name}"
    await upgrade(url)
    return url
