"""grafana_monthly_bridge reads bridge_totals: the same rows as revision 0003's function, at a
cost that no longer grows with the number of customers

`mrr_monthly_bridge()` (behind the view `grafana_monthly_bridge`) reported the current rows as of
now by adding up every customer interval, movement and FX impact. Revision 0004's
`bridge_totals` hold exactly what the current rows add up to per UTC day, so the function now
takes the days before today from them and only today's part, up to now, from the rows (through
the indexes on valid_from, valid_to and effective_at). Same columns, same numbers:
tests/metrics/test_grafana_views.py compares the view with `mrr report bridge --period month`,
with rows effective today among them. The first month is the first with a current customer
interval, movement or FX impact, as before (a day's totals are all zero only if nothing current
is on it, or if interval ends cancel starts there, which cannot happen on the first such day).

Downgrade puts 0003's function back.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 (written by hand, then frozen)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MONTHLY_BRIDGE = """
CREATE OR REPLACE FUNCTION mrr_monthly_bridge()
RETURNS TABLE (period text, month_start timestamptz,
               opening_mrr numeric, new_business numeric, expansion numeric, contraction numeric,
               churn numeric, reactivation numeric, fx_impact numeric, closing_mrr numeric,
               customers_opening bigint, customers_closing bigint, new_customers bigint,
               churned_customers bigint, reactivated_customers bigint, unconverted_subscriptions bigint,
               currency text)
