"""`mrr report restatements` and `--known-at`: a month reported, then a backdated cancellation.

Events go through the real `Projector` (ledger records with positions) into SQLite projections in
the data directory or a fresh, migrated PostgreSQL database; the reports run through the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from ledger.ports import LedgerRecord
from projections.migrate import upgrade
from projections.projector import Projector
from projections.store import ProjectionStore, sqlite_url
from streams.cli.main import cli
from streams.config import load_config
from tests.engine.builders import canceled, event, item, renewed, started
from tests.projections.conftest import record


def named(event_id: str, ev):  # type: ignore[no-untyped-def]
    return msgspec.structs.replace(ev, event_id=event_id)


HISTORY = [  # each recorded when it happened
    record(0, named("c1-start", started("2024-01-01", items=[item(10000)])), "2024-01-01"),
    record(1, named("c2-start", started("2024-01-15", customer="c2", sub="s2", items=[item(4999)])), "2024-01-15"),
    record(2, named("c3-start", started("2024-02-05", customer="c3", sub="s3", items=[item(3050)])), "2024-02-05"),
]
# Effective Feb 20, recorded Mar 10: after February closed (Mar 1), before March closed (Apr 1).
LATE = record(3, named("c2-cancel", canceled("2024-02-20", customer="c2", sub="s2")), "2024-03-10T09:30")
MONTH = ["--from", "2024-02", "--to", "2024-02"]


class Books:
    """Projections in `data_dir` (SQLite) or at `url` (PostgreSQL), read by `mrr report`."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.url = database_url or sqlite_url(data_dir / "projections.sqlite")

    def project(self, records: list[LedgerRecord]) -> None:
        async def go() -> None:
            store = ProjectionStore.from_url(self.url)
            try:
                if store.dialect == "sqlite":
                    await store.create_all()
                settings = load_config({}, environ={}).mrr_settings()
                result = await Projector(store, settings).apply_batch(records, {0: records[-1].offset + 1})
                assert result.applied == len(records)
            finally:
                await store.close()

        asyncio.run(go())

    def report(self, *args: str) -> dict:
        env = {"MRR_DATA_DIR": str(self.data_dir), "MRR_DATABASE_URL": self.database_url}
        result = CliRunner().invoke(cli, ["report", *args, "--json"], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def books(request, tmp_path, monkeypatch) -> Books:
    for name in list(os.environ):
        if name.startswith("MRR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no mrr.toml
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("fresh_database")
        asyncio.run(upgrade(url))  # the CLI needs the schema at Alembic's head revision
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Books(data_dir, url)


def test_a_backdated_cancellation_restates_the_closed_month(books):
    books.project(HISTORY)
    [reported] = books.report("bridge", *MONTH)["rows"]  # February, reported before the late event
    assert (reported["opening_mrr"], reported["new_business"], reported["churn"], reported["closing_mrr"],
            reported["customers_closing"]) == ("149.99", "30.50", "0.00", "180.49", 3)
    books.project([LATE])

    [as_closed] = books.report("bridge", *MONTH, "--known-at", "2024-03-10T09:29:59Z")["rows"]
    assert as_closed == reported
    [restated] = books.report("bridge", *MONTH)["rows"]
    assert (restated["opening_mrr"], restated["new_business"], restated["churn"], restated["closing_mrr"],
            restated["churned_customers"], restated["customers_closing"]) == (
        "149.99", "30.50", "-49.99", "130.50", 1, 2)

    report = books.report("restatements", "--period", "month")
    assert report["period"] == "month" and report["currency"] == "USD" and report["customer_id"] is None
    [feb] = report["rows"]  # January and every month from March on are unaffected
    assert (feb["period"], feb["closed_at"]) == ("2024-02", "2024-03-01T00:00:00+00:00")
    assert feb["at_close"] == {k: reported[k] for k in feb["at_close"]}
    assert feb["now"] == {k: restated[k] for k in feb["now"]}
    assert feb["delta"] == {"opening_mrr": "0.00", "new_business": "0.00", "expansion": "0.00",
                            "contraction": "0.00", "churn": "-49.99", "reactivation": "0.00",
                            "fx_impact": "0.00", "closing_mrr": "-49.99"}
    assert feb["causes"] == [{"event_id": "c2-cancel", "type": "subscription.canceled", "customer_id": "c2",
                              "occurred_at": "2024-02-20T00:00:00+00:00",
                              "recorded_at": "2024-03-10T09:30:00+00:00", "changed": "period"}]

    span = ["--period", "month", "--from", "2024-01", "--to", "2024-04"]
    before_late = books.report("restatements", *span, "--known-at", "2024-03-10T09:29:59Z")
    assert before_late["rows"] == []
    csv = CliRunner().invoke(cli, ["report", "restatements", *span, "--csv"],
                             env={"MRR_DATA_DIR": str(books.data_dir), "MRR_DATABASE_URL": books.database_url})
    assert csv.exit_code == 0, csv.output
    header, line = csv.output.splitlines()
    row = dict(zip(header.split(","), line.split(",")))
    assert (row["period"], row["delta.churn"], row["delta.closing_mrr"], row["causes"]) == (
        "2024-02", "-49.99", "-49.99", "c2-cancel")


def test_a_cancellation_known_before_the_close_restates_nothing(books):
    on_time = record(3, named("c2-cancel", canceled("2024-02-20", customer="c2", sub="s2")), "2024-02-20")
    books.project([*HISTORY, on_time])
    report = books.report("restatements", "--period", "month")
    assert report["rows"] == []
    [feb] = books.report("bridge", *MONTH)["rows"]
    assert (feb["churn"], feb["closing_mrr"]) == ("-49.99", "130.50")
    human = CliRunner().invoke(cli, ["report", "restatements", "--from", "2024-01", "--to", "2024-03"],
                               env={"MRR_DATA_DIR": str(books.data_dir), "MRR_DATABASE_URL": books.database_url})
    assert human.exit_code == 0 and "no closed period changed" in human.output


def test_a_late_event_that_removes_a_movement_also_restates_later_openings(books):
    # Recorded Apr 10: c3 never really started (canceled at its start), after February and March closed.
    void = record(3, named("c3-void", canceled("2024-02-05", customer="c3", sub="s3")), "2024-04-10")
    books.project(HISTORY)
    books.project([void])
    rows = books.report("restatements", "--from", "2024-01", "--to", "2024-06")["rows"]
    changed = [(r["period"], {k: v for k, v in r["delta"].items() if v != "0.00"},
                [(c["event_id"], c["customer_id"], c["changed"]) for c in r["causes"]]) for r in rows]
    assert changed == [
        ("2024-02", {"new_business": "-30.50", "closing_mrr": "-30.50"}, [("c3-void", "c3", "period")]),
        ("2024-03", {"opening_mrr": "-30.50", "closing_mrr": "-30.50"}, [("c3-void", "c3", "opening")]),
    ]  # April closed (May 1) knowing it


def test_a_late_fx_rate_is_a_cause(books):
    eur = dict(customer="c9", sub="s9", currency="EUR", items=[item(10000)])
    books.project([
        record(0, named("c9-start", started("2024-01-01", **eur)), "2024-01-01"),
        record(1, rate("fx-jan", "2024-01-01", "1.25"), "2024-01-01"),
        record(2, named("c9-renew", renewed("2024-02-01", period_start="2024-02-01", **eur)), "2024-02-01"),
    ])
    books.project([record(3, rate("fx-feb", "2024-02-01", "1.30"), "2024-03-10")])  # late: Feb's renewal
    [feb] = books.report("restatements", "--from", "2024-01", "--to", "2024-04")["rows"]
    assert (feb["period"], feb["at_close"]["closing_mrr"], feb["now"]["closing_mrr"]) == ("2024-02", "125.00", "130.00")
    assert {k: v for k, v in feb["delta"].items() if v != "0.00"} == {"fx_impact": "5.00", "closing_mrr": "5.00"}
    assert [(c["event_id"], c["type"], c["customer_id"], c["recorded_at"]) for c in feb["causes"]] == [
        ("fx-feb", "fx.rate_published", None, "2024-03-10T00:00:00+00:00")]


def rate(event_id: str, day: str, value: str):  # type: ignore[no-untyped-def]
    return event("fx.rate_published", day, event_id=event_id, base="EUR", quote="USD", rate=value,
                 effective_date=day)
