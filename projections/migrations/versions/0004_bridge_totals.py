"""bridge_totals (the bridge's sums per UTC day and measure, kept by the projector) and indexes on
the intervals' valid_to

bridge_totals is filled here from the rows already projected, with the rule of
`projections.totals` (frozen below as SQL): a customer interval adds its MRR (and 1 if positive)
to `mrr` on the UTC day it starts and takes it away on the day it ends, an unconverted
subscription interval 0 and 1 to `unconverted`, a movement its amount and 1 to its type, an FX
impact its amount and 1 to `fx_impact`; only current rows add up, every row counts for
`changed_at` (its superseded_at, else its recorded_at). `mrr verify` compares the totals with the
rows, so a difference between this SQL and the code would show there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 (written by hand, then frozen)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FILL = """
INSERT INTO bridge_totals (day, measure, amount, row_count, changed_at)
SELECT day, measure, sum(amount), sum(n), max(at) FROM (
    SELECT CAST(timezone('UTC', valid_from) AS date) AS day, 'mrr' AS measure,
           CASE WHEN superseded_at IS NULL THEN mrr ELSE 0 END AS amount,
           CASE WHEN superseded_at IS NULL AND mrr > 0 THEN 1 ELSE 0 END AS n,
           coalesce(superseded_at, recorded_at) AS at
      FROM customer_mrr
    UNION ALL
    SELECT CAST(timezone('UTC', valid_to) AS date), 'mrr',
           CASE WHEN superseded_at IS NULL THEN -mrr ELSE 0 END,
           CASE WHEN superseded_at IS NULL AND mrr > 0 THEN -1 ELSE 0 END,
           coalesce(superseded_at, recorded_at)
      FROM customer_mrr WHERE valid_to IS NOT NULL
    UNION ALL
    SELECT CAST(timezone('UTC', valid_from) AS date), 'unconverted', 0,
           CASE WHEN superseded_at IS NULL THEN 1 ELSE 0 END, coalesce(superseded_at, recorded_at)
      FROM subscription_mrr WHERE mrr IS NULL
    UNION ALL
    SELECT CAST(timezone('UTC', valid_to) AS date), 'unconverted', 0,
           CASE WHEN superseded_at IS NULL THEN -1 ELSE 0 END, coalesce(superseded_at, recorded_at)
      FROM subscription_mrr WHERE mrr IS NULL AND valid_to IS NOT NULL
    UNION ALL
    SELECT CAST(timezone('UTC', effective_at) AS date), type,
           CASE WHEN superseded_at IS NULL THEN amount ELSE 0 END,
           CASE WHEN superseded_at IS NULL THEN 1 ELSE 0 END, coalesce(superseded_at, recorded_at)
      FROM movements
    UNION ALL
    SELECT CAST(timezone('UTC', effective_at) AS date), 'fx_impact',
           CASE WHEN superseded_at IS NULL THEN amount ELSE 0 END,
           CASE WHEN superseded_at IS NULL THEN 1 ELSE 0 END, coalesce(superseded_at, recorded_at)
      FROM fx_impacts
) AS contributions
GROUP BY day, measure
"""


def upgrade() -> None:
    op.create_table(
        "bridge_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "measure"),
    )
    op.execute(FILL)
    op.create_index("ix_customer_mrr_valid_to", "customer_mrr", ["valid_to"], unique=False)
    op.create_index("ix_subscription_mrr_valid_to", "subscription_mrr", ["valid_to"], unique=False)
    op.execute("UPDATE projection_meta SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_subscription_mrr_valid_to", table_name="subscription_mrr")
    op.drop_index("ix_customer_mrr_valid_to", table_name="customer_mrr")
    op.drop_table("bridge_totals")
    op.execute("UPDATE projection_meta SET value = '2' WHERE key = 'schema_version'")
