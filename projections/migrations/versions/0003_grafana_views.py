"""Views for Grafana's PostgreSQL datasource: signup cohorts, and the reporting currency's
minor-unit exponent (money in major units whatever the currency)

- `currency_minor_units` (currency, exponent): every ISO 4217 code `ledger.money` accepts with the
  decimal places of its minor unit, from babel's CLDR data (babel 2.18.0) frozen here; JPY 0,
  USD 2, KWD 3. tests/metrics/test_grafana_views.py checks it against babel: if babel's data
  changes, write a new revision that replaces the view.
- `grafana_reporting_currency` (currency, exponent, minor_per_major): one row, the reporting
  currency of the projections (`projection_meta` settings) and its exponent; no row before the
  projector wrote its settings. Panels divide minor units by `minor_per_major` and round to
  `exponent` places.
- `grafana_cohort_retention`: one row per signup cohort (month of the customer's first
  `new_business`) and month since, as `mrr report cohorts --period month` (docs/analytics.md),
  on the current rows (`superseded_at IS NULL`), as of now.
- `grafana_monthly_bridge`: one row per UTC month from the first with data to the current one,
  as `mrr report bridge --period month` (docs/reports.md) on the current rows, as of now: opening
  MRR, each movement type, fx_impact and closing MRR in major units of the reporting currency,
  and the report's customer counts.

The three `grafana_*` views read through SQL functions whose bodies are plain strings, so
PostgreSQL resolves the table names when they run rather than binding the views to the tables:
`mrr replay` swaps in rebuilt tables by moving the live ones to another schema and dropping it
with CASCADE (projections/side_schema.py), which would drop a view bound to them. The functions
pin `search_path` to the schema they were created in, so they read the live tables of that schema
whoever calls them. Views and functions are invisible to `mrr db check`, which compares tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 (written by hand, then frozen)
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CURRENCY_MINOR_UNITS = """
CREATE VIEW currency_minor_units (currency, exponent) AS VALUES
    ('ADP', 0), ('AED', 2), ('AFA', 2), ('AFN', 0), ('ALK', 2), ('ALL', 0), ('AMD', 2), ('ANG', 2), ('AOA', 2),
    ('AOK', 2), ('AON', 2), ('AOR', 2), ('ARA', 2), ('ARL', 2), ('ARM', 2), ('ARP', 2), ('ARS', 2), ('ATS', 2),
    ('AUD', 2), ('AWG', 2), ('AZM', 2), ('AZN', 2), ('BAD', 2), ('BAM', 2), ('BAN', 2), ('BBD', 2), ('BDT', 2),
    ('BEC', 2), ('BEF', 2), ('BEL', 2), ('BGL', 2), ('BGM', 2), ('BGN', 2), ('BGO', 2), ('BHD', 3), ('BIF', 0),
    ('BMD', 2), ('BND', 2), ('BOB', 2), ('BOL', 2), ('BOP', 2), ('BOV', 2), ('BRB', 2), ('BRC', 2), ('BRE', 2),
    ('BRL', 2), ('BRN', 2), ('BRR', 2), ('BRZ', 2), ('BSD', 2), ('BTN', 2), ('BUK', 2), ('BWP', 2), ('BYB', 2),
    ('BYN', 2), ('BYR', 0), ('BZD', 2), ('CAD', 2), ('CDF', 2), ('CHE', 2), ('CHF', 2), ('CHW', 2), ('CLE', 2),
    ('CLF', 4), ('CLP', 0), ('CNH', 2), ('CNX', 2), ('CNY', 2), ('COP', 2), ('COU', 2), ('CRC', 2), ('CSD', 2),
    ('CSK', 2), ('CUC', 2), ('CUP', 2), ('CVE', 2), ('CYP', 2), ('CZK', 2), ('DDM', 2), ('DEM', 2), ('DJF', 0),
    ('DKK', 2), ('DOP', 2), ('DZD', 2), ('ECS', 2), ('ECV', 2), ('EEK', 2), ('EGP', 2), ('ERN', 2), ('ESA', 2),
    ('ESB', 2), ('ESP', 0), ('ETB', 2), ('EUR', 2), ('FIM', 2), ('FJD', 2), ('FKP', 2), ('FRF', 2), ('GBP', 2),
    ('GEK', 2), ('GEL', 2), ('GHC', 2), ('GHS', 2), ('GIP', 2), ('GMD', 2), ('GNF', 0), ('GNS', 2), ('GQE', 2),
    ('GRD', 2), ('GTQ', 2), ('GWE', 2), ('GWP', 2), ('GYD', 2), ('HKD', 2), ('HNL', 2), ('HRD', 2), ('HRK', 2),
    ('HTG', 2), ('HUF', 2), ('IDR', 2), ('IEP', 2), ('ILP', 2), ('ILR', 2), ('ILS', 2), ('INR', 2), ('IQD', 0),
    ('IRR', 0), ('ISJ', 2), ('ISK', 0), ('ITL', 0), ('JMD', 2), ('JOD', 3), ('JPY', 0), ('KES', 2), ('KGS', 2),
    ('KHR', 2), ('KMF', 0), ('KPW', 0), ('KRH', 2), ('KRO', 2), ('KRW', 0), ('KWD', 3), ('KYD', 2), ('KZT', 2),
    ('LAK', 0), ('LBP', 0), ('LKR', 2), ('LRD', 2), ('LSL', 2), ('LTL', 2), ('LTT', 2), ('LUC', 2), ('LUF', 0),
    ('LUL', 2), ('LVL', 2), ('LVR', 2), ('LYD', 3), ('MAD', 2), ('MAF', 2), ('MCF', 2), ('MDC', 2), ('MDL', 2),
    ('MGA', 0), ('MGF', 0), ('MKD', 2), ('MKN', 2), ('MLF', 2), ('MMK', 0), ('MNT', 2), ('MOP', 2), ('MRO', 0),
    ('MRU', 2), ('MTL', 2), ('MTP', 2), ('MUR', 2), ('MVP', 2), ('MVR', 2), ('MWK', 2), ('MXN', 2), ('MXP', 2),
    ('MXV', 2), ('MYR', 2), ('MZE', 2), ('MZM', 2), ('MZN', 2), ('NAD', 2), ('NGN', 2), ('NIC', 2), ('NIO', 2),
    ('NLG', 2), ('NOK', 2), ('NPR', 2), ('NZD', 2), ('OMR', 3), ('PAB', 2), ('PEI', 2), ('PEN', 2), ('PES', 2),
    ('PGK', 2), ('PHP', 2), ('PKR', 2), ('PLN', 2), ('PLZ', 2), ('PTE', 2), ('PYG', 0), ('QAR', 2), ('RHD', 2),
    ('ROL', 2), ('RON', 2), ('RSD', 0), ('RUB', 2), ('RUR', 2), ('RWF', 0), ('SAR', 2), ('SBD', 2), ('SCR', 2),
    ('SDD', 2), ('SDG', 2), ('SDP', 2), ('SEK', 2), ('SGD', 2), ('SHP', 2), ('SIT', 2), ('SKK', 2), ('SLE', 2),
    ('SLL', 0), ('SOS', 0), ('SRD', 2), ('SRG', 2), ('SSP', 2), ('STD', 0), ('STN', 2), ('SUR', 2), ('SVC', 2),
    ('SYP', 0), ('SZL', 2), ('THB', 2), ('TJR', 2), ('TJS', 2), ('TMM', 0), ('TMT', 2), ('TND', 3), ('TOP', 2),
    ('TPE', 2), ('TRL', 0), ('TRY', 2), ('TTD', 2), ('TWD', 2), ('TZS', 2), ('UAH', 2), ('UAK', 2), ('UGS', 2),
    ('UGX', 0), ('USD', 2), ('USN', 2), ('USS', 2), ('UYI', 0), ('UYP', 2), ('UYU', 2), ('UYW', 4), ('UZS', 2),
    ('VEB', 2), ('VED', 2), ('VEF', 2), ('VES', 2), ('VND', 0), ('VNN', 2), ('VUV', 0), ('WST', 2), ('XAF', 0),
    ('XAG', 2), ('XAU', 2), ('XBA', 2), ('XBB', 2), ('XBC', 2), ('XBD', 2), ('XCD', 2), ('XCG', 2), ('XDR', 2),
    ('XEU', 2), ('XFO', 2), ('XFU', 2), ('XOF', 0), ('XPD', 2), ('XPF', 0), ('XPT', 2), ('XRE', 2), ('XSU', 2),
    ('XUA', 2), ('YDD', 2), ('YER', 0), ('YUD', 2), ('YUM', 2), ('YUN', 2), ('YUR', 2), ('ZAL', 2), ('ZAR', 2),
    ('ZMK', 0), ('ZMW', 2), ('ZRN', 2), ('ZRZ', 2), ('ZWD', 0), ('ZWG', 2), ('ZWL', 2), ('ZWR', 2)
