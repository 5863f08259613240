"""`mrr_verify_differences` and `mrr_verify_timestamp_seconds`: absent until `mrr verify` has
recorded a result in `projection_meta`, then the stored summary (SQLite and PostgreSQL); the real
`mrr verify` on the embedded default feeds them; and the collector exports exactly the business
metrics docs/metrics.md lists (which test_alert_rules.py holds the alert rules to)."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import delete, insert

from projections import schema
from projections.metrics import BusinessCollector, SnapshotRefresher
from projections.metrics.verify import META_KEY, VerifyStatus
from projections.store import ProjectionStore, sqlite_url
from tests.metrics.business import business, jsonl, scrape
from tests.metrics.conftest import new_database
from tests.worker.support import MRR

REPO = Path(__file__).resolve().parents[2]
VERIFY = {"mrr_verify_differences", "mrr_verify_timestamp_seconds"}


def families(registry: CollectorRegistry) -> set[str]:
    return {family.name for family in registry.collect()}


async def refreshed(store: ProjectionStore) -> tuple[BusinessCollector, CollectorRegistry]:
    collector = BusinessCollector()
    await SnapshotRefresher(store, collector, "USD").refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    return collector, registry


async def store_verify(store: ProjectionStore, value: str) -> None:
    def write(conn) -> None:
        conn.execute(delete(schema.projection_meta).where(schema.projection_meta.c.key == "verify"))
        conn.execute(insert(schema.projection_meta), [{"key": "verify", "value": value}])

    await store.transaction(write)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_verify_gauges_follow_the_stored_summary(backend, request, tmp_path) -> None:
    if backend == "postgres":
        store = ProjectionStore.from_url(await new_database(request.getfixturevalue("postgres_url")))
    else:
        store = ProjectionStore.from_url(sqlite_url(tmp_path / "p.sqlite"))
        await store.create_all()
    try:
        # never verified: neither gauge, not even an empty family; the rest is there
        _, registry = await refreshed(store)
        assert "mrr_mrr" in families(registry)
        assert not VERIFY & families(registry)
        assert b"mrr_verify" not in generate_latest(registry)

        # what `mrr verify` stores (streams.verify.record_result)
        await store_verify(store, '{"checked_at":"2025-01-02T03:04:05.250000Z","differences":3,"events":1200}')
        _, registry = await refreshed(store)
        assert registry.get_sample_value("mrr_verify_differences") == 3.0
        assert registry.get_sample_value("mrr_verify_timestamp_seconds") == \
            dt.datetime(2025, 1, 2, 3, 4, 5, 250000, tzinfo=dt.timezone.utc).timestamp() == 1735787045.25
        text = generate_latest(registry).decode()
        assert "# HELP mrr_verify_differences Differences between the projections" in text
        assert "# HELP mrr_verify_timestamp_seconds Unix time the last `mrr verify`" in text
        assert "# TYPE mrr_verify_differences gauge" in text

        # a clean run: 0 is exported (absence means "never verified", not "no difference")
        await store_verify(store, '{"checked_at":"2025-01-03T00:00:00+01:00","differences":0,"events":1300,"new":1}')
        _, registry = await refreshed(store)
        assert registry.get_sample_value("mrr_verify_differences") == 0.0
        assert registry.get_sample_value("mrr_verify_timestamp_seconds") == 1735858800.0

        # an undecodable row (or a naive time) is not exported and does not fail the refresh
        for bad in ('{"differences":"many"}', "not json", '{"checked_at":"2025-01-03T00:00:00","differences":0,"events":1}'):
            await store_verify(store, bad)
            collector, registry = await refreshed(store)
            assert collector.refresh_errors == 0
            assert "mrr_mrr" in families(registry) and not VERIFY & families(registry), bad
    finally:
        await store.close()


def test_the_summary_mrr_verify_writes_is_the_one_the_exporter_reads() -> None:
    from streams.verify import META_KEY as WRITTEN_KEY, VerifySummary

    checked = dt.datetime(2025, 6, 1, 12, 30, tzinfo=dt.timezone.utc)
    stored = msgspec.json.encode(VerifySummary(checked, 7, 42))
    assert META_KEY == WRITTEN_KEY
    assert msgspec.json.decode(stored, type=VerifyStatus) == VerifyStatus(checked, 7, 42)


def mrr(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MRR, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def documented_business_metrics() -> set[str]:
    """The metric names of the "Business gauges" section of docs/metrics.md (counters without
    `_total`, as prometheus_client names their families)."""
    doc = (REPO / "docs/metrics.md").read_text()
    section = doc.split("## Business gauges", 1)[1].split("\n## ", 1)[0]
    return {re.sub(r"_total$", "", n) for n in re.findall(r"^\| `(mrr_\w+)`", section, re.M)}


async def test_mrr_verify_on_the_embedded_default_feeds_the_gauges(tmp_path, clean_env) -> None:
    env = clean_env
    (tmp_path / "events.jsonl").write_bytes(jsonl(business()))
    ingest = mrr(env, tmp_path, "ingest", "events.jsonl")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    registry = await scrape(env)
    assert "mrr_mrr" in families(registry) and not VERIFY & families(registry)

    before = time.time()
    ok = mrr(env, tmp_path, "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    registry = await scrape(env)
    assert registry.get_sample_value("mrr_verify_differences") == 0.0
    assert before - 1 <= registry.get_sample_value("mrr_verify_timestamp_seconds") <= time.time()
    # every documented business metric is exported, and nothing undocumented
    assert families(registry) == documented_business_metrics()

    db = sqlite3.connect(Path(env["MRR_DATA_DIR"]) / "projections.sqlite")
    with db:  # a bad hand edit that leaves the bridge balanced (so the exporter still refreshes)
        db.execute("UPDATE subscription_mrr SET plan = 'tampered' "
                   "WHERE id = (SELECT max(id) FROM subscription_mrr WHERE superseded_at IS NULL)")
    db.close()
    unchecked = mrr(env, tmp_path, "verify", "--no-record")
    assert unchecked.returncode == 1, unchecked.stdout + unchecked.stderr
    registry = await scrape(env)
    assert registry.get_sample_value("mrr_verify_differences") == 0.0  # --no-record stores nothing

    broken = mrr(env, tmp_path, "verify", "--json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    found = msgspec.json.decode(broken.stdout)["difference_count"]
    registry = await scrape(env)
    assert found >= 1 and registry.get_sample_value("mrr_verify_differences") == found