LANGUAGE sql STABLE
SET search_path = {schema}
AS $body$
    WITH now_ AS (
        SELECT now() + interval '1 microsecond' AS cutoff,
               date_trunc('month', now() AT TIME ZONE 'UTC') AS this_month,
               CAST(timezone('UTC', now()) AS date) AS today,
               date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS today_start
    ), first_ AS (
        SELECT date_trunc('month', min(t.day)) AS month
        FROM bridge_totals t
        WHERE t.measure <> 'unconverted' AND (t.amount <> 0 OR t.row_count <> 0)
    ), months AS (
        SELECT s.month
        FROM first_ CROSS JOIN now_
        CROSS JOIN LATERAL generate_series(first_.month, now_.this_month, interval '1 month') AS s(month)
    ), today_steps AS (
        SELECT c.valid_from AS instant, c.mrr, CASE WHEN c.mrr > 0 THEN 1 ELSE 0 END AS customers,
               0 AS unconverted
        FROM customer_mrr c CROSS JOIN now_
        WHERE c.superseded_at IS NULL AND c.valid_from >= now_.today_start AND c.valid_from < now_.cutoff
        UNION ALL
        SELECT c.valid_to, -c.mrr, CASE WHEN c.mrr > 0 THEN -1 ELSE 0 END, 0
        FROM customer_mrr c CROSS JOIN now_
        WHERE c.superseded_at IS NULL AND c.valid_to >= now_.today_start AND c.valid_to < now_.cutoff
        UNION ALL
        SELECT s.valid_from, 0, 0, 1
        FROM subscription_mrr s CROSS JOIN now_
        WHERE s.superseded_at IS NULL AND s.mrr IS NULL
          AND s.valid_from >= now_.today_start AND s.valid_from < now_.cutoff
        UNION ALL
        SELECT s.valid_to, 0, 0, -1
        FROM subscription_mrr s CROSS JOIN now_
        WHERE s.superseded_at IS NULL AND s.mrr IS NULL
          AND s.valid_to >= now_.today_start AND s.valid_to < now_.cutoff
    ), step_parts AS (
        SELECT date_trunc('month', t.day) AS month,
               coalesce(sum(t.amount) FILTER (WHERE t.measure = 'mrr'), 0) AS mrr,
               coalesce(sum(t.row_count) FILTER (WHERE t.measure = 'mrr'), 0) AS customers,
               coalesce(sum(t.row_count) FILTER (WHERE t.measure = 'unconverted'), 0) AS unconverted
        FROM bridge_totals t CROSS JOIN now_
        WHERE t.day < now_.today AND t.measure IN ('mrr', 'unconverted')
        GROUP BY 1
        UNION ALL
        SELECT date_trunc('month', st.instant AT TIME ZONE 'UTC'), sum(st.mrr), sum(st.customers),
               sum(st.unconverted)
        FROM today_steps st
        GROUP BY 1
    ), step_months AS (
        SELECT p.month, sum(p.mrr) AS mrr, sum(p.customers) AS customers, sum(p.unconverted) AS unconverted
        FROM step_parts p
        GROUP BY 1
    ), levels AS (
        SELECT m.month,
               coalesce(sum(sm.mrr) FILTER (WHERE sm.month < m.month), 0) AS opening_mrr,
               coalesce(sum(sm.mrr), 0) AS closing_mrr,
               coalesce(sum(sm.customers) FILTER (WHERE sm.month < m.month), 0) AS customers_opening,
               coalesce(sum(sm.customers), 0) AS customers_closing,
               coalesce(sum(sm.unconverted), 0) AS unconverted
        FROM months m
        LEFT JOIN step_months sm ON sm.month <= m.month
        GROUP BY m.month
    ), flow_parts AS (
        SELECT date_trunc('month', t.day) AS month, t.measure AS kind, t.amount, t.row_count AS n
        FROM bridge_totals t CROSS JOIN now_
        WHERE t.day < now_.today AND t.measure NOT IN ('mrr', 'unconverted')
        UNION ALL
        SELECT date_trunc('month', v.effective_at AT TIME ZONE 'UTC'), v.type, v.amount, 1
        FROM movements v CROSS JOIN now_
        WHERE v.superseded_at IS NULL AND v.effective_at >= now_.today_start AND v.effective_at < now_.cutoff
        UNION ALL
        SELECT date_trunc('month', x.effective_at AT TIME ZONE 'UTC'), 'fx_impact', x.amount, 1
        FROM fx_impacts x CROSS JOIN now_
        WHERE x.superseded_at IS NULL AND x.effective_at >= now_.today_start AND x.effective_at < now_.cutoff
    ), flows AS (
        SELECT f.month,
               coalesce(sum(f.amount) FILTER (WHERE f.kind = 'new_business'), 0) AS new_business,
               coalesce(sum(f.amount) FILTER (WHERE f.kind = 'expansion'), 0) AS expansion,
               coalesce(sum(f.amount) FILTER (WHERE f.kind = 'contraction'), 0) AS contraction,
               coalesce(sum(f.amount) FILTER (WHERE f.kind = 'churn'), 0) AS churn,
               coalesce(sum(f.amount) FILTER (WHERE f.kind = 'reactivation'), 0) AS reactivation,
               coalesce(sum(f.amount) FILTER (WHERE f.kind = 'fx_impact'), 0) AS fx_impact,
               coalesce(sum(f.n) FILTER (WHERE f.kind = 'new_business'), 0) AS new_customers,
               coalesce(sum(f.n) FILTER (WHERE f.kind = 'churn'), 0) AS churned_customers,
               coalesce(sum(f.n) FILTER (WHERE f.kind = 'reactivation'), 0) AS reactivated_customers
        FROM flow_parts f
        GROUP BY 1
    )
    SELECT to_char(m.month, 'YYYY-MM'), m.month AT TIME ZONE 'UTC',
           round(l.opening_mrr / r.minor_per_major, r.exponent),
           round(coalesce(fl.new_business, 0) / r.minor_per_major, r.exponent),
           round(coalesce(fl.expansion, 0) / r.minor_per_major, r.exponent),
           round(coalesce(fl.contraction, 0) / r.minor_per_major, r.exponent),
           round(coalesce(fl.churn, 0) / r.minor_per_major, r.exponent),
           round(coalesce(fl.reactivation, 0) / r.minor_per_major, r.exponent),
           round(coalesce(fl.fx_impact, 0) / r.minor_per_major, r.exponent),
           round(l.closing_mrr / r.minor_per_major, r.exponent),
           l.customers_opening::bigint, l.customers_closing::bigint,
           coalesce(fl.new_customers, 0)::bigint, coalesce(fl.churned_customers, 0)::bigint,
           coalesce(fl.reactivated_customers, 0)::bigint, l.unconverted::bigint, r.currency
    FROM months m
    JOIN levels l ON l.month = m.month
    LEFT JOIN flows fl ON fl.month = m.month
    LEFT JOIN mrr_reporting_currency() r ON true
    ORDER BY m.month
$body$
"""


def _schema() -> str:
    name = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    return op.get_bind().dialect.identifier_preparer.quote(name)


def upgrade() -> None:
    op.execute(MONTHLY_BRIDGE.format(schema=_schema()))


def downgrade() -> None:
    path = Path(__file__).with_name("0003_grafana_views.py")
    spec = importlib.util.spec_from_file_location("revision_0003", path)
    assert spec is not None and spec.loader is not None
    revision_0003 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision_0003)
    op.execute(revision_0003.MONTHLY_BRIDGE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
               .format(schema=_schema()))
