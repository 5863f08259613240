"""Ingest API benchmark: accepted events/s through `POST /v1/events` of a real `mrr serve` on Kafka.

    python -m bench ingest --events 100000 --concurrency 4,8,16

1. Kafka is `MRR_KAFKA_BOOTSTRAP` if set, else a throwaway KRaft broker from the test stack
   (`tests.stack`). A fresh ledger topic (12 partitions, `ensure_topics`) is created.
2. ONE `mrr serve` subprocess (uvicorn, a single process: the command has no worker option) is
   started on a free port with MRR_KAFKA_BOOTSTRAP / MRR_LEDGER_TOPIC / MRR_API_TOKENS, its log
   level `--server-log-level` (default `warning`: no per-request access log line).
3. About `--events` demo events (`ledger.demo.generate_business`, serialized with
   `ledger.events.encode_event`) are cut into JSON-array bodies of `--batch` events (default 100)
   before the clock starts. For each `--concurrency` value (comma-separated) that many
   `httpx.AsyncClient`s (one keep-alive connection each) take the next body from a shared queue
   and POST it, after a warm-up of `--warmup` requests (not counted). Every answer must be 200
   with every event `accepted` (counted otherwise and the run fails). Each concurrency value
   re-sends the same events to the same topic: on Kafka a re-sent event is stored again and
   answered `accepted` (the worker applies each event_id once), so every run does the same work.

Reported per concurrency: accepted events/s and requests/s (first request sent to last answer),
p50/p99/max request latency. The broker, `mrr serve` and this harness share this machine's
cores. Progress goes to stderr, `--json` prints the report as JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

import httpx
import msgspec

from bench.machine import describe
from bench.stats import percentile
from bench.stack import kafka, log
from bench.worker import demo_arrivals
from ledger.events import encode_event
from ledger.kafka.topics import ensure_topics

PARTITIONS = 12
TOKEN = "bench-ingest-token"
MRR = str(Path(sys.executable).with_name("mrr"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(bootstrap: str, topic: str, work_dir: Path, log_level: str) -> Iterator[tuple[str, Any, Path]]:
    """A `mrr serve` subprocess on a free port: (base URL, process, log file)."""
    from tests.stack.base import spawn

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env |= {"MRR_KAFKA_BOOTSTRAP": bootstrap, "MRR_LEDGER_TOPIC": topic,
            "MRR_API_TOKENS": TOKEN, "MRR_API_PORT": str(port),
            "MRR_DATA_DIR": str(work_dir / "data"), "MRR_CONFIG": str(work_dir / "absent.toml"),
            "PYTHONUNBUFFERED": "1"}
    server_log = work_dir / "serve.log"
    proc = spawn([MRR, "serve", "--log-level", log_level], server_log, cwd=work_dir, env=env)
    try:
        yield f"http://127.0.0.1:{port}", proc, server_log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_ready(base: str, proc: Any, server_log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mrr serve exited with {proc.returncode}:\n{tail(server_log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{base}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mrr serve not ready after {timeout:.0f} s:\n{tail(server_log)}")
            await asyncio.sleep(0.2)


def bodies(events: Sequence[bytes], batch: int) -> list[tuple[bytes, int]]:
    """JSON-array request bodies of `batch` encoded events each, with their event counts."""
    return [(b"[" + b",".join(events[i : i + batch]) + b"]", len(events[i : i + batch]))
            for i in range(0, len(events), batch)]


class Answer(msgspec.Struct):
    accepted: int
    duplicate: int
    rejected: int
    results: list[dict[str, Any]]


async def post_all(base: str, work: Sequence[tuple[bytes, int]], concurrency: int) -> dict[str, Any]:
    """POST every body with `concurrency` clients; return counts, time and latencies."""
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    latencies: list[float] = []
    problems: list[str] = []
    accepted = not_accepted = requests = 0
    decoder = msgspec.json.Decoder(Answer)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def client() -> None:
        nonlocal accepted, not_accepted, requests
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                     timeout=60) as http:
            while True:
                try:
                    body, count = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sent = time.perf_counter()
                response = await http.post("/v1/events", content=body)
                latencies.append(time.perf_counter() - sent)
                requests += 1
                if response.status_code != 200:
                    not_accepted += count
                    if len(problems) < 5:
                        problems.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                answer = decoder.decode(response.content)
                ok = sum(1 for r in answer.results if r.get("status") == "accepted")
                if answer.accepted != count or ok != count:
                    if len(problems) < 5:
                        problems.append(f"200 but {answer.accepted}/{count} accepted: "
                                        f"{response.text[:300]}")
                accepted += ok
                not_accepted += count - ok

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"accepted": accepted, "not_accepted": not_accepted, "requests": requests,
            "seconds": elapsed, "latencies": sorted(latencies), "problems": problems}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    concurrencies = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    started = time.perf_counter()
    warm_events = args.warmup * args.batch
    arrivals = demo_arrivals(args.events + warm_events, args.seed, args.months)
    encoded = [encode_event(event) for _, event in arrivals]
    warm = bodies(encoded[:warm_events], args.batch)
    work = bodies(encoded[warm_events:], args.batch)
    total = sum(count for _, count in work)
    log(f"generated and encoded {len(encoded):,} demo events in {time.perf_counter() - started:.1f} s: "
        f"{len(work):,} bodies of {args.batch} ({total:,} events) + {len(warm)} warm-up bodies; "
        f"mean body {sum(len(b) for b, _ in work) / max(1, len(work)) / 1024:.1f} KiB")

    work_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="mrr-bench-ingest-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    with kafka() as (bootstrap, broker):
        origin = ("Kafka: throwaway KRaft broker (tests.stack)" if broker
                  else f"Kafka: MRR_KAFKA_BOOTSTRAP={bootstrap}")
        topic = "bench-ingest-" + uuid.uuid4().hex[:8]
        await ensure_topics(bootstrap, topic, partitions=PARTITIONS)
        with serve(bootstrap, topic, work_dir, args.server_log_level) as (base, proc, server_log):
            await wait_ready(base, proc, server_log)
            log(f"mrr serve ready at {base} (topic {topic}, {PARTITIONS} partitions)")
            for concurrency in concurrencies:
                await post_all(base, warm, concurrency)
                log(f"concurrency {concurrency}: posting {total:,} events ...")
                result = await post_all(base, work, concurrency)
                lat = result.pop("latencies")
                result.update(
                    concurrency=concurrency, batch=args.batch,
                    events_per_second=result["accepted"] / result["seconds"],
                    requests_per_second=result["requests"] / result["seconds"],
                    p50_ms=percentile(lat, 50) * 1000, p99_ms=percentile(lat, 99) * 1000,
                    max_ms=(lat[-1] * 1000 if lat else float("nan")))
                runs.append(result)
                log(f"  {result['events_per_second']:,.0f} events/s, "
                    f"{result['requests_per_second']:,.0f} requests/s, p50 {result['p50_ms']:.1f} ms, "
                    f"p99 {result['p99_ms']:.1f} ms; not accepted: {result['not_accepted']:,}")
                if proc.poll() is not None:
                    raise RuntimeError(f"mrr serve exited with {proc.returncode}:\n{tail(server_log)}")
    best = max(runs, key=lambda r: r["events_per_second"] if not r["not_accepted"] else -1)
    return {
        "machine": describe().replace(" (1 used)", "")
        + "; the broker, mrr serve (one uvicorn process) and this harness all share them",
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "servers": origin,
        "server_log_level": args.server_log_level,
        "server_log": str(server_log),
        "events": total,
        "runs": runs,
        "best": {k: best[k] for k in ("concurrency", "batch", "events_per_second",
                                        "requests_per_second", "p50_ms", "p99_ms")},
        "all_accepted": all(not r["not_accepted"] for r in runs),
    }


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 150)
    table = Table(title=f"POST /v1/events on Kafka ({report['events']:,} events per run, "
                  f"batches of {report['runs'][0]['batch']}, one mrr serve process)")
    for column in ("concurrency", "events/s", "requests/s", "p50 ms", "p99 ms", "max ms",
                   "seconds", "not accepted"):
        table.add_column(column, justify="right")
    for r in report["runs"]:
        table.add_row(str(r["concurrency"]), f"{r['events_per_second']:,.0f}",
                      f"{r['requests_per_second']:,.0f}", f"{r['p50_ms']:.1f}",
                      f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}", f"{r['seconds']:.1f}",
                      f"{r['not_accepted']:,}")
    console.print(table)
    for r in report["runs"]:
        for problem in r["problems"]:
            console.print(f"  [yellow]{problem}[/yellow]", markup=True, highlight=False)
    b = report["best"]
    console.print(f"best: {b['events_per_second']:,.0f} accepted events/s at concurrency "
                  f"{b['concurrency']}", highlight=False)
    console.print(f"{report['servers']}; mrr serve --log-level {report['server_log_level']}",
                  highlight=False)
    console.print(report["machine"], highlight=False)
    load = report["loadavg_1m"]
    console.print(f"1-min load average before {load['before']}, after {load['after']} "
                  "(other processes on the machine skew every number)", highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events posted per run")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--concurrency", default="12",
                        help="concurrent connections; comma-separated values run one after another")
    parser.add_argument("--warmup", type=int, default=20,
                        help="requests sent before each run, not counted")
    parser.add_argument("--server-log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="mrr serve --log-level (info adds an access log line per request)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--log-dir", default=None,
                        help="where serve.log and report.json go (kept; default: a new temp dir)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    Path(report["server_log"]).with_name("report.json").write_text(
        json.dumps(report, indent=2, default=str))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0 if report["all_accepted"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
