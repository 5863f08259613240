"""`mrr demo` and `mrr import-periods` end to end on the embedded ledger (small sizes)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli.main import cli

PLAYBOOK = Path("/work/shared/data/mrr_playbook/subscription_periods.csv")


@pytest.fixture
def env(tmp_path):
    return {"MRR_DATA_DIR": str(tmp_path / "data"), "MRR_CONFIG": str(tmp_path / "none.toml")}


def test_import_periods_counts_and_is_idempotent(env):
    runner = CliRunner()
    first = runner.invoke(cli, ["import-periods", "--no-project", str(PLAYBOOK)], env=env)
    assert first.exit_code == 0, first.output
    assert "periods: 121  events accepted: 242  duplicate: 0  rejected: 0" in first.stdout
    again = runner.invoke(cli, ["import-periods", "--json", "--no-project", str(PLAYBOOK)], env=env)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert (summary["accepted"], summary["duplicate"], summary["rejected"]) == (0, 242, 0)


def test_import_periods_bad_rows_exit_1_and_write_nothing(env, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("subscription_id,customer_id,start_date,end_date,monthly_amount\n"
                   "1,a,2020-01-01,,10\n2,b,2020-02-30,,10\n3,c,2020-01-01,,1.5.1\n")
    result = CliRunner().invoke(cli, ["import-periods", str(bad)], env=env)
    assert result.exit_code == 1
    assert "line 3: start_date" in result.stderr and "line 4: monthly_amount" in result.stderr
    assert not (Path(env["MRR_DATA_DIR"]) / "ledger.sqlite").exists()


def test_demo_end_to_end(tmp_path, env):
    if "report" not in cli.commands:
        pytest.skip("`mrr report` is not available yet")
    out = tmp_path / "demo-out"
    args = ["demo", "--customers", "80", "--months", "6", "--seed", "5", "--out", str(out)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    for name in ("events.jsonl", "bridge.json", "kpis.json", "mrr_bridge.png", "mrr_over_time.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "data" / "ledger.sqlite").exists()
    assert "Monthly MRR bridge" in result.stdout and "MRR_DATA_DIR=" in result.stdout
    bridge = json.loads((out / "bridge.json").read_text())
    assert [r["period"] for r in bridge["rows"]] == [f"2023-{m:02d}" for m in range(1, 7)]
    for row in bridge["rows"]:
        moves = ("new_business", "expansion", "contraction", "churn", "reactivation", "fx_impact")
        assert Decimal(row["opening_mrr"]) + sum(Decimal(row[k]) for k in moves) == Decimal(row["closing_mrr"])
    assert Decimal(bridge["rows"][-1]["closing_mrr"]) > 0
    # A second run into the same directory starts afresh instead of duplicating.
    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "bridge.json").read_text()) == bridge


def test_demo_refuses_to_wipe_foreign_data(tmp_path, env):
    (tmp_path / "o" / "data").mkdir(parents=True)
    (tmp_path / "o" / "data" / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["demo", "--customers", "5", "--out", str(tmp_path / "o")], env=env)
    assert result.exit_code == 2 and "precious.txt" in result.output
    assert (tmp_path / "o" / "data" / "precious.txt").exists()
