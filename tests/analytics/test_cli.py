"""`mrr report cohorts|segments|unit-economics` (and --csv/--chart on bridge and kpis) through
click's CliRunner on an embedded ledger: --json, --csv, --out and --chart."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import struct

import pytest
from click.testing import CliRunner

from ledger.embedded import EmbeddedLedger
from streams.bootstrap import project_pending
from streams.cli.main import cli
from streams.config import load_config
from tests.engine.builders import canceled, event, item, started, updated
from tests.projections.conftest import at
from tests.projections.test_end_to_end import _no_outside_config  # noqa: F401  (autouse: no MRR_* env, no mrr.toml)

AS_OF = ["--as-of", "2024-03-31T23:59:59Z", "--from", "2024-01", "--to", "2024-03"]
DATABASE_URL: dict = {}
"""data dir -> projection database URL (PostgreSQL tests); none: SQLite in the data dir."""


def history():
    """c1: basic 30 (Jan 5), switches to pro 50 (Feb 10), channel ads, country DE.
    c2: pro 100 (Jan 10), canceled Mar 5; no attributes. c3: basic 20 (Feb 1), channel ads, FR.
    Spend: January ads 90, February ads 40."""
    return [
        started("2024-01-05", "s1", "c1", items=[item(3000, price="basic")]),
        event("customer.attributes_set", "2024-01-05", "c1", attributes={"channel": "ads", "country": "DE"}),
        started("2024-01-10", "s2", "c2", items=[item(10000, price="pro")]),
        started("2024-02-01", "s3", "c3", items=[item(2000, price="basic")]),
        event("customer.attributes_set", "2024-02-01", "c3", attributes={"channel": "ads", "country": "FR"}),
        updated("2024-02-10", "s1", "c1", items=[item(5000, price="pro")]),
        canceled("2024-03-05", "s2", "c2"),
        event("acquisition.cost_recorded", "2024-02-01", amount=9000, currency="USD", period="2024-01", channel="ads"),
        event("acquisition.cost_recorded", "2024-03-01", amount=4000, currency="USD", period="2024-02", channel="ads"),
    ]


async def record(path, **flags: str) -> None:
    async with EmbeddedLedger(path / "ledger.sqlite") as ledger:
        await ledger.append_many(history(), now=at("2024-03-06"))
    await project_pending(load_config({"data_dir": str(path), **flags}, environ={}))


def mrr(path, *args: str):
    result = CliRunner().invoke(cli, ["report", *args, "--data-dir", str(path)],
                                env={"MRR_DATABASE_URL": DATABASE_URL.get(path)})
    assert result.exit_code == 0, result.output
    return result


def as_json(path, *args: str) -> dict:
    return json.loads(mrr(path, *args, "--json").stdout)


def as_csv(path, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(mrr(path, *args, "--csv").stdout)))


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 700 <= width <= 2200 and 400 <= height <= 2600, (width, height)
    assert 15_000 < len(data) < 1_500_000  # drawn, not blank


@pytest.fixture
def data(tmp_path):
    asyncio.run(record(tmp_path))
    return tmp_path


def test_cohorts_cli(data):
    payload = as_json(data, "cohorts", *AS_OF)
    # January cohort: c1 (30) and c2 (100), starting 130. Jan end 2/2, 130/130; Feb end c1 50 +
    # c2 100 = 150/130 = 1.1538; Mar end c2 canceled: 1/2, 50/130 = 0.3846.
    # February cohort: c3 (20): 1 and 1 in February and March.
    assert [(r["cohort"], r["periods_since_start"], r["customers"], r["logo_retention"], r["revenue_retention"])
            for r in payload["rows"]] == [
        ("2024-01", 0, 2, "1.0000", "1.0000"), ("2024-01", 1, 2, "1.0000", "1.1538"),
        ("2024-01", 2, 1, "0.5000", "0.3846"), ("2024-02", 0, 1, "1.0000", "1.0000"),
        ("2024-02", 1, 1, "1.0000", "1.0000")]
    lines = as_csv(data, "cohorts", *AS_OF)
    assert lines[2] == {"cohort": "2024-01", "cohort_customers": "2", "starting_mrr": "130.00",
                        "periods_since_start": "2", "period": "2024-03", "customers": "1", "mrr": "50.00",
                        "logo_retention": "0.5000", "revenue_retention": "0.3846", "complete": "false"}
    human = mrr(data, "cohorts", *AS_OF, "--chart", str(data / "cohorts.png"))
    assert "Logo retention" in human.stdout and "50%" in human.stdout
    assert "chart written to" in human.stderr
    assert_png(data / "cohorts.png")


def test_segments_cli(data):
    payload = as_json(data, "segments", *AS_OF, "--by", "plan")
    rows = {(r["period"], r["segment"]): r for r in payload["rows"]}
    # February: c1 moves basic 30 -> pro 50 (30 moved, 20 expansion on pro); c3 new on basic 20.
    feb_basic, feb_pro = rows[("2024-02", "basic")], rows[("2024-02", "pro")]
    assert (feb_basic["opening_mrr"], feb_basic["new_business"], feb_basic["moved_out"], feb_basic["closing_mrr"]) == (
        "30.00", "20.00", "-30.00", "20.00")
    assert (feb_pro["opening_mrr"], feb_pro["moved_in"], feb_pro["expansion"], feb_pro["closing_mrr"]) == (
        "100.00", "30.00", "20.00", "150.00")
    assert (rows[("2024-03", "pro")]["churn"], rows[("2024-03", "pro")]["closing_mrr"]) == ("-100.00", "50.00")
    by_country = as_csv(data, "segments", *AS_OF, "--by", "attribute:country", "--top", "1")
    # March closing: DE (c1) 50, FR (c3) 20, (none) 0 -> top 1 = DE, the rest in (other).
    assert [(r["period"], r["segment"], r["closing_mrr"], r["customers"]) for r in by_country
            if r["period"] == "2024-03"] == [("2024-03", "DE", "50.00", "1"), ("2024-03", "(other)", "20.00", "1")]
    out = data / "segments.csv"
    result = mrr(data, "segments", *AS_OF, "--by", "interval", "--csv", "--out", str(out), "--chart",
                 str(data / "segments.png"))
    assert result.stdout == "" and out.read_text().startswith("period,segment,opening_mrr,")
    assert_png(data / "segments.png")
    assert "Closing MRR by plan" in mrr(data, "segments", *AS_OF).stdout
    bad = CliRunner().invoke(cli, ["report", "segments", "--by", "colour", "--data-dir", str(data)])
    assert bad.exit_code == 2 and "attribute:KEY" in bad.output


def test_unit_economics_cli(data):
    payload = as_json(data, "unit-economics", *AS_OF, "--ltv-window", "2")
    # January: c1, c2 new (cost 90 -> CAC 45); February: c3 new (40 -> 40); March: c2 churns,
    # 1 of 3 at start; retention 2/3; window of 2: (0 + 1) / (2 + 3) = 0.2 -> LTV = ARPA 35 / 0.2.
    assert [(r["period"], r["new_customers"], r["cac"], r["customer_retention_rate"]) for r in payload["rows"]] == [
        ("2024-01", 2, "45.00", None), ("2024-02", 1, "40.00", "1.0000"), ("2024-03", 0, None, "0.6667")]
    march = payload["rows"][-1]
    assert (march["customer_churn_rate"], march["customer_churn_rate_window"], march["arpa"], march["ltv"]) == (
        "0.3333", "0.2000", "35.00", "175.00")
    # By channel (the customers' `channel` attribute): January ads = c1 (90 / 1), c2 has none;
    # March has neither a cost nor a new customer: no channel row.
    assert [(c["period"], c["channel"], c["acquisition_cost"], c["new_customers"], c["cac"])
            for c in payload["channels"]] == [
        ("2024-01", "(none)", "0.00", 1, "0.00"), ("2024-01", "ads", "90.00", 1, "90.00"),
        ("2024-02", "ads", "40.00", 1, "40.00")]
    lines = as_csv(data, "unit-economics", *AS_OF)
    assert [(r["period"], r["channel"], r["cac"]) for r in lines][:4] == [
        ("2024-01", "(all)", "45.00"), ("2024-02", "(all)", "40.00"), ("2024-03", "(all)", ""),
        ("2024-01", "(none)", "0.00")]
    human = mrr(data, "unit-economics", *AS_OF, "--chart", str(data / "ue.png"))
    assert "LTV:CAC" in human.stdout and "CAC by channel" in human.stdout
    assert_png(data / "ue.png")


def test_csv_out_and_chart_on_existing_reports(data):
    lines = as_csv(data, "bridge", *AS_OF)
    assert [(r["period"], r["closing_mrr"], r["customers_closing"]) for r in lines] == [
        ("2024-01", "130.00", "2"), ("2024-02", "170.00", "3"), ("2024-03", "70.00", "2")]
    moves = as_csv(data, "movements", *AS_OF)
    assert moves[0]["event_ids"] and moves[0]["type"] == "new_business"
    customer = as_csv(data, "customer", "--customer", "c1", "--as-of", "2024-03-31T00:00:00Z")
    assert [(s["subscription_id"], s["plan"], s["mrr"]) for s in customer] == [("s1", "pro", "50.00")]
    out = data / "kpis.json"
    mrr(data, "kpis", *AS_OF, "--json", "--out", str(out), "--chart", str(data / "kpis.png"))
    assert json.loads(out.read_text())["rows"][2]["customers"] == 2
    assert_png(data / "kpis.png")
    mrr(data, "bridge", *AS_OF, "--chart", str(data / "bridge.png"))
    assert_png(data / "bridge.png")
    for args, message in ((["--json", "--csv"], "one of --json and --csv"), (["--out", "x.csv"], "--out needs")):
        bad = CliRunner().invoke(cli, ["report", "bridge", *args, "--data-dir", str(data)])
        assert bad.exit_code == 2 and message in bad.output


def test_help_explains_the_figures():
    for name, words in (("cohorts", "logo_retention"), ("segments", "moved_in"), ("unit-economics", "ltv_cac")):
        result = CliRunner().invoke(cli, ["report", name, "--help"])
        assert result.exit_code == 0 and words in result.output and "--chart" in result.output


def test_a_table_wider_than_the_terminal_is_printed_in_parts(monkeypatch):
    # 80 columns, a label column and 24 periods: rich alone would squeeze every cell to `1…` and
    # the labels to nothing; in parts, every part repeats the labels and shows whole numbers.
    from rich.console import Console

    from streams.cli import _report_render

    console = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(_report_render, "_console", console)
    periods = [f"{2023 + i // 12}-{i % 12 + 1:02d}" for i in range(24)]
    _report_render._table("MRR bridge", ["", *periods],
                          [["opening MRR", *("123456.78" for _ in periods)], ["churn", *("-1.00" for _ in periods)]])
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert text.count("opening MRR") == text.count("(continued)") + 1 >= 3
    assert text.count("123456.78") == 24 and all(p in text for p in periods) and "…" not in text
