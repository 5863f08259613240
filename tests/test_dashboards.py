"""The Grafana dashboards in deploy/grafana/dashboards, checked without Grafana or Docker.

grafana/dashboard-linter could not be installed here: `go install
github.com/grafana/dashboard-linter@latest` is refused by the Go module proxy (403, "This module
version is not available") and there is no Docker engine for its image. So this file checks what
the linter would and more, against real things:

- every dashboard is valid JSON with a uid, a title, unique panel ids, a title and a unit on every
  panel, and datasource uids/types that the provisioning files (deploy/grafana/provisioning)
  declare;
- every PromQL expression refers only to metric names that this project really exports: the set is
  collected in-process from the real collectors (`BusinessCollector` refreshed from projections of
  an ingested business, and a worker's `WorkerMetrics` registry after a batch), never from the docs;
- every PromQL expression, of the dashboards and of the alert rules in deploy/prometheus/rules,
  runs without error on a real Prometheus that scrapes those two registries (syntax, types,
  vector matching), and the overview's live panels return data;
- every SQL query of the PostgreSQL panels runs on a migrated PostgreSQL, and the monthly bridge
  table equals `mrr report bridge --period month` for the current month to the cent;
- the overview has the signup cohort heat maps (tables pivoted by Grafana's groupingToMatrix);
- the monthly history panels (bridge table and bars, closing MRR, customers moved) read the view
  `grafana_monthly_bridge` rather than repeating the bridge over the tables.

The views the PostgreSQL panels read (monthly bridge, cohorts, the reporting currency's exponent)
are checked against `mrr report cohorts|bridge|segments` in JPY, USD and KWD in
tests/metrics/test_grafana_views.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import pytest
import yaml

from tests.stack.prometheus import api_query

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
PROVISIONING = REPO / "deploy/grafana/provisioning"
DATASOURCES = {d["uid"]: d for f in sorted((PROVISIONING / "datasources").glob("*.yml"))
               for d in yaml.safe_load(f.read_text())["datasources"]}
EXPECTED = {"mrr-overview": "MRR overview", "mrr-movements-segments": "Movements & segments",
            "mrr-pipeline-health": "Pipeline health"}
PROMETHEUS_JOBS = ("mrr-worker", "mrr-exporter")  # as in deploy/prometheus/prometheus.yml

# Grafana's variables, as a test value each (the business of tests/metrics/business.py is in USD).
VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$currency": "USD"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
                "and", "or", "unless", "inf", "nan"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def targets(datasource_type: str) -> Iterator[tuple[str, str, dict]]:
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                if (target.get("datasource") or panel["datasource"])["type"] == datasource_type:
                    yield path.name, panel["title"], target


def substitute(text: str) -> str:
    for name, value in VARIABLES.items():
        text = text.replace(name, value)
    assert "$" not in text, f"unknown Grafana variable in {text!r}"
    return text


PROMQL = [(f"{d}: {title} [{t['refId']}]", substitute(t["expr"])) for d, title, t in targets("prometheus")]
RULE_PROMQL = [(f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"])
               for path in sorted((REPO / "deploy/prometheus/rules").glob("*.yml"))
               for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]
"""Every alert (and recording) rule's expression, also run against the real Prometheus."""
SQL = [(f"{d}: {title} [{t['refId']}]", t) for d, title, t in targets("grafana-postgresql-datasource")]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside {...} or after by/on/...), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)             # strings
    text = re.sub(r"\{[^}]*\}", "", text)                       # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                      # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word, rest = match.group(), text[match.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if match.start() and re.match(r"[\d.]", text[match.start() - 1]):
            continue  # 1e3, 5m
        names.add(word)
    return names


def test_metric_name_extraction() -> None:
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y"}[5m])))') == {"a_bucket"}
    assert metric_names('b{plan="x"} / ignoring(plan) group_left() c{currency="USD"}') == {"b", "c"}
    assert metric_names("time() - (max by (instance) (d) > 0)") == {"d"}


