"""The hand-built simulation tests again, on a real PostgreSQL projection store.

Every test of `test_simulate` is re-collected here with `store` bound to a fresh schema on the
test server (the stack plugin starts it, or `MRR_DATABASE_URL`); the `postgres` marker is added
automatically.
"""

from __future__ import annotations

import pytest

from projections.store import ProjectionStore
from tests.analytics.test_simulate import *  # noqa: F401,F403  (re-collected here)


@pytest.fixture
async def store(postgres_url):
    store = ProjectionStore.from_url(postgres_url)
    await store.reset()  # a clean schema per test
    yield store
    await store.close()
