"""Worker benchmark: real `mrr worker` processes (Kafka -> PostgreSQL), throughput and latency.

    python -m bench worker --events 200000 --rate 2000 --low-rate 500 --duration 30

1. Throughput. About N demo events (`ledger.demo.generate_business`, each with
   `recorded_at` = its arrival) are published to a fresh 12-partition ledger topic
   (`ensure_topics`), then ONE `mrr worker` subprocess (`--workers N`: N of them in one consumer
   group, splitting the partitions) starts on a fresh migrated database and
   the harness polls `SUM(projection_offsets.next_offset)` every 0.1 s until it reaches the
   topic's end offsets. Reported: events/s from the worker's spawn (startup included) and from
   the first observed commit (startup excluded).
   Then the Faust ceiling (`bench.faust_ceiling`): a no-op agent of the worker's own Faust app
   settings counts the same topic's events (own consumer group; the caught-up worker idles),
   so the worker's rate can be read against what Faust alone delivers on this machine.
2. Latency at offered load. With that worker caught up, the next demo events are appended
   through `KafkaLedgerWriter` (which stamps `recorded_at` = now) at a steady offered rate, in
   small `append_many` groups on a timer (every `--tick` s), for `--duration` s; first at
   `--rate`, then at `--low-rate` (0: skip). Every `--poll` s the harness reads
   `projection_offsets`; for each partition that advanced it reads `recorded_at` of the newly
   committed rows of `events` (by partition and offset) and takes observation time -
   recorded_at. The values are upper bounds: a commit happened at most one poll interval (plus
   the query time) before it was observed. After the sending stops the harness waits until
   everything sent is committed (the drain) and reports p50/p95/p99/max.

Kafka is `MRR_KAFKA_BOOTSTRAP` and PostgreSQL `MRR_DATABASE_URL` if set (a database of its own
is created there and dropped at the end), else throwaway servers from the test stack
(`tests.stack`: PostgreSQL with fsync and synchronous_commit off). Everything, broker included,
shares this machine's cores with the worker. Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from bench import faust_ceiling, stack
from bench.machine import describe
from bench.stats import percentile
from ledger.demo import Arrival, customers_for_events, generate_business
from ledger.demo.calendar import shift_month
from ledger.kafka.topics import ensure_topics
from ledger.kafka.writer import KafkaLedgerWriter
from projections.migrate import upgrade
from projections.store import asyncpg_dsn

PARTITIONS = 12
THROUGHPUT_POLL_SECONDS = 0.1


# --------------------------------------------------------------------------- servers, database


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str, str]]:
    """(bootstrap, postgres server URL, where they come from); throwaway servers are stopped."""
    with stack.kafka() as (bootstrap, broker), stack.postgres() as (url, pg):
        yield bootstrap, url, "; ".join([
            "Kafka: throwaway KRaft broker" if broker else f"Kafka: MRR_KAFKA_BOOTSTRAP={bootstrap}",
            "PostgreSQL: throwaway (fsync/synchronous_commit off)" if pg
            else "PostgreSQL: MRR_DATABASE_URL",
        ])


@contextlib.asynccontextmanager
async def fresh_database(server_url: str):
    """A new database on the server of `server_url` (SQLAlchemy URL), dropped afterwards."""
    import asyncpg

    name = "bench_worker_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --------------------------------------------------------------------------- events


def demo_arrivals(total: int, seed: int, months: int) -> list[Arrival]:
    """At most `total` demo events in arrival order. The business ends on the 1st of last
    month, so every arrival (late ones come days after the end) lies in the past: events
    appended now, stamped `recorded_at` = now, are then later than everything already in the
    ledger, as live events are. (A business ending in the future made every live event look
    backdated to the customers whose stored history was recorded "later".)"""
    today = dt.date.today()
    year, month = shift_month(today.year, today.month, -(months + 1))
    return generate_business(seed=seed, customers=customers_for_events(total + total // 8, months),
                             months=months, start=dt.date(year, month, 1))[:total]


# --------------------------------------------------------------------------- polling


class OffsetPoller:
    """Reads `projection_offsets` of the benchmark database over one asyncpg connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> OffsetPoller:
        import asyncpg

        return cls(await asyncpg.connect(asyncpg_dsn(url)))

    async def offsets(self) -> dict[int, int]:
        rows = await self.conn.fetch("SELECT partition, next_offset FROM projection_offsets")
        return {r["partition"]: r["next_offset"] for r in rows}

    async def recorded_between(self, ranges: Sequence[tuple[int, int, int]]) -> list[dt.datetime]:
        """`recorded_at` of the rows of `events` at offsets [lo, hi) of each (partition, lo, hi)."""
        if not ranges:
            return []
        parts, los, his = zip(*ranges)
        rows = await self.conn.fetch(
            'SELECT e.recorded_at FROM events e JOIN unnest($1::int[], $2::bigint[], $3::bigint[])'
            ' AS r(p, lo, hi) ON e.partition = r.p AND e."offset" >= r.lo AND e."offset" < r.hi',
            list(parts), list(los), list(his))
        return [r["recorded_at"] for r in rows]

    async def close(self) -> None:
        await self.conn.close()


