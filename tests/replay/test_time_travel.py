"""Time travel through the real pipeline (Kafka, `mrr worker`, PostgreSQL): a month reported,
then a backdated cancellation; `--known-at` and `restatements` before and after a replay, and
side rebuilds as known at an instant and under other settings."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.engine.builders import canceled, item, started
from tests.replay.support import mrr_env, report, run_mrr
from tests.worker.support import migrated, new_topic, publish_arrivals, start_worker, wait_caught_up

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

UTC = dt.timezone.utc
FEB = ("bridge", "--from", "2024-02", "--to", "2024-02")
BEFORE_LATE = "2024-03-10T09:00:00Z"


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=UTC)


def named(event_id: str, ev):  # type: ignore[no-untyped-def]
    return msgspec.structs.replace(ev, event_id=event_id)


HISTORY = [  # each recorded when it happened
    (at("2024-01-01"), named("c1-start", started("2024-01-01", items=[item(10000)]))),
    (at("2024-01-15"), named("c2-start", started("2024-01-15", customer="c2", sub="s2", items=[item(4999)]))),
    (at("2024-02-05"), named("c3-start", started("2024-02-05", customer="c3", sub="s3", items=[item(3050)]))),
]
# Effective Feb 20, recorded Mar 10 09:30: after February closed.
LATE = [(at("2024-03-10T09:30"), named("c2-cancel", canceled("2024-02-20", customer="c2", sub="s2")))]


def movement(payload: dict, kind: str) -> int:
    [row] = payload["rows"]
    return row[kind] if kind in row else row["movements"][kind]


async def stored_settings(url: str, schema: str) -> dict:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            value = (await conn.execute(text(
                f"SELECT value FROM {schema}.projection_meta WHERE key = 'settings'"))).scalar_one()
            return json.loads(value)
    finally:
        await engine.dispose()


async def test_known_at_and_restatements_survive_a_replay_and_side_rebuilds(kafka_bootstrap, fresh_database, tmp_path):
    url = await migrated(fresh_database)
    topic = await new_topic(kafka_bootstrap)
    env = mrr_env(tmp_path, kafka_bootstrap, url, topic)
    worker = start_worker(tmp_path, kafka_bootstrap, url, topic, name="live")
    try:
        await publish_arrivals(kafka_bootstrap, topic, HISTORY)
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])
        original = report(env, *FEB)
        await publish_arrivals(kafka_bootstrap, topic, LATE)
        await wait_caught_up(kafka_bootstrap, topic, url, [worker])

        as_known = report(env, *FEB, "--known-at", BEFORE_LATE)
        restated = report(env, *FEB)
        restatements = report(env, "restatements", "--period", "month")
        assert as_known == original
        assert restated != original
        assert json.dumps(restated).count("-49.99") >= 1  # the churn the late cancellation adds
        assert [r["period"] for r in restatements["rows"]] == ["2024-02"]
        assert "c2-cancel" in json.dumps(restatements)

        replayed = run_mrr(["replay"], env)
        assert replayed.returncode == 0, replayed.stderr
        # The swapped-in history answers time travel exactly as the live projection did.
        assert report(env, *FEB, "--known-at", BEFORE_LATE) == as_known
        assert report(env, *FEB) == restated
        assert report(env, "restatements", "--period", "month") == restatements
    finally:
        assert worker.terminate() == 0, worker.tail()

    side = run_mrr(["replay", "--until-recorded", BEFORE_LATE, "--into", "before_late"], env)
    assert side.returncode == 0, side.stderr
    assert "kept" in side.stdout
    side_env = {**env, "MRR_DATABASE_SCHEMA": "before_late"}
    assert report(side_env, *FEB) == original  # the ledger as known then, rebuilt
    assert report(env, *FEB) == restated  # the live projections are untouched
    verified = run_mrr(["verify", "--no-record"], side_env)  # with the schema's own cutoff
    assert verified.returncode == 0, verified.stdout + verified.stderr

    other = run_mrr(["replay", "--setting", "churn_recognition=on_request", "--into", "on_request"], env)
    assert other.returncode == 0, other.stderr
    assert (await stored_settings(url, "on_request"))["churn_recognition"] == "on_request"
    assert (await stored_settings(url, "public"))["churn_recognition"] == "at_period_end"
    on_request_env = {**env, "MRR_DATABASE_SCHEMA": "on_request", "MRR_CHURN_RECOGNITION": "on_request"}
    verified = run_mrr(["verify", "--no-record"], on_request_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert run_mrr(["replay", "--setting", "churn_recognition=on_request", "--into", "on_request"], env).returncode == 2
    for schema in ("before_late", "on_request"):
        assert run_mrr(["replay", "--abort", "--into", schema], env).returncode == 0
