"""event_conflicts (records reusing an applied event_id with another body) and
customer_fx_lookups (which customers an FX rate can restate)

customer_fx_lookups starts empty: projections at 0001 that hold foreign-currency customers must
be rebuilt after this upgrade (no 0001 database was ever released: 0001 and 0002 date from the
same day of development).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 (written by hand, then frozen)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_conflicts",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition", "offset"),
    )
    op.create_index("ix_event_conflicts_event", "event_conflicts", ["event_id"], unique=False)
    op.create_table(
        "customer_fx_lookups",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("last_lookup_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_customer_fx_lookups_day", "customer_fx_lookups", ["last_lookup_day"], unique=False)
    op.execute("UPDATE projection_meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_customer_fx_lookups_day", table_name="customer_fx_lookups")
    op.drop_table("customer_fx_lookups")
    op.drop_index("ix_event_conflicts_event", table_name="event_conflicts")
    op.drop_table("event_conflicts")
    op.execute("UPDATE projection_meta SET value = '1' WHERE key = 'schema_version'")
