"""`mrr ingest`: exit codes, output, configuration, projection hook."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams.cli.ingest import command
from tests.ledger.factory import started, with_


def write_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run(tmp_path: Path, *args: str, input: str | None = None, **env: str) -> Any:
    environ = {
        "MRR_DATA_DIR": str(tmp_path / "data"),
        "MRR_KAFKA_BOOTSTRAP": "",
        "MRR_CONFIG": str(tmp_path / "absent.toml"),
        **env,
    }
    return runner().invoke(command, list(args), input=input, env=environ)


def runner() -> CliRunner:
    """A runner that keeps stderr apart (the default from click 8.2; an option before)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


@pytest.fixture(autouse=True)
def no_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about ingestion: hide any projector so they need no database."""
    monkeypatch.setitem(sys.modules, "streams.bootstrap", None)  # import -> ImportError


GOOD = json.dumps(started("a"))
BAD = json.dumps(with_(started("b"), "terms.currency", "XYZ"))


def test_all_accepted_exits_0(tmp_path: Path) -> None:
    result = run(tmp_path, str(write_file(tmp_path, [GOOD])))
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout == "accepted: 1  duplicate: 0  rejected: 0\n"
    assert (tmp_path / "data" / "ledger.sqlite").is_file()


def test_rejections_exit_1_with_line_numbers_on_stderr(tmp_path: Path) -> None:
    result = run(tmp_path, str(write_file(tmp_path, [GOOD, "", BAD, "{"])))
    assert result.exit_code == 1
    assert result.stdout == "accepted: 1  duplicate: 0  rejected: 2\n"
    assert "line 3: terms.currency: unknown currency 'XYZ'\n" in result.stderr
    assert "line 4: body: malformed JSON: input data was truncated\n" in result.stderr


def test_second_run_counts_duplicates(tmp_path: Path) -> None:
    path = str(write_file(tmp_path, [GOOD]))
    run(tmp_path, path)
    result = run(tmp_path, path)
    assert result.exit_code == 0
    assert result.stdout == "accepted: 0  duplicate: 1  rejected: 0\n"


def test_stdin_and_json_summary(tmp_path: Path) -> None:
    result = run(tmp_path, "--json", "-", input=f"{GOOD}\n{BAD}\n")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["accepted"] == 1 and summary["rejected"] == 1
    assert summary["rejections"] == [
        {"line": 2, "reason": "terms.currency: unknown currency 'XYZ'", "event_id": None}
    ]
    assert summary["projections"].startswith("not updated")


def test_data_dir_flag_wins_over_environment(tmp_path: Path) -> None:
    result = run(tmp_path, "--data-dir", str(tmp_path / "flag"), str(write_file(tmp_path, [GOOD])))
    assert result.exit_code == 0
    assert (tmp_path / "flag" / "ledger.sqlite").is_file()


# `mrr ingest` on Kafka (and a missing topic, an unreachable broker) is tested against a real
# broker in tests/streams/test_cli_backends.py.


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert run(tmp_path, str(tmp_path / "nope.jsonl")).exit_code == 2


def test_projection_hook_runs_when_bootstrap_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    async def project_pending(config: Any) -> None:
        seen.append(config)

    monkeypatch.setitem(
        sys.modules, "streams.bootstrap", types.SimpleNamespace(project_pending=project_pending)
    )
    result = run(tmp_path, str(write_file(tmp_path, [GOOD])))
    assert result.exit_code == 0
    assert len(seen) == 1 and seen[0].data_dir == str(tmp_path / "data")
    assert "projections: updated" in result.stderr
    assert "projections: skipped" in run(tmp_path, "--no-project", "-", input=GOOD).stderr


def test_registered_in_mrr() -> None:
    from streams.cli.main import cli

    result = CliRunner().invoke(cli, ["ingest", "--help"])
    assert result.exit_code == 0 and "FILE|-" in result.output
