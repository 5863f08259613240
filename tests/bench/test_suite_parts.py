"""The benchmark suite's own logic (no timing is asserted anywhere): sizes, the results table,
the README markers, and the batch-SQL baseline agreeing with the bridge on real PostgreSQL."""

from __future__ import annotations

import argparse

import pytest

from bench import baseline, results
from bench.projector import build_records
from bench.reports import bridge_rows, first_month, now_scope
from bench.suite import parse_size, parse_sizes
from projections.engine import MrrSettings
from projections.migrate import upgrade
from projections.projector import Projector
from projections.store import ProjectionStore, asyncpg_dsn


def test_sizes_read_like_people_write_them():
    assert parse_size("100k") == 100_000
    assert parse_size("1M") == 1_000_000
    assert parse_size("2.5m") == 2_500_000
    assert parse_size("250_000") == 250_000
    assert parse_sizes("5M,100k,1M,100k") == [100_000, 1_000_000, 5_000_000]
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        parse_size("lots")
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1k"):
        parse_size("10")


def test_first_month_counts_back_across_years():
    import datetime as dt

    assert first_month(dt.date(2026, 12, 6)) == "2025-01"
    assert first_month(dt.date(2026, 1, 31), months=1) == "2026-01"
    assert first_month(dt.date(2026, 1, 31), months=2) == "2025-12"


def _report() -> dict:
    size = {"events": 100_000, "customers": 12_800, "engine": {"events_per_second": 250_000},
            "publish": {"events_per_second": 30_000}, "ceiling": {"events_per_second": 120_000},
            "replay": {"events_per_second": 9_000, "seconds": 11.1, "phases": {"reading": 1.0}, "peak_rss_mib": 400},
            "copy": {"seconds": 0.3}, "ratio": 0.075,
            "reports": {"bridge, 24 months": {"ms": 70.0}},
            "late_event": {"total_ms": 80.0, "apply_ms": 20.0, "report_ms": 60.0, "reflected": "5/5"},
            "baseline": {"seconds": 0.5, "periods": 9_000, "rows": 25_000, "agreement": "23/23 months equal"},
            "worker": None}
    return {"date": "2026-12-06", "command": "python -m bench suite --sizes 100k", "runs": 3,
            "machine": "CPU X, 2 cores", "servers": "throwaway", "by_size": [size], "latency": [],
            "latency_after": None}


def test_the_table_says_which_targets_are_met_and_which_are_not():
    text = results.render(_report())
    assert "| one late event restated and in the bridge (100k ledger) | 80.0 ms | < 100 ms | met |" in text
    assert "| replay / ceiling (100k ledger) | 7.5% | ≥ 60 % | **not met** |" in text
    assert "| worker events/s, sustained | not measured | ≥ 30,000 | – |" in text
    assert "| replay time / baseline time | 22× |" in text
    assert "| ledger | 100k events |" in text


def test_results_are_written_and_the_readme_table_replaced(tmp_path):
    markdown = results.write(_report(), tmp_path / "results")
    assert markdown.name == "2026-12-06.md" and markdown.with_suffix(".json").exists()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.BEGIN}\nold table\n{results.END}\noutro\n")
    results.update_readme(readme, "new table\n")
    assert readme.read_text() == f"intro\n{results.BEGIN}\nnew table\n{results.END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        results.update_readme(readme, "x")


async def test_the_batch_sql_baseline_equals_the_bridge_opening_every_month(fresh_database):
    await upgrade(fresh_database)
    store = ProjectionStore.from_url(fresh_database)
    try:
        await Projector(store, MrrSettings()).apply_batch(build_records(4_000, seed=3, months=24), {})
        opening = {row.period.label: row.opening_mrr for row in await store.read(bridge_rows, now_scope())}
    finally:
        await store.close()
    measured = await baseline.measure(asyncpg_dsn(fresh_database), opening, runs=1)
    agreed, compared = measured["agreement"].split()[0].split("/")
    assert agreed == compared and int(compared) >= 20, measured
    assert measured["periods"] > 0 and measured["rows"] > 0


def test_a_failed_size_is_shown_failed_and_the_others_still_count():
    report = _report()
    report["by_size"].append({"events": 5_000_000, "error": "RuntimeError: mrr replay failed (1): BrokenProcessPool"})
    text = results.render(report)
    assert "| customers | 12,800 | failed |" in text
    assert "5M events failed: RuntimeError: mrr replay failed" in text
    assert "| one late event restated and in the bridge (100k ledger) | 80.0 ms |" in text
