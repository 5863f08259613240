"""The PostgreSQL views made for Grafana (projections/migrations/versions/0003_grafana_views.py)
and the dashboards' SQL over them, on a real PostgreSQL, read as Grafana's read-only role.

A demo business (`ledger.demo`, 14 months up to the current one) is ingested into a database
prepared exactly as docker compose prepares it (deploy/grafana/postgres-init, then `mrr db
upgrade`), once per reporting currency: USD (2 decimals), JPY (none) and KWD (3), the last two
through a published USD rate (the demo's EUR and GBP rates are quoted in USD: cross rates). Then:

- `grafana_cohort_retention` equals `mrr report cohorts --json` row for row, strings included;
- `grafana_monthly_bridge` equals `mrr report bridge --period month --json` row for row (money in
  the currency's own decimals, customer counts);
- every money panel over history (the monthly bridge table and bars and closing MRR, which read
  `grafana_monthly_bridge`; MRR by billing interval and currency at month end) returns the major
  units `mrr report bridge|segments --json` print, in every currency: no panel assumes two
  decimals;
- `currency_minor_units` is babel's data (what `ledger.money` uses);
- the views survive `mrr replay`'s swap of the live tables (projections.side_schema.swap_in).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.events import Event
from tests.metrics.business import ingest_events, mrr_json
from tests.test_dashboards import DASHBOARDS, grafana_sql, load, panels

REPO = Path(__file__).resolve().parents[2]
INIT_SQL = REPO / "deploy/grafana/postgres-init/10-grafana-reader.sql"
MONTHS = 14
# 1 USD in each reporting currency (the rate only has to give amounts with every decimal used).
USD_RATE = {"USD": None, "JPY": "151.37", "KWD": "0.30713"}
EXPONENT = {"USD": 2, "JPY": 0, "KWD": 3}
MONEY = ("opening_mrr", "new_business", "expansion", "contraction", "churn", "reactivation", "fx_impact",
         "closing_mrr")
COUNTS = ("customers_closing", "new_customers", "churned_customers", "reactivated_customers")
UTC = dt.timezone.utc


def first_month() -> dt.date:
    today = dt.datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - MONTHS
    return dt.date(index // 12, index % 12 + 1, 1)


def demo_events(currency: str) -> list[Any]:
    """The demo business (ending at the start of the current month), with a USD rate to
    `currency` first."""
    from ledger.demo import generate_business

    start = first_month()
    events = [e for _, e in generate_business(seed=11, customers=250, months=MONTHS, start=start)]
    if USD_RATE[currency]:
        rate = {"type": "fx.rate_published", "event_id": f"usd-{currency}", "base": "USD", "quote": currency,
                "rate": USD_RATE[currency], "effective_date": start.isoformat(),
                "occurred_at": dt.datetime(start.year, start.month, 1, tzinfo=UTC).isoformat()}
        events.insert(0, msgspec.convert(rate, Event))
    return events


class Projected:
    """A database holding the demo projected in one reporting currency, and how to read it."""

    def __init__(self, currency: str, url: str, reader_url: str, env: dict[str, str], cwd: Path) -> None:
        self.currency, self.url, self.reader_url, self.env, self.cwd = currency, url, reader_url, env, cwd

    def report(self, *args: str) -> dict[str, Any]:
        return mrr_json(self.env, self.cwd, *args)

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of `sql` read as Grafana's role (read-only transactions)."""
        engine = create_async_engine(self.reader_url)
        try:
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    async def panel(self, dashboard: str, title: str) -> list[dict[str, Any]]:
        """The rows a dashboard's PostgreSQL panel gets over the whole demo up to now."""
        board = load(REPO / "deploy/grafana/dashboards" / dashboard)
        panel = next(p for p in panels(board) if p["title"] == title)
        start = dt.datetime.combine(first_month(), dt.time(), UTC)
        return await self.query(grafana_sql(panel["targets"][0]["rawSql"], start, dt.datetime.now(UTC)))


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def prepared_database(postgres_url: str) -> tuple[str, str, str, str]:
    """A new database set up as docker compose does: the Grafana reader role of
    deploy/grafana/postgres-init (under a unique name), then `mrr db upgrade`. Returns
    (database, role, owner url, reader url)."""
    from projections.migrate import upgrade

    database, role = "g_" + uuid.uuid4().hex[:12], "gr_" + uuid.uuid4().hex[:12]
    await _admin(postgres_url, f'CREATE DATABASE "{database}"')
    url = f"{postgres_url.rpartition('/')[0]}/{database}"
    script = INIT_SQL.read_text().replace("grafana_reader", role).replace("DATABASE mrr", f'DATABASE "{database}"')
    statements = [s.strip() for s in "\n".join(line for line in script.splitlines()
                                                if not line.startswith("--")).split(";") if s.strip()]
    await _admin(url, *statements)
    await upgrade(url)
    reader = make_url(url).set(username=role, password=role).render_as_string(hide_password=False)
    return database, role, url, reader


