"""The benchmark suite's results: the Markdown table, the JSON file and the README's copy.

`render(report)` turns the suite's report (see `bench.suite`) into Markdown: the targets
against the largest ledger measured, every measure by ledger size, and the worker's latency at
each offered load. `write(report, directory)` writes `<date>.md` and `<date>.json` there;
`update_readme(path, table)` replaces what stands between the README's bench markers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

TARGETS = {
    "engine_events_per_second": 500_000,
    "worker_events_per_second": 30_000,
    "p99_seconds_at_5000": 0.5,
    "replay_ceiling_ratio": 0.60,
    "late_event_ms": 100,
}


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value != value:  # NaN
        return "–"
    if isinstance(value, float) and abs(value) >= 100:
        value = round(value)
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value:,.1f}{unit}"


def _size(events: int) -> str:
    if events >= 1_000_000 and events % 100_000 == 0:
        return f"{events / 1_000_000:g}M"
    if events >= 1_000 and events % 1_000 == 0:
        return f"{events // 1_000}k"
    return f"{events:,}"


def _get(entry: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(entry, dict) or entry.get(key) is None:
            return None
        entry = entry[key]
    return entry


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("customers", lambda s: _n(s["customers"])),
    ("engine, events/s on one core", lambda s: _n(_get(s, "engine", "events_per_second"))),
    ("publish to Kafka, events/s", lambda s: _n(_get(s, "publish", "events_per_second"))),
    ("ceiling: raw `getmany` + msgspec decode, events/s", lambda s: _n(_get(s, "ceiling", "events_per_second"))),
    ("`mrr replay` (verified, swapped in), events/s", lambda s: _n(_get(s, "replay", "events_per_second"))),
    ("replay / ceiling", lambda s: f"{s['ratio']:.1%}" if s.get("ratio") is not None else "–"),
    ("replay phases, s", lambda s: ", ".join(f"{k} {v}" for k, v in (_get(s, "replay", "phases") or {}).items()) or "–"),
    ("raw binary COPY of the replay's rows, s", lambda s: _n(_get(s, "copy", "seconds"))),
    ("replay peak RSS (largest process), MiB", lambda s: _n(_get(s, "replay", "peak_rss_mib"))),
    ("worker, events/s (backlog, startup excluded)", lambda s: _n(_get(s, "worker", "throughput", "rate_without_startup"))),
    ("Faust ceiling (no-op agent), events/s", lambda s: _n(_get(s, "worker", "faust_ceiling", "rate"))),
    ("worker peak RSS, MiB", lambda s: _n(_get(s, "worker", "peak_rss_mib"))),
    ("report: bridge, 24 months, ms", lambda s: _n(_get(s, "reports", "bridge, 24 months", "ms"))),
    ("report: KPIs, 24 months, ms", lambda s: _n(_get(s, "reports", "KPIs, 24 months", "ms"))),
    ("report: cohorts, 24 months, ms", lambda s: _n(_get(s, "reports", "cohorts, 24 monthly cohorts", "ms"))),
    ("`mrr report bridge --json` process, s", lambda s: _n(s.get("cli_bridge_seconds"))),
    ("one late event: restated + bridge read, ms", lambda s: _late(s)),
    ("batch-SQL baseline (dbt MRR method), s", lambda s: _baseline(s)),
    ("replay time / baseline time", lambda s: _times(_get(s, "replay", "seconds"), _get(s, "baseline", "seconds"))),
    ("late event / baseline time", lambda s: _times(_ms(_get(s, "late_event", "total_ms")), _get(s, "baseline", "seconds"))),
]


def _ms(value: float | None) -> float | None:
    return None if value is None else value / 1000


def _times(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "–"
    return f"{ours / theirs:.2g}×"


def _late(size: dict[str, Any]) -> str:
    late = size.get("late_event")
    if not late:
        return "–"
    return (f"{late['total_ms']:,.1f} (of which the restatement {late['apply_ms']:,.1f} and the bridge read "
            f"{late['report_ms']:,.1f}, each its own median; reflected {late['reflected']})")


def _baseline(size: dict[str, Any]) -> str:
    base = size.get("baseline")
    if not base:
        return "–"
    return f"{base['seconds']:,.2f} ({base['periods']:,} periods → {base['rows']:,} customer-months; {base['agreement']})"


def target_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, result, target, met) against the largest ledger that measured each."""
    sizes = report["by_size"]

    def largest(*path: str) -> tuple[Any, int | None]:
        for size in reversed(sizes):
            value = _get(size, *path)  # a failed size keeps what it measured before failing
            if value is not None:
                return value, size["events"]
        return None, None

    def row(name: str, value: Any, events: int | None, shown: str, target: str, met: bool) -> tuple[str, str, str, str]:
        where = f" ({_size(events)} ledger)" if events else ""
        if value is None:
            return name, "not measured", target, "–"
        return name + where, shown, target, "met" if met else "**not met**"

    engine, e1 = largest("engine", "events_per_second")
    worker, e2 = largest("worker", "throughput", "rate_without_startup")
    ratio, e3 = largest("ratio")
    late, e4 = largest("late_event", "total_ms")
    p99 = next((load["p99"] for load in report.get("latency", []) if load["offered_rate"] == 5000), None)
    return [
        row("engine events/s, one core", engine, e1, _n(engine), "≥ 500,000",
            engine is not None and engine >= TARGETS["engine_events_per_second"]),
        row("worker events/s, sustained", worker, e2, _n(worker and round(worker)), "≥ 30,000",
            worker is not None and worker >= TARGETS["worker_events_per_second"]),
        row("p99 recorded_at → committed at 5,000 events/s", p99, None, _n(p99, " s"), "< 0.5 s",
            p99 is not None and p99 < TARGETS["p99_seconds_at_5000"]),
        row("replay / ceiling", ratio, e3, f"{ratio:.1%}" if ratio is not None else "", "≥ 60 %",
            ratio is not None and ratio >= TARGETS["replay_ceiling_ratio"]),
        row("one late event restated and in the bridge", late, e4, _n(late, " ms"), "< 100 ms",
            late is not None and late < TARGETS["late_event_ms"]),
    ]