# --------------------------------------------------------------------------- phase 1: throughput


@dataclass
class Throughput:
    events: int
    batch_size: int | None
    publish_seconds: float
    startup_seconds: float
    """Spawn of `mrr worker` to the first commit observed."""
    first_commit_events: int
    total_seconds: float
    """Spawn to all offsets committed."""
    rate_with_startup: float
    rate_without_startup: float


class WorkerGroup:
    """`count` `mrr worker` subprocesses of one consumer group, handled as one worker."""

    def __init__(self, log_dir: Path, bootstrap: str, url: str, topic: str, args: Sequence[str],
                 count: int) -> None:
        from tests.worker.support import start_worker

        names = ["bench"] if count == 1 else [f"bench-{i}" for i in range(count)]
        self.members = [start_worker(log_dir, bootstrap, url, topic, name=n, args=args) for n in names]
        self.log = self.members[0].log

    def alive(self) -> bool:
        return all(w.alive() for w in self.members)

    def failure(self) -> str:
        """Exit status and log tail of the first member that is not alive."""
        dead = next((w for w in self.members if not w.alive()), self.members[0])
        return f"mrr worker exited with {dead.proc.returncode}:\n{dead.tail()}"

    def tail(self) -> str:
        return "\n".join(w.tail() for w in self.members)

    def peak_rss_mib(self) -> int | None:
        """The largest member's peak resident set so far (VmHWM of /proc), None if unreadable."""
        from streams.process_memory import peak_rss_mib

        peaks = [peak for member in self.members if (peak := peak_rss_mib(member.proc.pid)) is not None]
        return max(peaks) if peaks else None

    def terminate(self) -> int:
        """Stop every member; the worst exit status."""
        return max(w.terminate() for w in self.members)


async def publish_backlog(bootstrap: str, topic: str, arrivals: Sequence[Arrival]) -> tuple[float, int]:
    """Publish `arrivals` (pipelined producer); (seconds it took, events now in the topic)."""
    from tests.worker.support import end_offsets, publish_arrivals

    started = time.perf_counter()
    await publish_arrivals(bootstrap, topic, arrivals)
    seconds = time.perf_counter() - started
    return seconds, sum((await end_offsets(bootstrap, topic)).values())


async def measure_throughput(bootstrap: str, url: str, topic: str, total: int, publish_seconds: float,
                             log_dir: Path, worker_args: Sequence[str], timeout: float,
                             workers: int = 1):
    """Start the worker(s) on the `total` events already in `topic`; time them to the end.
    Returns the `Throughput` and the still-running `WorkerGroup`."""
    print(f"{total:,} events in {topic} ({PARTITIONS} partitions); starting mrr worker "
          f"{' '.join(worker_args)}", flush=True, file=sys.stderr)

    poller = await OffsetPoller.connect(url)
    worker = WorkerGroup(log_dir, bootstrap, url, topic, worker_args, workers)
    spawned = time.perf_counter()
    first_at = first_events = None
    deadline = spawned + timeout
    last_report = spawned
    try:
        while True:
            if not worker.alive():
                raise RuntimeError(worker.failure())
            done = sum((await poller.offsets()).values())
            now = time.perf_counter()
            if done and first_at is None:
                first_at, first_events = now, done
            if done >= total:
                break
            if now > deadline:
                raise RuntimeError(f"not caught up after {timeout:.0f} s: {done:,}/{total:,}\n"
                                   f"{worker.tail()}")
            if now - last_report >= 10:
                print(f"  {now - spawned:5.0f} s: {done:,}/{total:,} committed", flush=True, file=sys.stderr)
                last_report = now
            await asyncio.sleep(THROUGHPUT_POLL_SECONDS)
    except BaseException:
        worker.terminate()
        raise
    finally:
        await poller.close()
    elapsed = now - spawned
    steady = now - first_at
    result = Throughput(
        events=total, batch_size=None, publish_seconds=publish_seconds,
        startup_seconds=first_at - spawned, first_commit_events=first_events,
        total_seconds=elapsed, rate_with_startup=total / elapsed,
        rate_without_startup=(total - first_events) / steady if steady > 0 else float("nan"))
    return result, worker


