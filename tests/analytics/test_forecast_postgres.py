"""`mrr forecast` and `mrr simulate price` on PostgreSQL projections: the constant-rate business
projected into a fresh database at Alembic's head, read through the CLI with MRR_DATABASE_URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from decimal import Decimal

from click.testing import CliRunner

from ledger.embedded import EmbeddedLedger
from streams.bootstrap import project_pending
from streams.cli.main import cli
from streams.config import load_config
from tests.analytics.test_forecast_backtest import TRUE_RATES, _close, _month_start, constant_rate_business


async def _record(data_dir, database_url: str) -> None:
    async with EmbeddedLedger(data_dir / "ledger.sqlite") as ledger:
        for k, events in enumerate(constant_rate_business(14)):
            await ledger.append_many(events, now=_month_start(k + 1) - dt.timedelta(hours=1))
    await project_pending(load_config({"data_dir": str(data_dir), "database_url": database_url}, environ={}))


def _mrr(data_dir, database_url: str, *args: str) -> dict:
    env = {name: None for name in os.environ if name.startswith("MRR_")}
    env["MRR_DATABASE_URL"] = database_url
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir), "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_forecast_backtest_and_simulation_on_postgres(tmp_path, fresh_database):
    from projections.migrate import upgrade

    asyncio.run(upgrade(fresh_database))
    asyncio.run(_record(tmp_path, fresh_database))
    as_of = ["--as-of", "2024-03-01T00:00:00Z"]  # 14 months: 2023-01 .. 2024-02
    backtest = _mrr(tmp_path, fresh_database, "forecast", "--backtest", "--window", "6", "--months", "2",
                    "--from", "2023-04", *as_of)
    assert [o["origin"] for o in backtest["origins"]] == ["2023-09", "2023-10", "2023-11", "2023-12", "2024-01"]
    for origin in backtest["origins"]:
        for name, truth in TRUE_RATES.items():
            assert _close(origin["rates"][name]["value"], truth, name in ("new_business", "reactivation"))
    forecast = _mrr(tmp_path, fresh_database, "forecast", "--months", "3", *as_of)
    assert forecast["jump_off"] == "2024-02" and len(forecast["rows"]) == 3
    bridge = _mrr(tmp_path, fresh_database, "report", "bridge", "--from", "2024-02", "--to", "2024-02", *as_of)
    assert forecast["rows"][0]["opening_mrr"] == bridge["rows"][0]["closing_mrr"]

    # Every customer has the one price "plan": +0 % is the stored bridge; +10 % adds 10 % of the
    # MRR in force at the change (seats × $10.00 -> $11.00 exactly), then new customers at $11.
    zero = _mrr(tmp_path, fresh_database, "simulate", "price", "--plan", "plan", "--change", "+0%",
                "--from", "2023-01", "--months", "14")
    full = _mrr(tmp_path, fresh_database, "report", "bridge", "--from", "2023-01", "--to", "2024-02", *as_of)
    assert [r["simulated_mrr"] for r in zero["rows"]] == [r["closing_mrr"] for r in full["rows"]]
    assert zero["recomputation_matches_projection"] is True
    ten = _mrr(tmp_path, fresh_database, "simulate", "price", "--plan", "plan", "--change", "+10%",
               "--from", "2024-03-01", "--months", "1")
    [march] = ten["rows"]  # no event after February: March is February's book, repriced at once
    assert Decimal(march["simulated_mrr"]) == Decimal(full["rows"][-1]["closing_mrr"]) * Decimal("1.1")