def _cell_or_failed(cell: Any, size: dict[str, Any]) -> str:
    """A row's cell for one size; "failed" where a failed size has no value for it."""
    try:
        return str(cell(size))
    except (KeyError, TypeError):
        if "error" not in size:
            raise
        return "failed"


def render(report: dict[str, Any]) -> str:
    """The Markdown of one suite run."""
    sizes = report["by_size"]
    lines = [f"Measured {report['date']} with `{report['command']}` (medians of {report['runs']} runs"
             f" unless a row says otherwise), {report['machine']}. {report['servers']}.", ""]
    lines += ["| target | result | goal | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in target_rows(report)]
    lines += ["", "| ledger | " + " | ".join(_size(s["events"]) + " events" for s in sizes) + " |",
              "|---|" + "---|" * len(sizes)]
    lines += [f"| {name} | " + " | ".join(_cell_or_failed(cell, s) for s in sizes) + " |" for name, cell in ROWS]
    lines += [f"\n{_size(s['events'])} events failed: {s['error'][:300]}" for s in sizes if "error" in s]
    if report.get("latency"):
        lat = report["latency"]
        lines += ["", f"Worker latency, `recorded_at` → committed projection, after the worker caught up"
                  f" with the {_size(report['latency_after'])} ledger; {lat[0]['duration']:.0f} s per load,"
                  f" commits polled every {lat[0]['poll_seconds'] * 1000:.0f} ms (values are upper bounds"
                  " by up to one poll):", "",
                  "| offered events/s | achieved | p50 s | p99 s | max s | backlog at stop | drain s |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['offered_rate']:,.0f} | {r['achieved_rate']:,.0f} | {r['p50']:.3f} | {r['p99']:.3f}"
                  f" | {r['max']:.3f} | {r['backlog_at_stop']:,} | {r['drain_seconds']:.1f}"
                  f"{'' if r['caught_up'] else ' (timeout)'} |" for r in lat]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], directory: Path) -> Path:
    """Write `<date>.md` (heading + table) and `<date>.json`; return the Markdown file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / f"{report['date']}.md"
    markdown.write_text(f"# Benchmark results, {report['date']}\n\n{render(report)}")
    (directory / f"{report['date']}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return markdown


def update_readme(readme: Path, table: str) -> None:
    """Put `table` between the README's bench markers (which must be there)."""
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no {BEGIN} … {END} markers")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", text, count=1))
