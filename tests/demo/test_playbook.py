"""The dbt mrr-playbook sample through the whole stack: CSV → `mrr import-periods` →
`mrr report snapshot --period month --json`, checked against the playbook's own method computed
here, independently, from the CSV."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli.main import cli

PLAYBOOK = Path("/work/shared/data/mrr_playbook/subscription_periods.csv")
CATEGORY = {"new": "new_business", "churn": "churn", "reactivation": "reactivation",
            "upgrade": "expansion", "downgrade": "contraction", None: None}


def _month(day: dt.date, n: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def playbook_rows(path: Path) -> set[tuple[str, str, Decimal, Decimal, str | None]]:
    """The mrr-playbook model: per customer and month, the MRR of the periods covering the month;
    rows from the first to the last active month plus the churn month; the change category is the
    first match of new, churn, reactivation, upgrade, downgrade."""
    periods = defaultdict(list)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            periods[row["customer_id"]].append((dt.date.fromisoformat(row["start_date"]),
                                                dt.date.fromisoformat(row["end_date"]),
                                                Decimal(row["monthly_amount"])))
    expected = set()
    for customer, spans in periods.items():
        first, stop = min(s for s, _, _ in spans), max(e for _, e, _ in spans)
        months, month = [], first
        while month < stop:
            months.append((month, sum((a for s, e, a in spans if s <= month < e), Decimal(0))))
            month = _month(month, 1)
        active = [m for m, mrr in months if mrr > 0]
        mrr_of = dict(months)
        previous = Decimal(0)
        month = active[0]
        while month <= _month(active[-1], 1):
            mrr = mrr_of.get(month, Decimal(0))
            if month == active[0]:
                category = "new"
            elif mrr == 0 and previous > 0:
                category = "churn"
            elif mrr > 0 and previous == 0:
                category = "reactivation"
            elif mrr > previous:
                category = "upgrade"
            elif mrr < previous:
                category = "downgrade"
            else:
                category = None
            expected.add((f"{month:%Y-%m}", customer, mrr, previous, CATEGORY[category]))
            previous, month = mrr, _month(month, 1)
    return expected


def test_snapshot_matches_the_playbook_method(tmp_path):
    if "report" not in cli.commands:
        pytest.skip("`mrr report` is not available yet")
    runner = CliRunner()
    env = {"MRR_DATA_DIR": str(tmp_path / "data"), "MRR_CONFIG": str(tmp_path / "none.toml")}
    imported = runner.invoke(cli, ["import-periods", str(PLAYBOOK)], env=env)
    assert imported.exit_code == 0, imported.output
    assert "periods: 121" in imported.output
    report = runner.invoke(cli, ["report", "snapshot", "--period", "month", "--json",
                                 "--from", "2017-09", "--to", "2020-03"], env=env)
    assert report.exit_code == 0, report.output
    payload = json.loads(report.stdout)
    assert payload["currency"] == "USD"
    got = {(r["period"], r["customer_id"], Decimal(r["mrr"]), Decimal(r["previous_mrr"]),
            r["category"]) for r in payload["rows"]}
    assert len(got) == len(payload["rows"])
    for r in payload["rows"]:
        assert Decimal(r["change"]) == Decimal(r["mrr"]) - Decimal(r["previous_mrr"])
    expected = playbook_rows(PLAYBOOK)
    assert got - expected == set() and expected - got == set()
    assert len(expected) == 417  # 55 customers, 2017-09 through the 2020-02 churn rows
