"""The alert rules of deploy/prometheus/rules: `promtool check rules` and `promtool test rules`
(Debian's promtool, as `make provision` installs it: missing promtool fails, never skips), plus
the conventions every alert keeps: a `for`, a severity, summary/description, a runbook anchor
that exists in docs/alerts.md, metric names the project really exports, and a promtool test
case where it fires and one where it must not."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streams.worker.metrics import WorkerMetrics

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "deploy/prometheus/rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yml"))
ALERTS_DOC = REPO / "docs/alerts.md"
SEVERITIES = {"critical", "warning"}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: run `make provision` (Debian's prometheus package)"
    return path


def alerts() -> list[dict]:
    return [rule for path in RULE_FILES
            for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_there_are_rule_and_test_files() -> None:
    assert RULE_FILES and TEST_FILES
    assert len(alerts()) >= 8


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", *map(str, RULE_FILES)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    result = subprocess.run([promtool(), "test", "rules", str(test_file)],
                            cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheus_config_loads_the_rules() -> None:
    config_path = REPO / "deploy/prometheus/prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    loaded = {p for pattern in config["rule_files"] for p in config_path.parent.glob(pattern)}
    assert set(RULE_FILES) <= loaded


def test_every_alert_follows_the_conventions() -> None:
    headings = {anchor(h) for h in re.findall(r"^#{2,4} (.+)$", ALERTS_DOC.read_text(), re.M)}
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for alert in alerts():
        name = alert["alert"]
        assert re.fullmatch(r"Mrr[A-Z]\w+", name), name
        assert alert.get("for"), f"{name}: no `for`"
        assert alert.get("labels", {}).get("severity") in SEVERITIES, name
        notes = alert.get("annotations", {})
        assert notes.get("summary") and notes.get("description"), name
        assert "First " in notes["description"], f"{name}: no first thing to check"
        runbook = notes.get("runbook_url", "")
        assert runbook == f"docs/alerts.md#{name.lower()}", f"{name}: runbook {runbook!r}"
        assert name.lower() in headings, f"{name}: no section in docs/alerts.md"


def exported_metric_names() -> set[str]:
    """Worker metrics from a real registry; business gauges from docs/metrics.md (tested
    against the collector by test_verify_gauges.py)."""
    names = {m.name for m in WorkerMetrics().registry.collect()}
    names |= set(re.findall(r"^\| `(mrr_\w+)`", (REPO / "docs/metrics.md").read_text(), re.M))
    return names


def test_rules_use_only_exported_metrics() -> None:
    exported = exported_metric_names() | {"up"}
    for alert in alerts():
        expr = re.sub(r'"[^"]*"', '""', alert["expr"])  # no label values
        for name in set(re.findall(r"\b(mrr_\w+|up)\b(?!\s*\()", expr)):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert name in exported or base in exported, \
                f"{alert['alert']}: {name} is not exported (docs/metrics.md)"


def test_no_metric_is_left_pending() -> None:
    # mrr_verify_differences was once reserved here before `mrr verify` existed; nothing is now.
    assert "## Pending metrics" not in ALERTS_DOC.read_text()
    for path in RULE_FILES:
        assert "PENDING" not in path.read_text(), path.name


def test_every_alert_has_a_firing_and_a_silent_test_case() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        spec = yaml.safe_load(path.read_text())
        tested = {(RULES_DIR / "tests" / f).resolve() for f in spec["rule_files"]}
        assert tested <= set(RULE_FILES), path.name
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"
