"""The benchmark suite (`make bench`): every path measured in one run, ledger size by ledger size,
against the ceilings measured in the same run.

    python -m bench suite --sizes 100k,1M,5M --runs 3 [--readme]

It starts a throwaway Kafka broker and PostgreSQL server (`tests.stack`; or uses
`MRR_KAFKA_BOOTSTRAP` / `MRR_DATABASE_URL`), and for each ledger size N:

1. generates the demo business scaled to N events (`recorded_at` = arrival) and times the pure
   engine over it on one core (`bench.engine`);
2. publishes it to a fresh 12-partition topic, replays it into a fresh database once (that
   fills the live schema), then `--runs` times: the read ceiling (raw `getmany` + msgspec
   decode), `mrr replay` (verified and swapped in) and a raw binary COPY of its rows
   (`bench.replay`);
3. on those projections: report latency (24-month bridge, KPIs, cohorts; `bench.reports`), the
   batch-SQL baseline (`bench.baseline`) and one late event restated (`bench.late_event`);
4. if N ≤ `--worker-max-events`: one `mrr worker` consumes the same topic into another fresh
   database (sustained events/s, peak RSS) and the Faust ceiling is measured on it
   (`bench.worker`); after the last such size, the worker's latency at each `--rates` offered
   load for `--duration` s.

Medians of `--runs` are reported (the worker's backlog run is one run per size). The Markdown
table and the JSON go to `bench/results/<date>.md` and `.json`; `--readme` also puts the table
in README.md. The servers share this machine's cores with what they measure, as they would on
a small production box. 100k and 1M with 3 runs took 30 minutes on a 2-core VM; each 5M
replay takes about 7 minutes there (docs/performance.md §1).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from bench import baseline, engine, faust_ceiling, late_event, reports, results
from bench.machine import describe
from bench.replay import measure_ceiling, measure_copy, run_replay
from bench.stack import log
from bench.worker import (PARTITIONS, demo_arrivals, fresh_database, measure_latency,
                          measure_throughput, publish_backlog, servers, worker_log_notes)
from ledger.demo import Arrival
from ledger.kafka.topics import ensure_topics
from projections.engine import MrrSettings
from projections.migrate import upgrade
from projections.store import asyncpg_dsn

ROOT = Path(__file__).resolve().parent.parent


def parse_size(text: str) -> int:
    """'100k' -> 100000, '1M' -> 1000000, '2500' -> 2500."""
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor > 1 else text
    try:
        value = round(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100k, 1M, 250000)") from None
    if value < 1_000:
        raise argparse.ArgumentTypeError(f"size {text!r}: at least 1k events")
    return value


def parse_sizes(text: str) -> list[int]:
    """'1M,100k' -> [100000, 1000000]: distinct sizes, ascending."""
    return sorted({parse_size(part) for part in text.split(",") if part.strip()})


def parse_rates(text: str) -> list[float]:
    """'1000,5000' -> [1000.0, 5000.0]; '' -> [] (no latency phase)."""
    return [float(part) for part in text.split(",") if part.strip()]


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def measure_engine(arrivals: Sequence[Arrival], runs: int) -> dict[str, Any]:
    """The pure engine over `arrivals` grouped per customer, `runs` times on one core (median)."""
    by_customer, fx = engine.group(arrivals)
    count = sum(len(events) for events in by_customer.values())
    rates = []
    for _ in range(runs):
        seconds, _ = engine.run(by_customer, fx, MrrSettings())
        rates.append(count / seconds)
    return {"events": count, "customers": len(by_customer),
            "events_per_second": round(statistics.median(rates)), "all": [round(r) for r in rates]}


async def measure_replays(bootstrap: str, url: str, topic: str, ends: dict[int, int], runs: int) -> dict[str, Any]:
    """One untimed replay into the empty database, then `runs` times: the read ceiling, a replay
    and a raw COPY of its rows. Medians; the replay's phases are those of its median run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env.update(MRR_KAFKA_BOOTSTRAP=bootstrap, MRR_DATABASE_URL=url, MRR_LEDGER_TOPIC=topic)
    log("  first replay (fills the live schema the measured ones replace) ...")
    run_replay(env, [])
    ceilings, replays, copies = [], [], []
    for i in range(runs):
        ceilings.append(await measure_ceiling(bootstrap, topic, ends))
        replays.append(run_replay(env, []))
        copies.append(await measure_copy(url))
        log(f"  run {i + 1}/{runs}: ceiling {ceilings[-1]['events_per_second']:,}/s, replay "
            f"{replays[-1]['events_per_second']:,}/s {replays[-1]['phases']}, raw COPY {copies[-1]['seconds']} s")
    replay = dict(_median_run(replays, "events_per_second"))
    replay["peak_rss_mib"] = max(r["peak_rss_mib"] for r in replays)
    replay["all"] = [r["events_per_second"] for r in replays]
    ratios = [r["events_per_second"] / c["events_per_second"] for r, c in zip(replays, ceilings)]
    return {
        "ceiling": {"events_per_second": round(statistics.median(c["events_per_second"] for c in ceilings)),
                    "all": [c["events_per_second"] for c in ceilings]},
        "replay": replay,
        "copy": {"seconds": round(statistics.median(c["seconds"] for c in copies), 2),
                 "rows_mib": copies[0]["rows_mib"], "all": [c["seconds"] for c in copies]},
        "ratio": round(statistics.median(ratios), 4),
    }