# ---------------------------------------------------------------- the dashboards themselves

def test_the_three_dashboards_are_provisioned() -> None:
    found = {load(p)["uid"]: load(p)["title"] for p in DASHBOARDS}
    assert found == EXPECTED
    provider = yaml.safe_load((PROVISIONING / "dashboards/mrr.yml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["title"] and dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["schemaVersion"] >= 36 and dashboard["timezone"] == "utc"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    kinds = {d["uid"]: d["type"] for d in DATASOURCES.values()}
    for variable in dashboard["templating"]["list"]:
        if "datasource" in variable:
            assert kinds.get(variable["datasource"]["uid"]) == variable["datasource"]["type"], variable["name"]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["title"].strip(), f"panel {panel['id']} has no title"
    for panel in panels(dashboard):
        where = f"{path.name}: {panel['title']}"
        ds = panel["datasource"]
        assert kinds.get(ds["uid"]) == ds["type"], f"{where}: datasource {ds} is not provisioned"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel["targets"], f"{where}: no query"
        for target in panel["targets"]:
            assert target["datasource"] == ds, f"{where}: target datasource differs from the panel's"
            assert target.get("expr" if ds["type"] == "prometheus" else "rawSql", "").strip(), where
    exprs = " ".join(t["expr"] for p in panels(dashboard) for t in p["targets"] if "expr" in t)
    if "$currency" in exprs:
        assert any(v["name"] == "currency" for v in dashboard["templating"]["list"]), path.name


def test_datasource_uids_are_fixed() -> None:
    assert DATASOURCES["prometheus"]["type"] == "prometheus"
    assert DATASOURCES["mrr-postgres"]["type"] == "grafana-postgresql-datasource"
    used = {p["datasource"]["uid"] for path in DASHBOARDS for p in panels(load(path))}
    assert used == {"prometheus", "mrr-postgres"}


COHORT_PANELS = {"Logo retention by signup cohort": "logo_retention",
                 "Net revenue retention by signup cohort": "revenue_retention"}


def test_overview_has_the_cohort_heat_maps() -> None:
    """One table per retention: a row per cohort, a column per month since start, from the view
    made for it, coloured as a heat map of fractions (0 red .. 1 green)."""
    overview = load(REPO / "deploy/grafana/dashboards/mrr-overview.json")
    found = {p["title"]: p for p in panels(overview) if p["title"] in COHORT_PANELS}
    assert found.keys() == COHORT_PANELS.keys()
    for title, field in COHORT_PANELS.items():
        panel = found[title]
        assert panel["type"] == "table"
        assert panel["datasource"] == {"type": "grafana-postgresql-datasource", "uid": "mrr-postgres"}
        (target,) = panel["targets"]
        assert target["format"] == "table" and "FROM grafana_cohort_retention" in target["rawSql"]
        assert "ORDER BY cohort_start, periods_since_start" in target["rawSql"]
        (pivot,) = panel["transformations"]
        assert pivot == {"id": "groupingToMatrix", "options": {
            "rowField": "cohort", "columnField": "months since start", "valueField": field, "emptyValue": "null"}}
        selected = target["rawSql"].split("FROM")[0]  # the pivot's three fields are the query's columns
        assert "AS cohort," in selected and 'AS "months since start"' in selected
        assert re.search(rf"\b{field}\s*$", selected), selected
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "percentunit" and (defaults["min"], defaults["max"]) == (0, 1)
        assert defaults["custom"]["cellOptions"]["type"] == "color-background"


BRIDGE_PANELS = {"mrr-overview.json": {"Monthly MRR bridge", "Closing MRR by month", "Monthly bridge"},
                 "mrr-movements-segments.json": {"Customers moved per month"}}


def test_monthly_history_panels_read_the_bridge_view() -> None:
    """One definition of the monthly bridge (revision 0003's `grafana_monthly_bridge`, equal to
    `mrr report bridge --period month`): the panels select from it, not from the tables."""
    for name, titles in BRIDGE_PANELS.items():
        found = {p["title"]: p for p in panels(load(REPO / "deploy/grafana/dashboards" / name)) if p["title"] in titles}
        assert found.keys() == titles, name
        for title, panel in found.items():
            (target,) = panel["targets"]
            sql = target["rawSql"]
            assert "FROM grafana_monthly_bridge" in sql, title
            assert not re.search(r"\b(movements|fx_impacts|customer_mrr|subscription_mrr)\b", sql), title
            assert "month_start <= $__timeTo()" in sql, title  # months in the panel's range


def test_postgres_panel_titles_are_unique() -> None:
    titles = [p["title"] for path in DASHBOARDS for p in panels(load(path))
              if p["datasource"]["uid"] == "mrr-postgres"]
    assert len(titles) == len(set(titles))


# ---------------------------------------------------------------- real metric names

def business_registry(tmp_path: Path):
    """A registry with a BusinessCollector refreshed from SQLite projections of
    tests/metrics/business.py."""
    import os

    from tests.metrics.business import business, ingest_events, jsonl, scrape

    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env["MRR_DATA_DIR"] = str(tmp_path / "data")
    ingest_events(env, tmp_path, jsonl(business()))
    return asyncio.run(scrape(env))


def worker_registry():
    """A worker's registry after one committed batch and one consumer-lag refresh."""
    from ledger.ports import LedgerRecord
    from projections.projector import BatchResult
    from streams.worker.metrics import WorkerMetrics
    from streams.worker.pipeline import PipelineStats

    metrics, stats = WorkerMetrics(), PipelineStats()

    async def end_offsets() -> dict[int, int]:
        return {0: 10}

    pipeline = SimpleNamespace(stats=stats, reader=SimpleNamespace(end_offsets=end_offsets),
                               projector=SimpleNamespace(positions={0: 4}))

    async def run() -> None:
        metrics.attach(pipeline)  # type: ignore[arg-type]
        await metrics.refresh_lag(pipeline)  # type: ignore[arg-type]
        metrics.detach()

    asyncio.run(run())
    event = SimpleNamespace(recorded_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    stats.consumed += 1
    stats.add(BatchResult(applied=1), [LedgerRecord(0, 4, event)], 0.1, {0: 4})  # type: ignore[arg-type]
    return metrics.registry


@pytest.fixture(scope="module")
def registries(tmp_path_factory) -> dict[str, object]:
    return {"mrr-exporter": business_registry(tmp_path_factory.mktemp("business")),
            "mrr-worker": worker_registry()}


@pytest.fixture(scope="module")
def known_names(registries) -> set[str]:
    names = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}  # Prometheus's own per target
    for registry in registries.values():
        for family in registry.collect():
            names |= {sample.name for sample in family.samples}
    return names


def test_the_known_names_come_from_the_code(known_names: set[str]) -> None:
    # Sanity of the collection itself: a business gauge, a worker counter, a histogram, a gauge
    # with a partition label only present after a lag refresh.
    assert {"mrr_mrr", "mrr_worker_events_applied_total", "mrr_worker_batch_duration_seconds_bucket",
            "mrr_worker_consumer_lag_records", "mrr_mrr_by_plan"} <= known_names


@pytest.mark.parametrize("where,expr", PROMQL, ids=[w for w, _ in PROMQL])
def test_promql_uses_only_exported_metrics(where: str, expr: str, known_names: set[str]) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    assert names <= known_names, f"{where}: {sorted(names - known_names)} are not exported"


# ---------------------------------------------------------------- a real Prometheus

@pytest.fixture(scope="module")
def prometheus_url(registries, prometheus_server: Callable[[str], str]) -> Iterator[str]:
    from prometheus_client import start_http_server

    from tests.stack.base import free_port

    servers, jobs = [], []
    for job in PROMETHEUS_JOBS:
        port = free_port()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registries[job])
        servers.append(server)
        jobs.append(f"  - job_name: {job}\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n")
    config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n" + "".join(jobs)
    base = prometheus_server(config)
    deadline = time.monotonic() + 60
    while True:  # two scrapes of each target, so that rate() has something to work with
        result = api_query(base, 'count_over_time(up{job=~"mrr-.*"}[1m]) >= 2')["data"]["result"]
        if len(result) == len(PROMETHEUS_JOBS):
            break
        assert time.monotonic() < deadline, f"Prometheus did not scrape both registries: {result}"
        time.sleep(0.5)
    yield base
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize("where,expr", PROMQL + RULE_PROMQL, ids=[w for w, _ in PROMQL + RULE_PROMQL])
def test_promql_runs_on_a_real_prometheus(where: str, expr: str, prometheus_url: str) -> None:
    body = api_query(prometheus_url, expr)
    assert body["status"] == "success", f"{where}: {expr}\n{body.get('error')}"


def test_overview_live_panels_return_data(prometheus_url: str) -> None:
    """The overview's instant (stat) panels over gauges have data once the exporter is scraped."""
    overview = load(REPO / "deploy/grafana/dashboards/mrr-overview.json")
    checked = 0
    for panel in panels(overview):
        if panel["type"] != "stat" or panel["datasource"]["uid"] != "prometheus":
            continue
        for target in panel["targets"]:
            result = api_query(prometheus_url, substitute(target["expr"]))["data"]["result"]
            assert result, f"{panel['title']}: {target['expr']} returned nothing"
            checked += 1
    assert checked >= 6
    mrr = api_query(prometheus_url, substitute('mrr_mrr{currency="$currency"}'))["data"]["result"]
    assert float(mrr[0]["value"][1]) == 459.0  # tests/metrics/business.py


# ---------------------------------------------------------------- the PostgreSQL panels

def grafana_sql(sql: str, start: dt.datetime, end: dt.datetime) -> str:
    """Expand the Grafana PostgreSQL macros the dashboards use."""
    frm, to = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    sql = sql.replace("$__timeFrom()", frm).replace("$__timeTo()", to)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {frm} AND {to}", sql)
    assert "$" not in sql, sql
    return sql


async def test_sql_panels_run_and_the_bridge_equals_the_report(tmp_path: Path, postgres_url: str) -> None:
    import os

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.metrics.business import business, current_row, ingest_events, jsonl, mrr_json
    from tests.metrics.conftest import new_database

    assert SQL, "no PostgreSQL panel"
    url = await new_database(postgres_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env |= {"MRR_DATA_DIR": str(tmp_path / "data"), "MRR_DATABASE_URL": url}
    await asyncio.to_thread(ingest_events, env, tmp_path, jsonl(business()))
    report = current_row(await asyncio.to_thread(mrr_json, env, tmp_path, "bridge", "--period", "month"))

    now = dt.datetime.now(dt.timezone.utc)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET TRANSACTION READ ONLY"))  # as Grafana's role
            results = {}
            for where, target in SQL:
                rows = (await conn.execute(text(grafana_sql(target["rawSql"], now - dt.timedelta(days=90), now))))
                results[where] = [dict(r._mapping) for r in rows]
                if "event_conflicts" not in target["rawSql"]:  # the business has no conflict
                    assert results[where], f"{where}: no rows"
    finally:
        await engine.dispose()
    table = next(rows for where, rows in results.items() if "Monthly bridge [" in where)
    row = next(r for r in table if r["month"] == report["period"])
    for field in ("opening_mrr", "new_business", "expansion", "contraction", "churn", "reactivation",
                  "fx_impact", "closing_mrr"):
        assert row[field] == report[field], (field, row[field], report[field])  # the same decimal strings
    for field in ("customers_closing", "new_customers", "churned_customers", "reactivated_customers"):
        assert row[field] == report[field], field
