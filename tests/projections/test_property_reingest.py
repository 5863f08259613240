"""Property over random histories, through the real store: re-ingesting a file changes nothing,
and every stored monthly bridge balances (the query refuses one that does not)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from ledger.embedded import EmbeddedLedger
from ledger.events import encode_event
from ledger.ingest import ingest_lines
from streams.bootstrap import project_pending
from streams.cli.main import cli
from streams.config import load_config
from tests.engine.test_properties import business


def _report(data_dir: Path, kind: str) -> dict:
    result = CliRunner().invoke(cli, ["report", kind, "--data-dir", str(data_dir), "--json",
                                      "--from", "2024-01", "--to", "2025-03",
                                      "--as-of", "2025-04-01T00:00:00Z"],
                                env={name: None for name in os.environ if name.startswith("MRR_")})
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def _ingest(data_dir: Path, lines: list[bytes], mrr_settings) -> None:
    async with EmbeddedLedger(data_dir / "ledger.sqlite") as ledger:
        await ingest_lines(lines, ledger)
    config = load_config({"data_dir": str(data_dir), **{
        "churn_recognition": mrr_settings.churn_recognition,
        "past_due_grace_days": mrr_settings.past_due_grace_days,
        "once_discounts_reduce_mrr": mrr_settings.once_discounts_reduce_mrr,
        "classification_window_seconds": mrr_settings.classification_window_seconds,
    }}, environ={})
    await project_pending(config)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(business())
def test_reingesting_the_same_file_changes_nothing(data: tuple) -> None:
    events, mrr_settings = data
    lines = [encode_event(e) for e in events]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        asyncio.run(_ingest(data_dir, lines, mrr_settings))
        bridge, movements = _report(data_dir, "bridge"), _report(data_dir, "movements")
        for row in bridge["rows"]:
            assert row["opening_mrr"] is not None  # the query itself asserts the balance
        asyncio.run(_ingest(data_dir, lines, mrr_settings))
        assert _report(data_dir, "movements")["rows"] == movements["rows"]
        again = _report(data_dir, "bridge")
        assert again["rows"] == bridge["rows"]