"""

REPORTING_CURRENCY = """
CREATE FUNCTION mrr_reporting_currency()
RETURNS TABLE (currency text, exponent integer, minor_per_major bigint)
LANGUAGE sql STABLE
SET search_path = {schema}
AS $body$
    SELECT u.currency, u.exponent, (10 ^ u.exponent)::bigint
    FROM projection_meta m
    JOIN currency_minor_units u ON u.currency = (m.value::json ->> 'reporting_currency')
    WHERE m.key = 'settings'
$body$
"""

# As projections/analytics/cohorts.py: the cohort of a customer is the month (UTC) of its first
# current new_business effective by now; its starting MRR that movement's mrr_after. Each cohort
# is measured at the end of every month from its own to the current one (just before the month
# ends; at now for the current month, `complete` false): its customers with MRR in force then
# (valid_from < end <= valid_to) and their MRR. `cutoff` is the reports' as_of + 1 microsecond.
COHORT_RETENTION = """
CREATE FUNCTION mrr_cohort_retention()
RETURNS TABLE (cohort text, cohort_start timestamptz, cohort_customers bigint, starting_mrr numeric,
               periods_since_start integer, period text, customers bigint, mrr numeric,
               logo_retention numeric, revenue_retention numeric, complete boolean, currency text)
LANGUAGE sql STABLE
SET search_path = {schema}
AS $body$
    WITH now_ AS (
        SELECT now() + interval '1 microsecond' AS cutoff,
               date_trunc('month', now() AT TIME ZONE 'UTC') AS this_month
    ), firsts AS (
        SELECT DISTINCT ON (v.customer_id) v.customer_id, v.effective_at, v.mrr_after
        FROM movements v, now_
        WHERE v.superseded_at IS NULL AND v.type = 'new_business' AND v.effective_at < now_.cutoff
        ORDER BY v.customer_id, v.effective_at, v.id
    ), members AS (
        SELECT f.customer_id, date_trunc('month', f.effective_at AT TIME ZONE 'UTC') AS month, f.mrr_after
        FROM firsts f
    ), cohorts AS (
        SELECT b.month, count(*) AS size, sum(b.mrr_after) AS starting
        FROM members b GROUP BY b.month
    ), cells AS (
        SELECT c.month, c.size, c.starting, k.age,
               c.month + make_interval(months => k.age) AS period,
               LEAST((c.month + make_interval(months => k.age + 1)) AT TIME ZONE 'UTC', now_.cutoff) AS boundary,
               (c.month + make_interval(months => k.age + 1)) AT TIME ZONE 'UTC' <= now_.cutoff AS complete
        FROM cohorts c
        CROSS JOIN now_
        CROSS JOIN LATERAL generate_series(
            0, ((extract(year FROM now_.this_month) - extract(year FROM c.month)) * 12
                + extract(month FROM now_.this_month) - extract(month FROM c.month))::integer) AS k(age)
    ), levels AS (
        SELECT cell.month, cell.age,
               count(i.customer_id) FILTER (WHERE i.mrr > 0) AS customers,
               coalesce(sum(i.mrr), 0) AS mrr
        FROM cells cell
        LEFT JOIN (members b JOIN customer_mrr i ON i.customer_id = b.customer_id AND i.superseded_at IS NULL)
          ON b.month = cell.month AND i.valid_from < cell.boundary
         AND (i.valid_to IS NULL OR i.valid_to >= cell.boundary)
        GROUP BY cell.month, cell.age
    )
    SELECT to_char(cell.month, 'YYYY-MM'), cell.month AT TIME ZONE 'UTC', cell.size,
           round(cell.starting / r.minor_per_major, r.exponent),
           cell.age, to_char(cell.period, 'YYYY-MM'), l.customers,
           round(l.mrr / r.minor_per_major, r.exponent),
           round(l.customers::numeric / cell.size, 4),
           round(l.mrr / NULLIF(cell.starting, 0), 4),
           cell.complete, r.currency
    FROM cells cell
    JOIN levels l ON l.month = cell.month AND l.age = cell.age
    LEFT JOIN mrr_reporting_currency() r ON true
    ORDER BY cell.month, cell.age
