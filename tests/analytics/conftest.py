"""Analytics tests use the projection tests' SQLite store and row builders."""

from tests.projections.conftest import store  # noqa: F401  (fixture, rebound to PostgreSQL in test_postgres_contract)
