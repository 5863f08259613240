"""The forecast on a synthetic business with known constant monthly rates, end to end.

`constant_rate_business` generates ledger events whose monthly bridge has, by construction, new
business and reactivation of fixed amounts and expansion, contraction and churn of fixed fractions
of opening MRR (up to one customer's worth, carried to the next month). The events go through the
embedded ledger and the projector into SQLite, then `mrr forecast` (the CLI) must recover those
rates within 5 % at every backtest origin, forecast one month ahead with a small error, and draw
a valid PNG.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.embedded import EmbeddedLedger
from ledger.events import EventBase
from streams.bootstrap import project_pending
from streams.cli.main import cli
from streams.config import load_config
from tests.engine.builders import canceled, item, started, updated

UTC = dt.timezone.utc
SEAT = 1000  # $10.00 per seat per month
TRUE_RATES = {"new_business": Decimal(120 * 10 * SEAT), "reactivation": Decimal(12 * 10 * SEAT),
              "expansion_rate": Decimal("0.04"), "contraction_rate": Decimal("0.015"),
              "churn_rate": Decimal("0.025")}
"""Per month: 120 new customers and 12 comebacks of 10 seats each; expansion +10 seats, contraction
-5 seats and churn of whole customers until 4 %, 1.5 % and 2.5 % of opening MRR."""
MONTHS = 24
START = dt.date(2023, 1, 1)


def _month_start(k: int) -> dt.datetime:
    year, month = divmod(START.month - 1 + k, 12)
    return dt.datetime(START.year + year, month + 1, 1, tzinfo=UTC)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M")


class _Business:
    def __init__(self) -> None:
        self.seats: dict[str, int] = {}  # active customers
        self.subs: dict[str, str] = {}
        self.churned: list[str] = []
        self.targets = {"expansion": Decimal(0), "contraction": Decimal(0), "churn": Decimal(0)}
        self.done = {"expansion": 0, "contraction": 0, "churn": 0}
        self.next_id = 0
        self.rotation = 0

    def mrr(self) -> int:
        return sum(self.seats.values()) * SEAT

    def _take(self, kind: str, step: int) -> bool:
        """Whether one more unit of `step` keeps the cumulative amount nearest to its target."""
        return self.done[kind] + Decimal(step) / 2 <= self.targets[kind]

    def month(self, k: int) -> list[EventBase]:
        t0, events = _month_start(k), []
        opening = self.mrr()
        for kind in self.targets:
            self.targets[kind] += TRUE_RATES[f"{kind}_rate"] * opening
        ids = sorted(self.seats)
        self.rotation = (self.rotation + 37) % max(len(ids), 1)
        queue = ids[self.rotation:] + ids[:self.rotation]
        when = t0 + dt.timedelta(days=3)
        while queue and self._take("churn", self.seats[queue[0]] * SEAT):  # whole customers
            cid = queue.pop(0)
            self.done["churn"] += self.seats.pop(cid) * SEAT
            self.churned.append(cid)
            events.append(canceled(_iso(when), sub=self.subs[cid], customer=cid))
            when += dt.timedelta(minutes=7)
        when = t0 + dt.timedelta(days=8)
        while queue and self._take("expansion", 10 * SEAT):
            cid = queue.pop(0)
            self.seats[cid] += 10
            self.done["expansion"] += 10 * SEAT
            events.append(updated(_iso(when), sub=self.subs[cid], customer=cid, items=[item(SEAT, self.seats[cid])]))
            when += dt.timedelta(minutes=7)
        when = t0 + dt.timedelta(days=14)
        for cid in list(queue):
            if not self._take("contraction", 5 * SEAT):
                break
            if self.seats[cid] > 5:
                self.seats[cid] -= 5
                self.done["contraction"] += 5 * SEAT
                events.append(updated(_iso(when), sub=self.subs[cid], customer=cid,
                                      items=[item(SEAT, self.seats[cid])]))
                when += dt.timedelta(minutes=7)
        when = t0 + dt.timedelta(days=20)
        for _ in range(120):
            self.next_id += 1
            events.append(self._start(f"cus{self.next_id:05d}", when))
            when += dt.timedelta(minutes=11)
        when = t0 + dt.timedelta(days=25)
        for cid in [self.churned.pop(0) for _ in range(min(12, len(self.churned)))]:
            events.append(self._start(cid, when))
            when += dt.timedelta(minutes=11)
        return events

    def _start(self, cid: str, when: dt.datetime) -> EventBase:
        self.seats[cid] = 10
        self.subs[cid] = f"{cid}-{len(self.subs) + 1}"
        return started(_iso(when), sub=self.subs[cid], customer=cid, items=[item(SEAT, 10)])


def constant_rate_business(months: int = MONTHS) -> list[list[EventBase]]:
    """The events of each month, in order."""
    business = _Business()
    return [business.month(k) for k in range(months)]


async def _record(data_dir: Path) -> None:
    async with EmbeddedLedger(data_dir / "ledger.sqlite") as ledger:
        for k, events in enumerate(constant_rate_business()):
            await ledger.append_many(events, now=_month_start(k + 1) - dt.timedelta(hours=1))
    await project_pending(load_config({"data_dir": str(data_dir)}, environ={}))


@pytest.fixture(scope="module")
def business_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("constant-rates")
    asyncio.run(_record(data_dir))
    return data_dir


def mrr(data_dir: Path, *args: str) -> dict:
    env = {name: None for name in os.environ if name.startswith("MRR_")}
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir)], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.output  # stdout: no "chart written"


AS_OF = ["--as-of", "2025-01-01T00:00:00Z"]


def _close(estimate: str, truth: Decimal, money: bool) -> bool:
    value = Decimal(estimate) * (100 if money else 1)  # money in major units -> minor units
    return abs(value - truth) <= Decimal("0.05") * truth


def test_backtest_recovers_the_constant_rates_within_5_percent(business_dir):
    # After three months of warm-up (too few churned customers to bring 12 back), every window
    # of six months must show the rates the business was generated with.
    payload = mrr(business_dir, "forecast", "--backtest", "--window", "6", "--months", "3",
                  "--from", "2023-04", *AS_OF, "--json")
    origins = payload["origins"]
    assert [o["origin"] for o in origins][0] == "2023-09" and origins[-1]["origin"] == "2024-11"
    for origin in origins:
        for name, truth in TRUE_RATES.items():
            estimate = origin["rates"][name]["value"]
            assert _close(estimate, truth, name in ("new_business", "reactivation")), (origin["origin"], name, estimate)
    summary = {s["horizon"]: s for s in payload["summary"]}
    assert sorted(summary) == [1, 2, 3] and summary[1]["forecasts"] == 15  # 2023-09 .. 2024-11
    assert Decimal(summary[1]["mape"]) < Decimal("0.01") and Decimal(summary[3]["mape"]) < Decimal("0.02")
    assert all(r["within_band"] is not None for r in payload["rows"])


def test_forecast_from_the_constant_business(business_dir, tmp_path):
    chart = tmp_path / "forecast.png"
    payload = mrr(business_dir, "forecast", "--months", "6", *AS_OF, "--json", "--chart", str(chart))
    assert payload["jump_off"] == "2024-12" and [r["period"] for r in payload["rows"]][0] == "2025-01"
    rows = payload["rows"]
    for r in rows:  # every forecast row balances to the cent
        moves = sum(Decimal(r[m]) for m in ("new_business", "expansion", "contraction", "churn", "reactivation"))
        assert Decimal(r["opening_mrr"]) + moves == Decimal(r["closing_mrr"])
        assert Decimal(r["low"]) <= Decimal(r["closing_mrr"]) <= Decimal(r["high"])
    # Net rate 4 % - 1.5 % - 2.5 % = 0: MRR grows by new + reactivation, $13,200 a month.
    growth = Decimal(rows[-1]["closing_mrr"]) - Decimal(rows[0]["opening_mrr"])
    assert abs(growth - 6 * Decimal(13200)) <= Decimal("0.05") * 6 * 13200
    assert rows[0]["opening_mrr"] == payload["history"][-1]["closing_mrr"]
    _assert_png(chart)
    human = mrr(business_dir, "forecast", "--months", "3", *AS_OF)
    assert "Trailing rates" in human and "MRR forecast from 2024-12" in human
    # --csv: the forecast months, in the JSON's units (the rates are in the human and JSON output)
    lines = list(csv.DictReader(io.StringIO(mrr(business_dir, "forecast", "--months", "6", *AS_OF, "--csv"))))
    assert [line["period"] for line in lines] == [r["period"] for r in rows]
    assert [(line["closing_mrr"], line["low"], line["high"]) for line in lines] == [
        (r["closing_mrr"], r["low"], r["high"]) for r in rows]


def test_backtest_chart_and_human_output(business_dir, tmp_path):
    chart = tmp_path / "backtest.png"
    human = mrr(business_dir, "forecast", "--backtest", "--months", "3", "--from", "2023-04", *AS_OF,
                "--chart", str(chart))
    assert "Forecast backtest" in human and "MAPE" in human and f"chart written to {chart}" in human
    _assert_png(chart)
    points = list(csv.DictReader(io.StringIO(mrr(business_dir, "forecast", "--backtest", "--months", "3",
                                                 "--from", "2023-04", *AS_OF, "--csv"))))
    assert list(points[0]) == ["origin", "period", "horizon", "forecast_mrr", "actual_mrr", "error", "pct_error",
                               "low", "high", "within_band"]
    assert (points[0]["origin"], points[0]["period"], points[0]["horizon"]) == ("2023-09", "2023-10", "1")
    assert {p["within_band"] for p in points} <= {"true", "false"}


def test_forecast_help_explains_the_method():
    result = CliRunner().invoke(cli, ["forecast", "--help"])
    assert result.exit_code == 0
    for words in ("--months", "--window", "--backtest", "--chart", "sample standard deviation", "opening MRR"):
        assert words in result.output
    assert "--period" not in result.output


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 800 <= width <= 2000 and 400 <= height <= 1200, (width, height)
    assert 20_000 < len(data) < 1_000_000


def test_no_history_is_a_usage_error(tmp_path):
    env = {name: None for name in os.environ if name.startswith("MRR_")}
    result = CliRunner().invoke(cli, ["forecast", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2 and "no complete month of MRR history" in result.output
    result = CliRunner().invoke(cli, ["forecast", "--period", "week", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2 and "months only" in result.output