async def measure_on_projections(url: str, bootstrap: str, runs: int, currency: str) -> dict[str, Any]:
    """Report latency, the batch-SQL baseline and late events on the replayed projections."""
    log("  report latency ...")
    report_times = await reports.measure(url, currency, repeats=max(5, runs))
    cli_seconds = reports.cli_bridge_seconds(url, bootstrap)
    from projections.store import ProjectionStore

    store = ProjectionStore.from_url(url)
    try:
        rows = await store.read(reports.bridge_rows, reports.now_scope())
    finally:
        await store.close()
    log("  batch-SQL baseline ...")
    base = await baseline.measure(asyncpg_dsn(url), {r.period.label: r.opening_mrr for r in rows}, runs)
    log("  one late event at a time ...")
    late = await late_event.measure(url, currency, PARTITIONS, count=max(5, runs))
    return {"reports": report_times, "cli_bridge_seconds": cli_seconds, "baseline": base, "late_event": late}


async def measure_worker(bootstrap: str, server_url: str, topic: str, total: int, publish_seconds: float,
                         live: Sequence[Arrival], args: argparse.Namespace) -> dict[str, Any]:
    """A worker over the topic's backlog, the Faust ceiling, then (if `live`) latency at load."""
    log_dir = Path(tempfile.mkdtemp(prefix="mrr-bench-suite-"))
    async with fresh_database(server_url) as url:
        await upgrade(url)
        throughput, worker = await measure_throughput(
            bootstrap, url, topic, total, publish_seconds, log_dir, [], timeout=max(600.0, total / 50))
        peak = worker.peak_rss_mib()
        log(f"  worker: {throughput.rate_without_startup:,.0f} events/s, peak RSS {peak} MiB; Faust ceiling ...")
        try:
            ceiling = faust_ceiling.measure(bootstrap, topic, total)
            latency = []
            offset = 0
            for rate in args.rates if live else []:
                count = int(rate * args.duration) + 1
                log(f"  latency at {rate:,.0f} events/s offered for {args.duration:.0f} s ...")
                measured = await measure_latency(bootstrap, url, topic, live[offset: offset + count], worker,
                                                 rate, args.duration, 0.02, 0.05, args.drain_timeout)
                measured.timeline = None
                latency.append(measured.__dict__)
                offset += count
        finally:
            code = stop(worker)
    notes = worker_log_notes(worker.log)
    return {"throughput": throughput.__dict__, "faust_ceiling": ceiling, "peak_rss_mib": peak,
            "exit_status": code, "warnings_errors": notes.get("warnings_errors"), "latency": latency}


def stop(worker: Any, timeout: float = 30.0) -> int | str:
    """Stop the worker group; one still busy after `timeout` s (a large restatement) is killed,
    and the measures taken so far are kept."""
    try:
        return worker.terminate()
    except subprocess.TimeoutExpired:
        for member in worker.members:
            member.proc.kill()
            member.proc.wait()
        return f"killed: still running {timeout:.0f} s after SIGTERM"