async def drop_database(postgres_url: str, database: str, role: str) -> None:
    await _admin(postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="module", params=sorted(USD_RATE))
async def projected(request, postgres_url: str, tmp_path_factory) -> AsyncIterator[Projected]:
    from ledger.demo import write_jsonl

    currency = request.param
    tmp = tmp_path_factory.mktemp(f"grafana-{currency}")
    database, role, url, reader = await prepared_database(postgres_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env |= {"MRR_DATA_DIR": str(tmp / "data"), "MRR_DATABASE_URL": url, "MRR_REPORTING_CURRENCY": currency}
    write_jsonl(demo_events(currency), tmp / "events.jsonl")
    await asyncio.to_thread(ingest_events, env, tmp, None, 300)
    yield Projected(currency, url, reader, env, tmp)
    await drop_database(postgres_url, database, role)


# ---------------------------------------------------------------- currency

async def test_reporting_currency_view(projected: Projected) -> None:
    rows = await projected.query("SELECT * FROM grafana_reporting_currency")
    exponent = EXPONENT[projected.currency]
    assert rows == [{"currency": projected.currency, "exponent": exponent, "minor_per_major": 10**exponent}]


async def test_currency_minor_units_are_babels(fresh_database: str) -> None:
    """The exponents frozen in the migration are babel's (`ledger.money.minor_unit_exponent`) for
    every currency the ledger accepts: after a babel upgrade that changes one, this fails and a
    new revision must replace the view."""
    from projections.migrate import upgrade
    from ledger.money import _known_codes, minor_unit_exponent

    await upgrade(fresh_database)
    engine = create_async_engine(fresh_database)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT currency, exponent FROM currency_minor_units"))).all()
    finally:
        await engine.dispose()
    assert len(rows) == len(_known_codes())
    assert dict(rows) == {code: minor_unit_exponent(code) for code in _known_codes()}


# ---------------------------------------------------------------- cohorts

async def test_cohort_view_equals_mrr_report_cohorts(projected: Projected) -> None:
    report = await asyncio.to_thread(projected.report, "cohorts")
    rows = await projected.query("SELECT * FROM grafana_cohort_retention")
    assert report["currency"] == projected.currency and len(report["rows"]) > 60
    assert len(rows) == len(report["rows"])
    for row, expected in zip(rows, report["rows"]):
        assert {k: row[k] if isinstance(row[k], (bool, int)) else str(row[k]) for k in expected} == expected
        assert row["currency"] == projected.currency
        assert row["cohort_start"] == dt.datetime.strptime(expected["cohort"], "%Y-%m").replace(tzinfo=UTC)
    # The demo has churn, expansion and reactivation: retention below and above 100 %.
    assert any(r["logo_retention"] < 1 for r in rows) and any(r["revenue_retention"] > 1 for r in rows)
    # Money with the currency's own decimals.
    assert all(-row["mrr"].as_tuple().exponent == EXPONENT[projected.currency] for row in rows)


async def test_cohort_panels_pivot_the_view(projected: Projected) -> None:
    """The overview's two cohort tables: one row per cohort and month since, ordered so that
    Grafana's groupingToMatrix gives cohorts as rows and months since start 0, 1, … as columns."""
    view = await projected.query("SELECT * FROM grafana_cohort_retention")
    for title, field, label in (("Logo retention by signup cohort", "logo_retention",
                                 lambda r: f"{r['cohort']} ({r['cohort_customers']})"),
                                ("Net revenue retention by signup cohort", "revenue_retention",
                                 lambda r: f"{r['cohort']} ({r['starting_mrr']} {r['currency']})")):
        rows = await projected.panel("mrr-overview.json", title)
        assert [(r["cohort"], r["months since start"], r[field]) for r in rows] == \
            [(label(v), v["periods_since_start"], v[field]) for v in view]
        columns = list(dict.fromkeys(r["months since start"] for r in rows))
        assert columns == list(range(MONTHS + 1))


# ---------------------------------------------------------------- the monthly bridge

async def test_bridge_view_equals_mrr_report_bridge(projected: Projected) -> None:
    payload = await asyncio.to_thread(projected.report, "bridge", "--period", "month")
    rows = await projected.query("SELECT * FROM grafana_monthly_bridge")
    assert payload["currency"] == projected.currency and len(payload["rows"]) == MONTHS + 1
    assert [r["period"] for r in rows] == [r["period"] for r in payload["rows"]]
    for row, expected in zip(rows, payload["rows"]):
        assert {k: str(row[k]) if k in MONEY else row[k] for k in expected} == expected, expected["period"]
        assert row["currency"] == projected.currency
        assert row["month_start"] == dt.datetime.strptime(expected["period"], "%Y-%m").replace(tzinfo=UTC)
        # Money with the currency's own decimals, as numbers the charts can use.
        assert all(-row[k].as_tuple().exponent == EXPONENT[projected.currency] for k in MONEY)
    assert set(rows[0]) == {"period", "month_start", *MONEY, *COUNTS, "customers_opening",
                            "unconverted_subscriptions", "currency"}
    # The demo exercises every column and count.
    assert all(any(r[k] != 0 for r in rows) for k in (*MONEY, *COUNTS))


# ---------------------------------------------------------------- money in history panels

async def test_bridge_panels_equal_mrr_report_bridge(projected: Projected) -> None:
    payload = await asyncio.to_thread(projected.report, "bridge", "--period", "month")
    assert payload["currency"] == projected.currency
    report = {r["period"]: r for r in payload["rows"]}
    assert len(report) == MONTHS + 1
    table = await projected.panel("mrr-overview.json", "Monthly bridge")
    assert {r["month"] for r in table} == set(report)
    for row in table:
        expected = report[row["month"]]
        assert {k: row[k] for k in MONEY} == {k: expected[k] for k in MONEY}, row["month"]
        assert {k: row[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}, row["month"]
    bars = await projected.panel("mrr-overview.json", "Monthly MRR bridge")
    closing = await projected.panel("mrr-overview.json", "Closing MRR by month")
    assert len(bars) == len(closing) == len(report)
    for bar, close in zip(bars, closing):
        expected = report[f"{bar['time']:%Y-%m}"]
        for k in MONEY[1:-1]:
            assert bar[k] == Decimal(expected[k]) and str(bar[k]) == expected[k], k
        assert str(close["closing_mrr"]) == expected["closing_mrr"]
    # The business is worth checking: something in every column, all decimals used.
    assert all(any(Decimal(r[k]) != 0 for r in report.values()) for k in MONEY)
    if EXPONENT[projected.currency]:
        assert any(not Decimal(r["closing_mrr"]) % 1 == 0 for r in report.values())


@pytest.mark.parametrize("title,by", [("MRR by billing interval at month end", "interval"),
                                      ("MRR by billing currency at month end", "currency")])
async def test_segment_panels_equal_mrr_report_segments(projected: Projected, title: str, by: str) -> None:
    report = await asyncio.to_thread(projected.report, "segments", "--by", by, "--top", "100")
    expected = {(r["period"], r["segment"]): r["closing_mrr"] for r in report["rows"]
                if Decimal(r["closing_mrr"]) != 0}
    rows = await projected.panel("mrr-movements-segments.json", title)
    assert {(f"{r['time']:%Y-%m}", r["metric"]): str(r["mrr"]) for r in rows} == expected
    assert len({segment for _, segment in expected}) >= 2


def test_no_money_panel_assumes_two_decimals() -> None:
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                sql = target.get("rawSql", "")
                assert "/ 100" not in sql and "* 0.01" not in sql, panel["title"]
                if "sum(" in sql and "mrr" in sql and "customers moved" not in panel["title"].lower():
                    assert "grafana_reporting_currency" in sql, panel["title"]
            assert "minor-unit decimals" not in panel.get("description", ""), panel["title"]


# ---------------------------------------------------------------- replay

async def test_views_survive_a_replay_swap(postgres_url: str, tmp_path: Path) -> None:
    """`mrr replay` moves the live tables out to a schema it drops with CASCADE and the rebuilt
    ones in: views bound to the tables would be dropped with them. Here the rebuilt schema is a
    copy of the live tables, swapped in by the replay's own `swap_in`."""
    from sqlalchemy.schema import CreateTable

    from projections.side_schema import swap_in, tables_in
    from tests.metrics.business import business, jsonl

    database, role, url, reader = await prepared_database(postgres_url)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
        env |= {"MRR_DATA_DIR": str(tmp_path / "data"), "MRR_DATABASE_URL": url}
        await asyncio.to_thread(ingest_events, env, tmp_path, jsonl(business()))
        views = ("grafana_cohort_retention", "grafana_monthly_bridge", "grafana_reporting_currency")
        before = await _read(url, views)
        assert all(before[v] for v in views)
        # This business also has a subscription without an FX rate (unconverted) this month.
        report = (await asyncio.to_thread(mrr_json, env, tmp_path, "bridge", "--period", "month"))["rows"]
        assert [{k: str(r[k]) if k in MONEY else r[k] for k in e}
                for r, e in zip(before["grafana_monthly_bridge"], report)] == report
        assert len(before["grafana_monthly_bridge"]) == len(report) and report[-1]["unconverted_subscriptions"] == 1

        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:  # the control: a view bound to a table
                await conn.execute(text("CREATE VIEW bound_to_movements AS SELECT * FROM movements"))
            async with engine.begin() as conn:
                await conn.execute(text("CREATE SCHEMA rebuilt"))
                for table in tables_in("rebuilt"):
                    await conn.execute(CreateTable(table))
                    await conn.execute(text(f'INSERT INTO rebuilt."{table.name}" SELECT * FROM public."{table.name}"'))
                assert await swap_in(conn, "rebuilt") == "public"
            async with engine.connect() as conn:
                schemas = (await conn.execute(text(
                    "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mrr_retired%' OR nspname = 'rebuilt'"))).scalar()
                assert schemas == 0  # the old tables are gone: the views read the swapped-in ones
                bound = (await conn.execute(text("SELECT count(*) FROM pg_views WHERE viewname = 'bound_to_movements'"))).scalar()
                assert bound == 0  # dropped with the old tables, as any view over them would be
        finally:
            await engine.dispose()
        assert await _read(url, views) == before
    finally:
        await drop_database(postgres_url, database, role)


async def _read(url: str, views: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {v: [dict(r._mapping) for r in await conn.execute(text(f"SELECT * FROM {v}"))] for v in views}
    finally:
        await engine.dispose()


async def test_the_bridge_view_counts_today_up_to_now(postgres_url: str, tmp_path: Path) -> None:
    """Revision 0005 reads the days before today from `bridge_totals` and today's part from the
    rows: intervals that start and end today, an unconverted subscription, movements of each
    kind and the balance all come out as `mrr report bridge` gives them."""
    from tests.engine.builders import item, terms
    from tests.metrics.business import _iso, business, jsonl

    now = dt.datetime.now(UTC)
    today = dt.datetime.combine(now.date(), dt.time(), UTC)

    def at(k: int) -> str:  # k/10 of today so far
        return _iso(today + max((now - today) * k / 10, dt.timedelta(milliseconds=k)))

    def sub(type_: str, k: int, customer: str, sid: str, *items: dict, **kw: Any) -> dict[str, Any]:
        return {"type": type_, "event_id": f"today-{k}", "occurred_at": at(k), "customer_id": customer,
                "subscription_id": sid, "terms": terms(*items, **kw)}

    today_events = [msgspec.convert(e, Event) for e in (
        sub("subscription.started", 1, "t1", "ts1", item(8000, price="basic")),           # new business
        sub("subscription.updated", 2, "t1", "ts1", item(9000, price="basic")),           # expansion
        {"type": "subscription.canceled", "event_id": "today-3", "occurred_at": at(3),     # churn
         "customer_id": "t1", "subscription_id": "ts1"},
        sub("subscription.started", 4, "t2", "ts2", item(1200, price="basic"), currency="CHF"),  # unconverted
        sub("subscription.started", 5, "t3", "ts3", item(1500, price="team")),            # new, open
    )]
    database, role, url, reader = await prepared_database(postgres_url)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
        env |= {"MRR_DATA_DIR": str(tmp_path / "data"), "MRR_DATABASE_URL": url}
        await asyncio.to_thread(ingest_events, env, tmp_path, jsonl(business() + today_events))
        report = (await asyncio.to_thread(mrr_json, env, tmp_path, "bridge", "--period", "month"))["rows"]
        rows = (await _read(url, ("grafana_monthly_bridge",)))["grafana_monthly_bridge"]
        assert [{k: str(r[k]) if k in MONEY else r[k] for k in e} for r, e in zip(rows, report)] == report
        assert len(rows) == len(report)
        assert report[-1]["unconverted_subscriptions"] == 2  # the business's GBP one and today's CHF one
    finally:
        await drop_database(postgres_url, database, role)
