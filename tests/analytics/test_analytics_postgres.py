"""Cohorts, segments, unit economics and the price simulation on PostgreSQL: the same
hand-computed tests as on SQLite (re-collected here with `store` bound to a fresh schema on the
real server), and the three report subcommands through the CLI on PostgreSQL projections at
Alembic's head revision (forecast and simulate through the CLI: test_forecast_postgres.py)."""

from __future__ import annotations

import asyncio

from tests.analytics import test_cli as cli_tests
from tests.analytics.test_cli import _no_outside_config  # noqa: F401  (autouse here too)
from tests.analytics.test_cohorts import *  # noqa: F401,F403  (re-collected here)
from tests.analytics.test_segments import *  # noqa: F401,F403
from tests.analytics.test_simulate import *  # noqa: F401,F403
from tests.analytics.test_unit_economics import *  # noqa: F401,F403
from tests.projections.test_postgres_contract import store  # noqa: F401  (last: binds `store` to PostgreSQL)


def test_analytics_cli_on_postgres(tmp_path, fresh_database):
    from projections.migrate import upgrade

    asyncio.run(upgrade(fresh_database))  # the CLI needs the schema at Alembic's head revision
    cli_tests.DATABASE_URL[tmp_path] = fresh_database
    try:
        asyncio.run(cli_tests.record(tmp_path, database_url=fresh_database))
        cli_tests.test_cohorts_cli(tmp_path)
        cli_tests.test_segments_cli(tmp_path)
        cli_tests.test_unit_economics_cli(tmp_path)
    finally:
        del cli_tests.DATABASE_URL[tmp_path]
    assert not (tmp_path / "projections.sqlite").exists()  # PostgreSQL, not SQLite, was read