$body$
"""


# As projections/queries/bridge.py over `resolve_periods` (no --from/--to): the months (UTC) from
# the one of the earliest current customer_mrr.valid_from / movement / FX impact through the
# current one. Each month runs from its start to its end, the current one to `cutoff` (the
# reports' as_of + 1 microsecond). Opening and closing are the MRR in force just before the
# month's start and end (valid_from < b <= valid_to), swept as the report does: an interval adds
# its MRR (and a customer, if MRR > 0) from valid_from on and takes it away after valid_to, so the
# level just before b is the sum of the steps at instants < b: opening, the steps of the months
# before; closing, those of the month too (steps at or after `cutoff` never count). The steps are
# summed by month first: one pass over the rows whatever the number of months.
# unconverted_subscriptions counts the subscription_mrr intervals without a rate (mrr NULL) in
# force just before the month's end, swept the same way. Movements and FX
# impacts belong to the month of their effective_at (before `cutoff`); new/churned/reactivated
# customers count movements of that type.
MONTHLY_BRIDGE = """
CREATE FUNCTION mrr_monthly_bridge()
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
               date_trunc('month', now() AT TIME ZONE 'UTC') AS this_month
    ), first_ AS (
        SELECT date_trunc('month', min(f.instant) AT TIME ZONE 'UTC') AS month
        FROM (SELECT min(c.valid_from) FROM customer_mrr c WHERE c.superseded_at IS NULL
              UNION ALL
              SELECT min(v.effective_at) FROM movements v WHERE v.superseded_at IS NULL
              UNION ALL
              SELECT min(x.effective_at) FROM fx_impacts x WHERE x.superseded_at IS NULL) AS f(instant)
    ), months AS (
        SELECT s.month
        FROM first_ CROSS JOIN now_
        CROSS JOIN LATERAL generate_series(first_.month, now_.this_month, interval '1 month') AS s(month)
    ), steps AS (
        SELECT c.valid_from AS instant, c.mrr, CASE WHEN c.mrr > 0 THEN 1 ELSE 0 END AS customers,
               0 AS unconverted
        FROM customer_mrr c WHERE c.superseded_at IS NULL
        UNION ALL
        SELECT c.valid_to, -c.mrr, CASE WHEN c.mrr > 0 THEN -1 ELSE 0 END, 0
        FROM customer_mrr c WHERE c.superseded_at IS NULL AND c.valid_to IS NOT NULL
        UNION ALL
        SELECT s.valid_from, 0, 0, 1
        FROM subscription_mrr s WHERE s.superseded_at IS NULL AND s.mrr IS NULL
        UNION ALL
        SELECT s.valid_to, 0, 0, -1
        FROM subscription_mrr s WHERE s.superseded_at IS NULL AND s.mrr IS NULL AND s.valid_to IS NOT NULL
    ), step_months AS (
        SELECT date_trunc('month', st.instant AT TIME ZONE 'UTC') AS month, sum(st.mrr) AS mrr,
               sum(st.customers) AS customers, sum(st.unconverted) AS unconverted
        FROM steps st CROSS JOIN now_
        WHERE st.instant < now_.cutoff
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
    ), moves AS (
        SELECT date_trunc('month', v.effective_at AT TIME ZONE 'UTC') AS month,
               coalesce(sum(v.amount) FILTER (WHERE v.type = 'new_business'), 0) AS new_business,
               coalesce(sum(v.amount) FILTER (WHERE v.type = 'expansion'), 0) AS expansion,
               coalesce(sum(v.amount) FILTER (WHERE v.type = 'contraction'), 0) AS contraction,
               coalesce(sum(v.amount) FILTER (WHERE v.type = 'churn'), 0) AS churn,
               coalesce(sum(v.amount) FILTER (WHERE v.type = 'reactivation'), 0) AS reactivation,
               count(*) FILTER (WHERE v.type = 'new_business') AS new_customers,
               count(*) FILTER (WHERE v.type = 'churn') AS churned_customers,
               count(*) FILTER (WHERE v.type = 'reactivation') AS reactivated_customers
        FROM movements v CROSS JOIN now_
        WHERE v.superseded_at IS NULL AND v.effective_at < now_.cutoff
        GROUP BY 1
    ), fx AS (
        SELECT date_trunc('month', x.effective_at AT TIME ZONE 'UTC') AS month, sum(x.amount) AS fx_impact
        FROM fx_impacts x CROSS JOIN now_
        WHERE x.superseded_at IS NULL AND x.effective_at < now_.cutoff
        GROUP BY 1
    )
    SELECT to_char(m.month, 'YYYY-MM'), m.month AT TIME ZONE 'UTC',
           round(l.opening_mrr / r.minor_per_major, r.exponent),
           round(coalesce(mv.new_business, 0) / r.minor_per_major, r.exponent),
           round(coalesce(mv.expansion, 0) / r.minor_per_major, r.exponent),
           round(coalesce(mv.contraction, 0) / r.minor_per_major, r.exponent),
           round(coalesce(mv.churn, 0) / r.minor_per_major, r.exponent),
           round(coalesce(mv.reactivation, 0) / r.minor_per_major, r.exponent),
           round(coalesce(fx.fx_impact, 0) / r.minor_per_major, r.exponent),
           round(l.closing_mrr / r.minor_per_major, r.exponent),
           l.customers_opening::bigint, l.customers_closing::bigint,
           coalesce(mv.new_customers, 0), coalesce(mv.churned_customers, 0),
           coalesce(mv.reactivated_customers, 0), l.unconverted::bigint, r.currency
    FROM months m
    JOIN levels l ON l.month = m.month
    LEFT JOIN moves mv ON mv.month = m.month
    LEFT JOIN fx ON fx.month = m.month
    LEFT JOIN mrr_reporting_currency() r ON true
    ORDER BY m.month
