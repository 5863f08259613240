"""The projection contract on PostgreSQL: the same query and projector tests as on SQLite.

Every test imported below runs again with `store` bound to a fresh schema on the real server
(the stack plugin starts it, or `MRR_DATABASE_URL`); the `postgres` marker is added automatically,
so `make test-unit` leaves them out.
"""

from __future__ import annotations

import pytest

from projections.store import ProjectionStore
from tests.projections.test_projector import *  # noqa: F401,F403  (re-collected here)
from tests.projections.test_queries import *  # noqa: F401,F403


@pytest.fixture
async def store(postgres_url):
    store = ProjectionStore.from_url(postgres_url)
    await store.reset()  # a clean schema per test
    yield store
    await store.close()


def test_restated_month_through_the_cli(tmp_path, fresh_database):
    import asyncio

    from projections.migrate import upgrade
    from tests.projections import test_end_to_end as e2e

    asyncio.run(upgrade(fresh_database))  # the CLI needs the schema at Alembic's head revision
    e2e.DATABASE_URL[tmp_path] = fresh_database
    asyncio.run(e2e.ledger_with_history(tmp_path, project_between=True, database_url=fresh_database))
    common = ["--from", "2024-01", "--to", "2024-01", "--as-of", "2024-03-01T00:00:00Z"]
    first = e2e.report(tmp_path, "bridge", *common, "--known-at", "2024-02-03T00:00:00Z")
    now = e2e.report(tmp_path, "bridge", *common)
    assert (first["rows"][0]["closing_mrr"], now["rows"][0]["closing_mrr"]) == ("150.00", "130.00")