# --------------------------------------------------------------------------- phase 2: latency


@dataclass
class Latency:
    offered_rate: float
    duration: float
    sent: int
    achieved_rate: float
    """Events sent / sending time (the sender may lag its own timer on a busy machine)."""
    measured: int
    """Latencies measured (rows found in `events`; duplicates or dead letters have none)."""
    poll_seconds: float
    mean_poll_interval: float
    backlog_at_stop: int
    """Events sent but not committed when the sending stopped."""
    drain_seconds: float
    """From the sending's stop to everything committed."""
    p50: float = float("nan")
    p95: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")
    p50_first_quarter: float = float("nan")
    p50_last_quarter: float = float("nan")
    """p50 of the events recorded in the first and last quarter of the sending: growth means the
    worker does not keep up."""
    caught_up: bool = True
    timeline: list[tuple[int, int, float, float]] | None = None
    """Per second of sending (by recorded_at): (second, events, p50, max) — JSON only."""


async def measure_latency(bootstrap: str, url: str, topic: str, arrivals: Sequence[Arrival],
                          worker: Any, rate: float, duration: float, tick: float, poll: float,
                          drain_timeout: float) -> Latency:
    events = [event for _, event in arrivals]
    poller = await OffsetPoller.connect(url)
    committed = await poller.offsets()
    sent_ends: dict[int, int] = {}
    latencies: list[tuple[dt.datetime, float]] = []  # (recorded_at, seconds)
    sending = True
    poll_times: list[float] = []

    async def send() -> tuple[int, float, float]:
        nonlocal sending
        count = 0
        async with KafkaLedgerWriter(bootstrap, topic) as writer:
            t0 = time.perf_counter()
            k = 0
            while count < len(events):
                k += 1
                due = t0 + k * tick
                if due - t0 > duration:
                    break
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                target = min(len(events), round(rate * (time.perf_counter() - t0)))
                if target > count:
                    for result in await writer.append_many(events[count:target]):
                        sent_ends[result.partition] = max(sent_ends.get(result.partition, 0),
                                                          result.offset + 1)
                    count = target
            stopped = time.perf_counter()
        sending = False
        return count, stopped - t0, stopped

    async def observe() -> None:
        nonlocal committed
        while True:
            before = time.perf_counter()
            current = await poller.offsets()
            observed = dt.datetime.now(dt.UTC)
            poll_times.append(before)
            ranges = [(p, committed.get(p, 0), hi) for p, hi in current.items()
                      if hi > committed.get(p, 0)]
            for recorded in await poller.recorded_between(ranges):
                latencies.append((recorded, (observed - recorded).total_seconds()))
            committed = current
            if not sending and all(committed.get(p, 0) >= end for p, end in sent_ends.items()):
                return
            if not worker.alive():
                raise RuntimeError(worker.failure())
            await asyncio.sleep(max(0.0, poll - (time.perf_counter() - before)))

    observer = asyncio.create_task(observe())
    try:
        count, sending_seconds, stopped = await send()
        backlog = sum(max(0, end - committed.get(p, 0)) for p, end in sent_ends.items())
        print(f"  sent {count:,} events in {sending_seconds:.1f} s at {rate:,.0f}/s offered; "
              f"backlog {backlog:,}; draining ...", flush=True, file=sys.stderr)
        caught_up = True
        try:
            await asyncio.wait_for(asyncio.shield(observer), drain_timeout)
        except asyncio.TimeoutError:
            caught_up = False
        drained = time.perf_counter() - stopped
    finally:
        observer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await observer
        await poller.close()

    values = sorted(s for _, s in latencies)
    intervals = [b - a for a, b in zip(poll_times, poll_times[1:])]
    result = Latency(
        offered_rate=rate, duration=duration, sent=count, achieved_rate=count / sending_seconds,
        measured=len(values), poll_seconds=poll,
        mean_poll_interval=sum(intervals) / len(intervals) if intervals else float("nan"),
        backlog_at_stop=backlog, drain_seconds=drained, caught_up=caught_up)
    if values:
        result.p50, result.p95, result.p99, result.max = (
            percentile(values, 50), percentile(values, 95), percentile(values, 99), values[-1])
        by_time = sorted(latencies)
        first, last = by_time[0][0], by_time[-1][0]
        span = (last - first) / 4
        early = sorted(s for r, s in by_time if r <= first + span)
        late = sorted(s for r, s in by_time if r >= last - span)
        result.p50_first_quarter, result.p50_last_quarter = percentile(early, 50), percentile(late, 50)
        buckets: dict[int, list[float]] = {}
        for recorded, seconds in by_time:
            buckets.setdefault(int((recorded - first).total_seconds()), []).append(seconds)
        result.timeline = []
        for second, values_s in sorted(buckets.items()):
            values_s.sort()
            result.timeline.append((second, len(values_s), round(percentile(values_s, 50), 3),
                                    round(values_s[-1], 3)))
    return result