async def measure_size(entry: dict[str, Any], live_total: int, with_worker: bool, bootstrap: str, server_url: str,
                       args: argparse.Namespace, currency: str) -> list[dict[str, Any]]:
    """Every measure on a ledger of `entry["events"]` events, into `entry` as they are taken (a
    failure keeps the ones before it); returns the worker's latency rows."""
    size = entry["events"]
    started = time.perf_counter()
    arrivals = demo_arrivals(size + live_total, args.seed, args.months)
    live = arrivals[size:]
    entry["generate_seconds"] = round(time.perf_counter() - started, 1)
    log(f"  generated in {entry['generate_seconds']} s; engine ...")
    entry["engine"] = measure_engine(arrivals[:size], args.runs)
    entry["customers"] = entry["engine"]["customers"]
    topic = "bench-suite-" + uuid.uuid4().hex[:8]
    await ensure_topics(bootstrap, topic, partitions=PARTITIONS)
    publish_seconds, total = await publish_backlog(bootstrap, topic, arrivals[:size])
    entry["publish"] = {"seconds": round(publish_seconds, 1), "events_per_second": round(total / publish_seconds)}
    del arrivals  # the replays below need the memory more than this process does
    from tests.worker.support import end_offsets

    async with fresh_database(server_url) as url:
        await upgrade(url)
        entry.update(await measure_replays(bootstrap, url, topic, await end_offsets(bootstrap, topic), args.runs))
        entry.update(await measure_on_projections(url, bootstrap, args.runs, currency))
    latency: list[dict[str, Any]] = []
    if with_worker:
        log("  worker over the same topic ...")
        entry["worker"] = await measure_worker(bootstrap, server_url, topic, total, publish_seconds, live, args)
        latency = entry["worker"].pop("latency")
    return latency


async def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Measure every size in turn; the report so far is written after each one."""
    from streams.config import load_config

    currency = load_config({}).reporting_currency
    worker_sizes = [n for n in args.sizes if n <= args.worker_max_events]
    latency_size = worker_sizes[-1] if worker_sizes and args.rates else None
    live_total = sum(int(rate * args.duration) + 1 for rate in args.rates)
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "command": command, "machine": describe().replace(" (1 used)", ""),
        "runs": args.runs, "sizes": args.sizes, "by_size": [], "latency": [], "latency_after": latency_size}
    with servers() as (bootstrap, server_url, origin):
        report["servers"] = origin
        for size in args.sizes:
            log(f"ledger of {size:,} events:")
            entry: dict[str, Any] = {"events": size}
            try:
                latency = await measure_size(entry, live_total if size == latency_size else 0,
                                             size in worker_sizes, bootstrap, server_url, args, currency)
            except Exception as exc:  # e.g. a replay killed for memory: keep the other sizes
                log(f"  {size:,} events failed: {exc}")
                entry["error"], latency = f"{type(exc).__name__}: {exc}"[:1000], []
            report["by_size"].append(entry)
            report["latency"] = latency or report["latency"]
            results.write(report, args.out)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("100k,1M,5M"),
                        help="ledger sizes, comma-separated (default 100k,1M,5M)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measure; medians reported (default 3)")
    parser.add_argument("--worker-max-events", type=parse_size, default=parse_size("1M"),
                        help="run the worker on ledgers up to this size (default 1M; 5M takes ~15 min)")
    parser.add_argument("--rates", type=parse_rates, default=parse_rates("1000,5000,20000"),
                        help="offered events/s for the worker's latency (default 1000,5000,20000; '' skips)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per offered load (default 20)")
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                        help="directory for <date>.md and <date>.json (default bench/results)")
    parser.add_argument("--readme", action="store_true", help="also put the table in README.md")
    args = parser.parse_args(argv)
    args.runs = max(1, args.runs)
    given = sys.argv[1:] if argv is None else list(argv)
    report = asyncio.run(run(args, " ".join(["python -m bench suite", *given])))
    markdown = results.write(report, args.out)
    print(results.render(report))
    log(f"wrote {markdown} and {markdown.with_suffix('.json')}")
    if args.readme:
        results.update_readme(ROOT / "README.md", results.render(report))
        log("updated README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
