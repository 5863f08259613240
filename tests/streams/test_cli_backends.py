"""`mrr ingest`, `mrr import-periods` and `mrr report` on the production backends, real servers.

Each test gets its own Kafka topic (`new_topic`) or its own PostgreSQL database (the
`fresh_database` fixture of tests/stack/plugin.py), a tmp data dir, and an environment without
the caller's `MRR_*` settings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.demo import generate_business
from ledger.embedded import EmbeddedLedger
from ledger.kafka.reader import KafkaLedgerReader
from projections.migrate import head_revision, upgrade
from streams.cli.main import cli
from tests.kafka.test_kafka_ledger import new_topic
from tests.ledger.contract import read_all
from tests.ledger.factory import started, with_
from tests.ledger.test_cli_ingest import runner, write_file

GOOD_A = json.dumps(started("a", customer_id="cus-a"))
GOOD_C = json.dumps(started("c", customer_id="cus-c"))
BAD = json.dumps(with_(started("b", customer_id="cus-b"), "terms.currency", "XYZ"))

START, MONTHS = dt.date(2023, 1, 1), 6
END = "2023-07-01T00:00:00Z"
"""Nothing of the generated business occurs or arrives at or after this instant."""


def mrr(tmp_path: Path, *args: str, input: str | None = None, **env: str) -> Any:
    """`mrr ARGS` with a tmp data dir, no mrr.toml, and only the `MRR_*` variables in `env`."""
    environ: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MRR_")}
    environ |= {"MRR_DATA_DIR": str(tmp_path / "data"),
                "MRR_CONFIG": str(tmp_path / "absent.toml"), **env}
    return runner().invoke(cli, list(args), input=input, env=environ)


def kafka_env(bootstrap: str, topic: str) -> dict[str, str]:
    return {"MRR_KAFKA_BOOTSTRAP": bootstrap, "MRR_LEDGER_TOPIC": topic}


def create_topic(tmp_path: Path, env: dict[str, str]) -> None:
    result = mrr(tmp_path, "topics", "create", "--partitions", "3", **env)
    assert result.exit_code == 0, result.output + result.stderr


def topic_records(bootstrap: str, topic: str) -> list[Any]:
    async def read() -> list[Any]:
        async with KafkaLedgerReader(bootstrap, topic) as reader:
            return await read_all(reader)

    return asyncio.run(read())


def topic_names(bootstrap: str) -> list[str]:
    async def names() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    return asyncio.run(names())


# --- mrr ingest / import-periods on Kafka -------------------------------------------------------

def test_ingest_on_kafka_appends_exactly_the_valid_lines(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = kafka_env(kafka_bootstrap, new_topic())
    create_topic(tmp_path, env)
    path = str(write_file(tmp_path, [GOOD_A, "", BAD, "{", GOOD_C]))

    result = mrr(tmp_path, "ingest", path, **env)

    assert result.exit_code == 1
    assert result.stdout == "accepted: 2  duplicate: n/a  rejected: 2\n"
    assert "line 3: terms.currency: unknown currency 'XYZ'\n" in result.stderr
    assert "line 4: body: malformed JSON" in result.stderr
    assert "counted as accepted" in result.stderr
    assert "projections: updated by mrr worker" in result.stderr
    records = topic_records(kafka_bootstrap, env["MRR_LEDGER_TOPIC"])
    assert sorted(r.event.event_id for r in records) == ["a", "c"]  # nothing of lines 3 and 4
    assert {r.event.customer_id for r in records} == {"cus-a", "cus-c"}
    assert all(r.event.recorded_at is not None for r in records)
    assert not (tmp_path / "data" / "ledger.sqlite").exists()  # the embedded ledger is untouched


def test_ingest_on_kafka_json_counts_a_resent_file_as_accepted(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    env = kafka_env(kafka_bootstrap, new_topic())
    create_topic(tmp_path, env)
    path = str(write_file(tmp_path, [GOOD_A, GOOD_C]))
    assert mrr(tmp_path, "ingest", path, **env).exit_code == 0

    again = mrr(tmp_path, "ingest", "--json", path, **env)

    assert again.exit_code == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["accepted"], summary["duplicate"], summary["rejected"]) == (2, None, 0)
    assert summary["ledger"] == "kafka" and summary["topic"] == env["MRR_LEDGER_TOPIC"]
    assert summary["projections"] == "updated by mrr worker"
    ids = sorted(r.event.event_id for r in topic_records(kafka_bootstrap, env["MRR_LEDGER_TOPIC"]))
    assert ids == ["a", "a", "c", "c"]  # stored again; the worker applies each event_id once


def test_ingest_on_kafka_without_the_topic_exits_2(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = new_topic()
    result = mrr(tmp_path, "ingest", str(write_file(tmp_path, [GOOD_A])),
                 **kafka_env(kafka_bootstrap, topic))
    assert result.exit_code == 2
    assert f"Kafka topic {topic!r} does not exist" in result.stderr
    assert "mrr topics create" in result.stderr
    assert topic not in topic_names(kafka_bootstrap)  # not auto-created by the attempt


def test_ingest_with_kafka_unreachable_exits_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{sock.getsockname()[1]}"
    result = mrr(tmp_path, "ingest", str(write_file(tmp_path, [GOOD_A])),
                 **kafka_env(bootstrap, "mrr.ledger"))
    assert result.exit_code == 2
    assert f"Kafka at {bootstrap} does not answer" in result.stderr
    assert not (tmp_path / "data").exists()


def test_import_periods_on_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = kafka_env(kafka_bootstrap, new_topic())
    create_topic(tmp_path, env)
    csv = tmp_path / "periods.csv"
    csv.write_text("subscription_id,customer_id,start_date,end_date,monthly_amount\n"
                   "s1,c1,2019-04-01,2019-06-01,49.99\n"
                   "s2,c2,2019-05-01,,25\n")

    result = mrr(tmp_path, "import-periods", "--json", str(csv), **env)

    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["duplicate"], summary["rejected"]) == (3, None, 0)
    assert summary["projections"] == "updated by mrr worker"
    records = topic_records(kafka_bootstrap, env["MRR_LEDGER_TOPIC"])
    assert sorted(r.event.event_id for r in records) == [
        "periods:s1:end", "periods:s1:start", "periods:s2:start"]
    assert not (tmp_path / "data" / "ledger.sqlite").exists()


def test_import_periods_on_kafka_without_the_topic_exits_2(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    csv = tmp_path / "periods.csv"
    csv.write_text("subscription_id,customer_id,start_date,end_date,monthly_amount\n"
                   "s1,c1,2019-04-01,,10\n")
    result = mrr(tmp_path, "import-periods", str(csv), **kafka_env(kafka_bootstrap, new_topic()))
    assert result.exit_code == 2 and "mrr topics create" in result.stderr


# --- mrr report on PostgreSQL -------------------------------------------------------------------

def record_arrivals(data_dir: Path, arrivals: list[Any]) -> None:
    """Append (arrival, event) pairs to the embedded ledger in `data_dir`, recorded at arrival."""

    async def append() -> None:
        async with EmbeddedLedger(data_dir / "ledger.sqlite") as ledger:
            for arrival, group in itertools.groupby(arrivals, key=lambda pair: pair[0]):
                await ledger.append_many([event for _, event in group], now=arrival)

    data_dir.mkdir(parents=True)
    asyncio.run(append())


def record_business(data_dir: Path) -> int:
    """A small generated business in the embedded ledger, recorded at its arrival times."""
    arrivals = generate_business(seed=11, customers=25, months=MONTHS, start=START)
    record_arrivals(data_dir, arrivals)
    return len(arrivals)


REPORT = ["report", "bridge", "--json", "--from", "2023-01", "--to", "2023-06",
          "--as-of", END, "--known-at", END]


def test_report_on_postgres_equals_report_on_sqlite(tmp_path: Path, fresh_database: str) -> None:
    assert record_business(tmp_path / "data") > 100
    assert asyncio.run(upgrade(fresh_database)) == head_revision()

    on_sqlite = mrr(tmp_path, *REPORT)
    on_postgres = mrr(tmp_path, *REPORT, MRR_DATABASE_URL=fresh_database)

    assert on_sqlite.exit_code == 0, on_sqlite.output + on_sqlite.stderr
    assert on_postgres.exit_code == 0, on_postgres.output + on_postgres.stderr
    expected = json.loads(on_sqlite.stdout)
    assert len(expected["rows"]) == MONTHS and expected["rows"][-1]["closing_mrr"] != "0.00"
    assert json.loads(on_postgres.stdout) == expected
    assert (tmp_path / "data" / "projections.sqlite").exists()  # the SQLite run's own store


def test_report_with_kafka_configured_does_not_project_the_embedded_ledger(
    tmp_path: Path, fresh_database: str
) -> None:
    record_business(tmp_path / "data")
    asyncio.run(upgrade(fresh_database))
    # No broker is contacted: reports only read; `mrr worker` projects the Kafka ledger.
    result = mrr(tmp_path, *REPORT, MRR_DATABASE_URL=fresh_database,
                 MRR_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert result.exit_code == 0, result.output + result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert all(row["closing_mrr"] == "0.00" for row in rows)  # nothing projected


def test_report_on_an_unmigrated_database_names_mrr_db_upgrade(
    tmp_path: Path, fresh_database: str
) -> None:
    record_business(tmp_path / "data")

    result = mrr(tmp_path, *REPORT, MRR_DATABASE_URL=fresh_database)

    assert result.exit_code == 1
    assert (f"projection schema at revision none (never migrated), code expects "
            f"{head_revision()}: run `mrr db upgrade`") in result.stderr
    assert asyncio.run(table_names(fresh_database)) == []  # no create_all behind Alembic's back


async def table_names(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
