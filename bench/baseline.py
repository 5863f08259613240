"""The batch-SQL baseline: monthly MRR per customer and its category, the way a dbt MRR model
computes it, in one set-based PostgreSQL statement over a subscription-periods table.

The periods table is filled (untimed) from the current rows of `subscription_mrr` that a
replay left in the database: one row per subscription and stretch of constant MRR, in the
reporting currency, which is what the dbt playbook's `subscription_periods` model holds. The
timed statement then does what that playbook does: a month spine, the periods in force at each
month, MRR per customer and month with the gaps filled with zero, `lag()` over each customer's
months, and a category per change (new, expansion, contraction, churn, reactivation), written
to a table (`CREATE TABLE … AS`, as a dbt model is materialised).

Months are measured like the bridge's opening MRR: a period counts at the start of month M when
it began before M and had not ended before M. So the baseline's total per month should equal the
bridge's opening MRR of that month; `agreement` says in how many months it does. Unconverted
MRR (no FX rate yet) is left out of the baseline, as the bridge keeps it apart.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import asyncpg

SCHEMA = "bench_baseline"

FILL_PERIODS = f"""
CREATE TABLE {SCHEMA}.subscription_periods AS
SELECT customer_id, subscription_id, valid_from AS started_at, valid_to AS ended_at, mrr
FROM public.subscription_mrr
WHERE superseded_at IS NULL AND mrr IS NOT NULL AND mrr <> 0
"""

MONTHLY_MRR = f"""
CREATE TABLE {SCHEMA}.customer_mrr_monthly AS
WITH months AS (
    SELECT generate_series(date_trunc('month', min(started_at)) + interval '1 month',
                           date_trunc('month', now()), interval '1 month') AS month
    FROM {SCHEMA}.subscription_periods
),
in_force AS (
    SELECT m.month, p.customer_id, sum(p.mrr) AS mrr
    FROM months m
    JOIN {SCHEMA}.subscription_periods p
      ON p.started_at < m.month AND (p.ended_at IS NULL OR p.ended_at >= m.month)
    GROUP BY m.month, p.customer_id
),
spine AS (
    SELECT c.customer_id, m.month
    FROM (SELECT customer_id, min(month) AS first_month, max(month) AS last_month
          FROM in_force GROUP BY customer_id) c
    JOIN months m ON m.month >= c.first_month AND m.month <= c.last_month + interval '1 month'
),
filled AS (
    SELECT s.customer_id, s.month, coalesce(f.mrr, 0) AS mrr
    FROM spine s LEFT JOIN in_force f USING (customer_id, month)
),
lagged AS (
    SELECT customer_id, month, mrr,
           coalesce(lag(mrr) OVER customer_months, 0) AS previous,
           coalesce(bool_or(mrr > 0) OVER (customer_months ROWS BETWEEN UNBOUNDED PRECEDING
                                           AND 1 PRECEDING), false) AS had_mrr
    FROM filled
    WINDOW customer_months AS (PARTITION BY customer_id ORDER BY month)
)
SELECT customer_id, month, mrr, mrr - previous AS change,
       CASE WHEN previous = 0 AND mrr > 0 AND NOT had_mrr THEN 'new'
            WHEN previous = 0 AND mrr > 0 THEN 'reactivation'
            WHEN previous > 0 AND mrr = 0 THEN 'churn'
            WHEN mrr > previous THEN 'expansion'
            WHEN mrr < previous THEN 'contraction'
       END AS category
FROM lagged
"""


async def measure(dsn: str, opening_by_month: dict[str, int], runs: int) -> dict[str, Any]:
    """Fill the periods table, then time the monthly-MRR statement `runs` times (median).

    `opening_by_month`: the bridge's opening MRR per month label (YYYY-MM) to compare with."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        await conn.execute(FILL_PERIODS)
        await conn.execute(f"ANALYZE {SCHEMA}.subscription_periods")
        periods = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.subscription_periods")
        seconds = []
        for _ in range(max(1, runs)):
            await conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.customer_mrr_monthly")
            started = time.perf_counter()
            await conn.execute(MONTHLY_MRR)
            seconds.append(time.perf_counter() - started)
        rows = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.customer_mrr_monthly")
        totals = {r["label"]: int(r["total"]) for r in await conn.fetch(
            f"SELECT to_char(month, 'YYYY-MM') AS label, sum(mrr) AS total"
            f" FROM {SCHEMA}.customer_mrr_monthly GROUP BY month")}
        await conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    finally:
        await conn.close()
    compared = [label for label in totals if label in opening_by_month]
    agreeing = [label for label in compared if totals[label] == opening_by_month[label]]
    return {"periods": periods, "rows": rows, "seconds": round(statistics.median(seconds), 3),
            "all_seconds": [round(s, 3) for s in seconds],
            "agreement": f"{len(agreeing)}/{len(compared)} months equal the bridge's opening MRR"}
