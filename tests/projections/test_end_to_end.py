"""Events → EmbeddedLedger → project_pending → reports (queries and the `mrr report` CLI)."""

from __future__ import annotations

import asyncio
import json
import os

import msgspec
import pytest
from click.testing import CliRunner

from ledger.embedded import EmbeddedLedger
from streams.bootstrap import open_store, project_pending
from streams.cli.main import cli
from streams.config import load_config
from tests.engine.builders import event, item, started, updated
from tests.projections.conftest import at



def named(event_id: str, ev):
    return msgspec.structs.replace(ev, event_id=event_id)


FIRST = [named("c1-start", started("2024-01-01", items=[item(10000)])),
         named("c2-start", started("2024-01-15", customer="c2", sub="s2", items=[item(5000)]))]
# Recorded Feb 10, effective Jan 20: c1 downgrades; January was already reported on Feb 3.
LATE = [named("c1-downgrade", updated("2024-01-20", items=[item(8000)]))]
DATABASE_URL: dict = {}
"""data dir -> projection database URL of a test that uses one (none: SQLite in the data dir)."""


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("MRR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no mrr.toml


def config_for(path, **flags):
    return load_config({"data_dir": str(path), **flags}, environ={})


async def ledger_with_history(path, *, project_between: bool, **flags: str) -> None:
    config = config_for(path, **flags)
    async with EmbeddedLedger(path / "ledger.sqlite") as ledger:
        await ledger.append_many(FIRST, now=at("2024-01-15T12:00"))
        if project_between:
            assert await project_pending(config) == 2
        await ledger.append_many(LATE, now=at("2024-02-10"))
    assert await project_pending(config) == (1 if project_between else 3)
    assert await project_pending(config) == 0  # nothing pending


def report(path, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["report", *args, "--data-dir", str(path), "--json"],
                                env={"MRR_DATABASE_URL": DATABASE_URL.get(path)})
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("project_between", [True, False], ids=["live", "one-batch"])
def test_a_late_event_restates_a_closed_month(tmp_path, project_between):
    asyncio.run(ledger_with_history(tmp_path, project_between=project_between))
    common = ["--from", "2024-01", "--to", "2024-02", "--as-of", "2024-03-01T00:00:00Z"]
    first = report(tmp_path, "bridge", *common, "--known-at", "2024-02-03T00:00:00Z")
    now = report(tmp_path, "bridge", *common)
    assert first["currency"] == "USD" and first["period"] == "month"
    jan_first, jan_now = first["rows"][0], now["rows"][0]
    assert (jan_first["period"], jan_first["new_business"], jan_first["contraction"],
            jan_first["closing_mrr"]) == ("2024-01", "150.00", "0.00", "150.00")
    assert (jan_now["new_business"], jan_now["contraction"], jan_now["closing_mrr"]) == ("150.00", "-20.00", "130.00")
    assert now["rows"][1]["opening_mrr"] == "130.00" and now["rows"][1]["closing_mrr"] == "130.00"
    moves = report(tmp_path, "movements", "--customer", "c1")["rows"]
    assert [(m["type"], m["amount"], m["event_ids"], m["recorded_at"][:10]) for m in moves] == [
        ("new_business", "100.00", ["c1-start"], "2024-01-15"),
        ("contraction", "-20.00", ["c1-downgrade"], "2024-02-10"),
    ]


def test_cli_reports_after_ingest(tmp_path):
    asyncio.run(ledger_with_history(tmp_path, project_between=True))
    as_of = ["--as-of", "2024-02-15T00:00:00Z"]
    snap = report(tmp_path, "snapshot", *as_of)
    assert [(r["period"], r["customer_id"], r["mrr"], r["category"]) for r in snap["rows"]] == [
        ("2024-01", "c1", "80.00", "new_business"), ("2024-01", "c2", "50.00", "new_business"),
        ("2024-02", "c1", "80.00", None), ("2024-02", "c2", "50.00", None)]
    kpis = report(tmp_path, "kpis", *as_of, "--period", "quarter")
    [q1] = kpis["rows"]
    assert (q1["period"], q1["mrr"], q1["arr"], q1["customers"], q1["nrr"]) == ("2024-Q1", "130.00", "1560.00", 2, None)
    customer = report(tmp_path, "customer", "--customer", "c1", *as_of)
    assert customer["mrr"] == "80.00"
    assert [(s["subscription_id"], s["mrr"], s["native_mrr"]) for s in customer["subscriptions"]] == [("s1", "80.00", "80.00")]
    weekly = report(tmp_path, "bridge", "--period", "week", "--from", "2024-01-15", "--to", "2024-01-21", *as_of)
    assert [(r["period"], r["new_business"], r["contraction"]) for r in weekly["rows"]] == [("2024-W03", "50.00", "-20.00")]
    human = CliRunner().invoke(cli, ["report", "bridge", "--data-dir", str(tmp_path), *as_of])
    assert human.exit_code == 0 and "closing MRR" in human.output


async def _eur_history(path) -> int:
    async with EmbeddedLedger(path / "ledger.sqlite") as ledger:
        await ledger.append_many(
            [named("eur-start", started("2024-01-01", currency="EUR", items=[item(10000)])),
             event("fx.rate_published", "2024-01-01", event_id="fx", base="EUR", quote="USD", rate="1.25",
                   effective_date="2024-01-01")],
            now=at("2024-01-02"))
    return await project_pending(config_for(path))


async def _offsets(config) -> dict[int, int]:
    store = await open_store(config)
    try:
        return await store.offsets()
    finally:
        await store.close()


def test_changing_settings_rebuilds_embedded_projections(tmp_path):
    assert asyncio.run(_eur_history(tmp_path)) == 2
    as_of = ["--as-of", "2024-02-01T00:00:00Z"]
    assert report(tmp_path, "customer", "--customer", "c1", *as_of)["mrr"] == "125.00"
    eur = report(tmp_path, "customer", "--customer", "c1", "--reporting-currency", "EUR", *as_of)
    assert (eur["currency"], eur["mrr"]) == ("EUR", "100.00")
    assert asyncio.run(_offsets(config_for(tmp_path, reporting_currency="EUR"))) == {0: 2}


def test_report_usage_errors(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli, ["report", "bridge", "--data-dir", str(tmp_path), "--from", "2024-13"])
    assert bad.exit_code == 2 and "invalid period label" in bad.output
    naive = runner.invoke(cli, ["report", "bridge", "--data-dir", str(tmp_path), "--as-of", "2024-01-01T00:00"])
    assert naive.exit_code == 2 and "offset" in naive.output
    nobody = runner.invoke(cli, ["report", "customer", "--data-dir", str(tmp_path)])
    assert nobody.exit_code == 2 and "--customer" in nobody.output
    empty = runner.invoke(cli, ["report", "bridge", "--data-dir", str(tmp_path), "--json"])
    assert empty.exit_code == 0 and json.loads(empty.output)["rows"] == []