# --------------------------------------------------------------------------- worker log


def worker_log_notes(log: Path) -> dict[str, Any]:
    """Warnings/errors counted by logger line and the last pipeline summary of the worker's log."""
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return {"log": str(log), "error": str(exc)}
    lines = text.splitlines()
    problems = [ln for ln in lines if re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b", ln)]
    summaries = [ln for ln in lines if "projected " in ln and " batches;" in ln]
    return {"log": str(log), "lines": len(lines), "warnings_errors": len(problems),
            "first_problems": problems[:8], "last_summary": summaries[-1] if summaries else None}


# --------------------------------------------------------------------------- output


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 150)
    t = report["throughput"]
    workers = report["workers"]
    table = Table(title=f"mrr worker throughput ({t['events']:,} events, 12 partitions, "
                  f"{'one worker' if workers == 1 else f'{workers} workers in one group'})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("publish (pipelined producer)", f"{t['publish_seconds']:.1f} s")
    table.add_row("spawn -> first commit", f"{t['startup_seconds']:.1f} s "
                  f"({t['first_commit_events']:,} events in it)")
    table.add_row("spawn -> all committed", f"{t['total_seconds']:.1f} s")
    table.add_row("events/s incl. startup", f"{t['rate_with_startup']:,.0f}")
    table.add_row("events/s excl. startup", f"{t['rate_without_startup']:,.0f}")
    ceiling = report["faust_ceiling"]
    table.add_row("Faust ceiling: no-op agent, same app settings and topic",
                  f"{ceiling['rate']:,.0f} events/s")
    table.add_row("worker / Faust ceiling", f"{t['rate_without_startup'] / ceiling['rate']:.0%}")
    console.print(table)

    if report["latency"]:
        poll = report["latency"][0]["poll_seconds"]
        lat = Table(title="recorded_at -> committed projection, seconds "
                    f"(polled every {poll * 1000:.0f} ms: values are upper bounds by up to one poll)")
        for column in ("offered/s", "achieved/s", "sent", "measured", "p50", "p95", "p99", "max",
                       "p50 first¼", "p50 last¼", "backlog at stop", "drain s"):
            lat.add_column(column, justify="right")
        for r in report["latency"]:
            lat.add_row(f"{r['offered_rate']:,.0f}", f"{r['achieved_rate']:,.0f}", f"{r['sent']:,}",
                        f"{r['measured']:,}", f"{r['p50']:.3f}", f"{r['p95']:.3f}",
                        f"{r['p99']:.3f}", f"{r['max']:.3f}", f"{r['p50_first_quarter']:.3f}",
                        f"{r['p50_last_quarter']:.3f}", f"{r['backlog_at_stop']:,}",
                        f"{r['drain_seconds']:.1f}" + ("" if r["caught_up"] else " (timeout)"))
        console.print(lat)
    notes = report["worker_log"]
    console.print(f"worker log: {notes.get('log')} — {notes.get('warnings_errors', '?')} "
                  f"warning/error lines; last summary: {notes.get('last_summary')}")
    for line in notes.get("first_problems", []):
        console.print(f"  [yellow]{line[:200]}[/yellow]", markup=True, highlight=False)
    console.print(f"worker: {report['worker_args'] or 'defaults'}; {report['servers']}")
    console.print(report["machine"], highlight=False)
    load = report["loadavg_1m"]
    console.print(f"1-min load average before {load['before']}, after {load['after']} "
                  "(other processes on the machine skew every number)", highlight=False)
    console.print(f"JSON: {Path(notes['log']).with_name('report.json')}", highlight=False)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    rates = [r for r in (args.rate, args.low_rate) if r and r > 0]
    live = [int(r * args.duration) + 1 for r in rates]
    started = time.perf_counter()
    arrivals = demo_arrivals(args.events + sum(live), args.seed, args.months)
    print(f"generated {len(arrivals):,} demo events in {time.perf_counter() - started:.1f} s "
          f"({args.events:,} for throughput, {sum(live):,} for the live phases)", flush=True, file=sys.stderr)
    backlog, rest = arrivals[: args.events], arrivals[args.events :]

    worker_args: list[str] = []
    if args.batch_size:
        worker_args += ["--batch-size", str(args.batch_size)]
    if args.batch_wait:
        worker_args += ["--batch-wait", str(args.batch_wait)]

    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="mrr-bench-worker-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    with servers() as (bootstrap, server_url, origin):
        async with fresh_database(server_url) as url:
            await upgrade(url)
            topic = "bench-ledger-" + uuid.uuid4().hex[:8]
            await ensure_topics(bootstrap, topic, partitions=PARTITIONS)
            publish_seconds, total = await publish_backlog(bootstrap, topic, backlog)
            throughput, worker = await measure_throughput(
                bootstrap, url, topic, total, publish_seconds, log_dir, worker_args,
                timeout=max(600.0, args.events / 50), workers=args.workers)
            throughput.batch_size = args.batch_size
            print(f"throughput: {throughput.rate_without_startup:,.0f} events/s excl. startup",
                  flush=True, file=sys.stderr)
            print("Faust ceiling: a no-op agent over the same topic (the worker idles) ...",
                  flush=True, file=sys.stderr)
            ceiling = faust_ceiling.measure(bootstrap, topic, len(backlog))
            latencies = []
            try:
                offset = 0
                for rate, count in zip(rates, live):
                    print(f"latency at {rate:,.0f} events/s offered for {args.duration:.0f} s ...",
                          flush=True, file=sys.stderr)
                    latencies.append(await measure_latency(
                        bootstrap, url, topic, rest[offset : offset + count], worker, rate,
                        args.duration, args.tick, args.poll, args.drain_timeout))
                    offset += count
            finally:
                code = worker.terminate()
    notes = worker_log_notes(worker.log)
    notes["exit_status"] = code
    return {
        "machine": describe().replace(" (1 used)", "")
        + "; broker, PostgreSQL, the worker and this harness all share them",
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "servers": origin,
        "worker_args": " ".join(worker_args),
        "workers": args.workers,
        "throughput": asdict(throughput),
        "faust_ceiling": ceiling,
        "latency": [asdict(r) for r in latencies],
        "worker_log": notes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000,
                        help="events published before the worker starts (throughput)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="mrr worker --batch-size (default: the worker's, 5000)")
    parser.add_argument("--batch-wait", type=float, default=None,
                        help="mrr worker --batch-wait seconds (default: the worker's, 0.1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="mrr worker processes in one consumer group (default 1)")
    parser.add_argument("--rate", type=float, default=2000, help="offered events/s (latency)")
    parser.add_argument("--low-rate", type=float, default=500,
                        help="a second, lower offered rate measured after --rate (0: skip)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of offered load per rate")
    parser.add_argument("--tick", type=float, default=0.02, help="seconds between append_many groups")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between commit polls")
    parser.add_argument("--drain-timeout", type=float, default=300,
                        help="most seconds to wait for the backlog after the sending stops")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--log-dir", default=None,
                        help="where the worker log and report.json go (kept; default: a new temp dir)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    saved = Path(report["worker_log"]["log"]).with_name("report.json")
    saved.write_text(json.dumps(report, indent=2, default=str))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
