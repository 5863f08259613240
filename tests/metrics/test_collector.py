"""The business gauges equal `mrr report kpis|bridge` for the current month (SQLite and Postgres),
and their cardinality stays bounded with 10,000 plans."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import insert

from projections import schema
from projections.metrics import BusinessCollector, SnapshotRefresher
from projections.store import ProjectionStore, sqlite_url
from tests.metrics.business import business, current_row, ingest_events, jsonl, mrr_json, scrape
from tests.metrics.conftest import new_database

RATIOS = ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "nrr")
COUNTED = {"new_business": "new_customers", "churn": "churned_customers",
           "reactivation": "reactivated_customers"}


def previous_row(report: dict) -> dict:
    rows = report["rows"]
    index = rows.index(current_row(report))
    return rows[index - 1]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_gauges_equal_the_reports(backend, request, tmp_path, clean_env) -> None:
    env = clean_env
    if backend == "postgres":
        env["MRR_DATABASE_URL"] = await new_database(request.getfixturevalue("postgres_url"))
    ingest_events(env, tmp_path, jsonl(business()))
    kpis_report = mrr_json(env, tmp_path, "kpis", "--period", "month")
    bridge_report = mrr_json(env, tmp_path, "bridge", "--period", "month")
    k, b = current_row(kpis_report), current_row(bridge_report)

    registry = await scrape(env)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    usd = {"currency": "USD"}
    assert value("mrr_mrr", **usd) == float(k["mrr"]) == float(b["closing_mrr"])
    assert value("mrr_arr", **usd) == float(k["arr"])
    assert value("mrr_arpa", **usd) == float(k["arpa"])
    assert value("mrr_active_customers") == k["customers"] == 5
    assert value("mrr_unconverted_subscriptions") == k["unconverted_subscriptions"] == 1
    for kind in ("new_business", "expansion", "contraction", "churn", "reactivation", "fx_impact"):
        assert value("mrr_movements_month_to_date", type=kind, **usd) == float(b[kind]), kind
    assert [float(b[t]) for t in ("new_business", "expansion", "contraction", "churn", "reactivation")] == \
        [70.0, 50.0, -100.0, -50.0, 40.0]
    for kind, key in COUNTED.items():
        assert value("mrr_movement_customers_month_to_date", type=kind) == b[key] == 1
    for month, row in (("current", k), ("previous", previous_row(kpis_report))):
        for name in RATIOS:
            got = value(f"mrr_{name}", month=month)
            if row[name] is None:
                assert got is None, (name, month)
            else:
                assert got is not None and abs(got - float(row[name])) < 0.00005, (name, month, got, row[name])
    by_plan = {p: value("mrr_mrr_by_plan", plan=p, **usd) for p in ("basic", "pro", "team")}
    assert by_plan == {"basic": 190.0, "pro": 100.0, "team": 169.0}  # team: 70 USD + 90 EUR x 1.1
    assert round(sum(by_plan.values()) * 100) == round(float(k["mrr"]) * 100)
    assert value("mrr_mrr_by_billing_currency", billing_currency="EUR", **usd) == 99.0
    assert value("mrr_mrr_by_billing_interval", billing_interval="year", **usd) == 100.0
    assert value("mrr_metrics_snapshot_age_seconds") < 60


async def test_cardinality_is_bounded_with_10000_plans(tmp_path) -> None:
    store = ProjectionStore.from_url(sqlite_url(tmp_path / "p.sqlite"))
    await store.create_all()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    recorded = {"recorded_at": start, "superseded_at": None, "valid_from": start, "valid_to": None}
    subs = [{"customer_id": f"c{i}", "subscription_id": f"s{i}", "status": "active", "currency": "USD",
             "native_mrr": 100 + i, "mrr": 100 + i, "plan": f"plan-{i:05d}", "billing_interval": "month",
             **recorded} for i in range(10_000)]
    customers = [{"customer_id": f"c{i}", "mrr": 100 + i, **recorded} for i in range(10_000)]

    def load(conn) -> None:
        conn.execute(insert(schema.subscription_mrr), subs)
        conn.execute(insert(schema.customer_mrr), customers)

    await store.transaction(load)
    collector = BusinessCollector()
    try:
        await SnapshotRefresher(store, collector, "USD", top=20).refresh()
    finally:
        await store.close()
    registry = CollectorRegistry()
    registry.register(collector)
    plans = [s for m in registry.collect() if m.name == "mrr_mrr_by_plan" for s in m.samples]
    assert len(plans) == 21
    assert {s.labels["plan"] for s in plans} == {f"plan-{i:05d}" for i in range(9980, 10_000)} | {"other"}
    total = sum(100 + i for i in range(10_000))
    assert round(sum(s.value for s in plans) * 100) == total
    assert registry.get_sample_value("mrr_mrr", {"currency": "USD"}) * 100 == total
    samples = [s for m in registry.collect() for s in m.samples]
    assert len(samples) < 100, len(samples)
    assert b"c9999" not in generate_latest(registry)  # no customer ids anywhere
