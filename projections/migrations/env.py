"""Alembic environment: always run on a connection handed over by `projections.migrate`."""

from __future__ import annotations

from alembic import context

from projections.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `mrr db upgrade` (projections.migrate), not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
