"""Analytics finance teams ask for, on top of the report queries (`projections.queries`).

One small module per analysis, each a synchronous function over a SQLAlchemy `Connection` (run it
with `ProjectionStore.read`, so it works on SQLite and PostgreSQL) plus a `*_json` renderer:
`cohorts` (logo and revenue retention by period since the first `new_business`), `segments`
(MRR, customers, ARPA and movements by plan, currency, billing interval or customer attribute),
`unit_economics` (LTV with a trailing window, CAC by channel, retention, payback), `forecast`
(trailing rates, projection, band, backtest; split into `forecast_rates`, `forecast_projection`
and `forecast_backtest`) and `simulate` (a price change run through the engine; split into
`simulate_scenario`, `simulate_events`, `simulate_uplift`, `simulate_store`, `simulate_compare`
and `simulate_report`); `charts` and `forecast_chart` draw their PNGs. Money stays in integer minor units and
ratios in exact Decimals until rendered. Definitions and worked examples: docs/analytics.md.

Modules import nothing from this package's `__init__`, so each can be used on its own.
"""
