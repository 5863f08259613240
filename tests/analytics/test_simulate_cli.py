"""`mrr simulate price` end to end on the demo business (trials, coupons, FX, past due, pauses,
late events): +0 % is the stored projection exactly, also as known at a past instant; a real change
moves only the segments of the repriced plan; the chart is a valid PNG."""

from __future__ import annotations

import csv
import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli.main import cli
from tests.analytics.test_forecast_backtest import _assert_png

PLAN = "team-monthly-eur"
AS_OF = "2023-12-31T23:59:59.999999Z"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(cli, ["demo", "--customers", "150", "--months", "12", "--out", str(out)],
                                env=_no_env())
    assert result.exit_code == 0, result.output
    return out / "data"


def _no_env() -> dict:
    return {name: None for name in os.environ if name.startswith("MRR_")}


def mrr(data: Path, *args: str):
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data)], env=_no_env())
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.output  # stdout: no "chart written"


@pytest.mark.parametrize("known_at", [None, "2023-07-03T00:00:00Z"], ids=["now", "as-known-in-july"])
def test_zero_change_equals_the_stored_bridge(demo, known_at):
    when = ["--known-at", known_at] if known_at else []
    bridge = mrr(demo, "report", "bridge", "--from", "2023-01", "--to", "2023-12", "--as-of", AS_OF, *when, "--json")
    sim = mrr(demo, "simulate", "price", "--plan", PLAN, "--change", "+0%", "--from", "2023-01-01",
              "--months", "12", *when, "--json")
    assert sim["customers_recomputed"] >= 5 and sim["recomputation_matches_projection"] is True
    assert [(r["period"], r["simulated_mrr"]) for r in sim["rows"]] == [
        (r["period"], r["closing_mrr"]) for r in bridge["rows"]]
    assert [r["baseline_mrr"] for r in sim["rows"]] == [r["closing_mrr"] for r in bridge["rows"]]
    assert {r["difference"] for r in sim["rows"]} == {"0.00"}
    assert all(r["difference"] == "0.00" for s in sim["segments"] for r in s["rows"])


def test_price_increase_moves_only_that_plan(demo, tmp_path):
    chart = tmp_path / "simulation.png"
    sim = mrr(demo, "simulate", "price", "--plan", PLAN, "--change", "+10%", "--churn-uplift", "10%",
              "--from", "2023-07", "--months", "6", "--as-of", AS_OF, "--json", "--chart", str(chart))
    assert [r["period"] for r in sim["rows"]] == ["2023-07", "2023-08", "2023-09", "2023-10", "2023-11", "2023-12"]
    july = sim["rows"][0]
    assert Decimal(july["difference"]) > 0 and Decimal(july["movements_difference"]["expansion"]) > 0
    # 10 % a month of the repriced subscriptions still paying (fractions carried) cancel
    assert sum(r["uplift_cancellations"] for r in sim["rows"]) >= sim["repriced_subscriptions"] * 4 // 10
    for r in sim["rows"]:
        assert Decimal(r["simulated_mrr"]) - Decimal(r["baseline_mrr"]) == Decimal(r["difference"])
    changed = {(s["dimension"], s["segment"]) for s in sim["segments"]
               if any(r["difference"] != "0.00" for r in s["rows"])}
    assert ("plan", PLAN) in changed and ("currency", "EUR") in changed
    assert not any(d == "plan" and seg != PLAN for d, seg in changed)
    assert ("currency", "USD") not in changed and ("billing_interval", "year") not in changed
    for dimension in ("plan", "currency", "billing_interval"):  # segments add up to the total
        total = sum(Decimal(s["rows"][-1]["difference"]) for s in sim["segments"] if s["dimension"] == dimension)
        assert total == Decimal(sim["rows"][-1]["difference"])
    _assert_png(chart)
    # --csv: the monthly totals, then every segment's months; nested movements flattened
    lines = list(csv.DictReader(io.StringIO(mrr(demo, "simulate", "price", "--plan", PLAN, "--change", "+10%",
                                                "--churn-uplift", "10%", "--from", "2023-07", "--months", "6",
                                                "--as-of", AS_OF, "--csv"))))
    totals = [line for line in lines if line["dimension"] == "(total)"]
    assert [(t["period"], t["simulated_mrr"], t["difference"], t["movements_difference.expansion"],
             t["uplift_cancellations"]) for t in totals] == [
        (r["period"], r["simulated_mrr"], r["difference"], r["movements_difference"]["expansion"],
         str(r["uplift_cancellations"])) for r in sim["rows"]]
    plan = [line for line in lines if (line["dimension"], line["segment"]) == ("plan", PLAN)]
    [segment] = [s for s in sim["segments"] if (s["dimension"], s["segment"]) == ("plan", PLAN)]
    assert [(p["period"], p["difference"], p["difference_pct"]) for p in plan] == [
        (r["period"], r["difference"], r["difference_pct"]) for r in segment["rows"]]
    assert len(lines) == len(sim["rows"]) * (1 + len(sim["segments"]))


def test_human_output_and_help(demo):
    out = mrr(demo, "simulate", "price", "--plan", PLAN, "--change", "+10%", "--from", "2023-10-01", "--months", "2")
    assert "Assumptions" in out and "half-even" in out and "MRR impact by month" in out and PLAN in out
    help_text = CliRunner().invoke(cli, ["simulate", "price", "--help"]).output
    for words in ("--plan", "--change", "--churn-uplift", "--from", "half-even", "SHA-256", "+0% reproduces"):
        assert words in help_text
    assert "--period" not in help_text and "--to " not in help_text
    bad = CliRunner().invoke(cli, ["simulate", "price", "--plan", "x", "--change", "10"], env=_no_env())
    assert bad.exit_code == 2 and "percentage" in bad.output