$body$
"""


def _schema() -> str:
    name = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    return op.get_bind().dialect.identifier_preparer.quote(name)


def upgrade() -> None:
    schema = _schema()
    op.execute(CURRENCY_MINOR_UNITS)
    op.execute(REPORTING_CURRENCY.format(schema=schema))
    op.execute("CREATE VIEW grafana_reporting_currency AS SELECT * FROM mrr_reporting_currency()")
    op.execute(COHORT_RETENTION.format(schema=schema))
    op.execute("CREATE VIEW grafana_cohort_retention AS SELECT * FROM mrr_cohort_retention()")
    op.execute(MONTHLY_BRIDGE.format(schema=schema))
    op.execute("CREATE VIEW grafana_monthly_bridge AS SELECT * FROM mrr_monthly_bridge()")


def downgrade() -> None:
    op.execute("DROP VIEW grafana_monthly_bridge")
    op.execute("DROP FUNCTION mrr_monthly_bridge()")
    op.execute("DROP VIEW grafana_cohort_retention")
    op.execute("DROP FUNCTION mrr_cohort_retention()")
    op.execute("DROP VIEW grafana_reporting_currency")
    op.execute("DROP FUNCTION mrr_reporting_currency()")
    op.execute("DROP VIEW currency_minor_units")
