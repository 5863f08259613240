"""Replay benchmark: `mrr replay` over a demo ledger, against the read ceiling measured in the
same run.

    python -m bench replay --events 1000000

1. About N demo events (`ledger.demo.generate_business`, `recorded_at` = arrival) are published
   to a fresh 12-partition topic, and the projections are brought to the ledger's end without
   a worker (a replay into the empty database, swapped in: the live schema a real replay would
   replace).
2. Ceiling: the same topic read with raw aiokafka `getmany` (`ledger.kafka.scan.scan_topic`,
   the replay's own reader settings) and every value decoded with msgspec into its event Struct
   (`ledger.upcast.decode_stored`), nothing else: what a replay could do at best.
3. Replay: `mrr replay --json` as a subprocess (startup included), timed from spawn to exit,
   with the phase times it reports (reading, computing, loading, verifying, swapping).
4. Raw COPY: the rows that replay loaded, dumped with binary `COPY TO` and timed while
   binary `COPY FROM` loads them into a scratch schema over two connections (no keys, no
   indexes, no Python encoding): PostgreSQL's share of a replay, at best.

Reported: both rates, their ratio, the phase breakdown and the replay's peak RSS. Kafka and
PostgreSQL are `MRR_KAFKA_BOOTSTRAP` / `MRR_DATABASE_URL` if set, else throwaway servers of the
test stack; everything shares this machine's cores. Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.machine import describe
from bench.stack import log
from bench.worker import demo_arrivals, fresh_database, servers
from ledger.kafka.topics import ensure_topics
from projections.migrate import upgrade

PARTITIONS = 12
MRR = str(Path(sys.executable).with_name("mrr"))


async def measure_ceiling(bootstrap: str, topic: str, ends: dict[int, int]) -> dict[str, Any]:
    """Raw `getmany` + msgspec decode of the whole topic: events/s."""
    from ledger.kafka.scan import scan_topic
    from ledger.upcast import decode_stored

    started = time.perf_counter()
    count = 0
    async for raws in scan_topic(bootstrap, topic, ends):
        for raw in raws:
            decode_stored(raw.value or b"")
        count += len(raws)
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": round(seconds, 2), "events_per_second": round(count / seconds)}


async def measure_copy(url: str) -> dict[str, Any]:
    """Raw binary COPY of the live projection rows (what the replay just loaded) into a scratch
    schema without keys or indexes, the tables split over two connections like the replay's two
    shards: what loading a replay's rows costs PostgreSQL at best, with no Python encoding."""
    import io

    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine

    from projections import side_schema
    from projections.store import asyncpg_dsn

    scratch = "bench_copy"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await side_schema.drop(conn, scratch)
            await conn.execute(text(f"CREATE SCHEMA {scratch}"))
            await side_schema.create_tables(conn, scratch)
        dumps: list[tuple[str, bytes]] = []
        source = await asyncpg.connect(asyncpg_dsn(url))
        try:
            for table in side_schema.tables_in("public"):
                out = io.BytesIO()
                await source.copy_from_table(table.name, schema_name="public", output=out, format="binary")
                dumps.append((table.name, out.getvalue()))
        finally:
            await source.close()
        groups: list[list[tuple[str, bytes]]] = [[], []]
        for dump in sorted(dumps, key=lambda d: -len(d[1])):  # largest first onto the lighter group
            min(groups, key=lambda g: sum(len(b) for _, b in g)).append(dump)

        async def load(group: list[tuple[str, bytes]]) -> None:
            conn = await asyncpg.connect(asyncpg_dsn(url))
            try:
                async with conn.transaction():
                    for name, data in group:
                        await conn.copy_to_table(name, schema_name=scratch, source=io.BytesIO(data), format="binary")
            finally:
                await conn.close()

        started = time.perf_counter()
        await asyncio.gather(*(load(group) for group in groups))
        seconds = time.perf_counter() - started
        async with engine.begin() as conn:
            await side_schema.drop(conn, scratch)
    finally:
        await engine.dispose()
    return {"rows_mib": round(sum(len(b) for _, b in dumps) / 2**20), "seconds": round(seconds, 2)}


def run_replay(env: dict[str, str], args: list[str]) -> dict[str, Any]:
    """`mrr replay --json ARGS`: wall time from spawn to exit, its result line and the peak RSS of
    its largest process (as the replay reports it: `VmHWM` of itself and of each job; `wait4`'s
    `ru_maxrss` would include this harness's own size, which Linux carries over `execve`)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([MRR, "replay", "--json", *args], env=env, stdout=out, stderr=err)
        _, status, _usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"mrr replay failed ({proc.returncode}): {err.read()[-2000:]}")
        result = [json.loads(line) for line in out.read().splitlines() if line.startswith("{")][-1]
    return {"seconds": round(seconds, 2), "events": result["events"], "rows": result["rows"],
            "events_per_second": round(result["events"] / seconds), "phases": result["seconds"],
            "peak_rss_mib": max(result["peak_rss_mib"].values()), "peak_rss_by_process_mib": result["peak_rss_mib"]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.worker.support import end_offsets, publish_arrivals

    load_before = os.getloadavg()
    started = time.perf_counter()
    arrivals = demo_arrivals(args.events, args.seed, args.months)
    log(f"generated {len(arrivals):,} demo events in {time.perf_counter() - started:.1f} s")
    with servers() as (bootstrap, server_url, origin):
        async with fresh_database(server_url) as url:
            await upgrade(url)
            topic = "bench-replay-" + uuid.uuid4().hex[:8]
            await ensure_topics(bootstrap, topic, partitions=PARTITIONS)
            started = time.perf_counter()
            await publish_arrivals(bootstrap, topic, arrivals)
            ends = await end_offsets(bootstrap, topic)
            log(f"published {sum(ends.values()):,} events in {time.perf_counter() - started:.1f} s")
            env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
            env.update(MRR_KAFKA_BOOTSTRAP=bootstrap, MRR_DATABASE_URL=url, MRR_LEDGER_TOPIC=topic)
            log("first replay (fills the live schema the measured replay replaces) ...")
            first = run_replay(env, [])
            runs = []
            for i in range(args.runs):
                log(f"run {i + 1}/{args.runs}: ceiling (raw getmany + msgspec decode) ...")
                ceiling = await measure_ceiling(bootstrap, topic, ends)
                log(f"  {ceiling['events_per_second']:,} events/s; mrr replay ...")
                replay = run_replay(env, [])
                log(f"  {replay['events_per_second']:,} events/s ({replay['phases']}); raw COPY of its rows ...")
                copy = await measure_copy(url)
                log(f"  {copy['seconds']} s for {copy['rows_mib']} MiB")
                runs.append({"ceiling": ceiling, "replay": replay, "copy": copy,
                             "ratio": round(replay["events_per_second"] / ceiling["events_per_second"], 3)})
    return {"machine": describe().replace(" (1 used)", "") + "; broker, PostgreSQL and the replay share them",
            "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "servers": origin, "events": sum(ends.values()), "first_replay": first, "runs": runs}


def print_report(report: dict[str, Any]) -> None:
    print(f"machine: {report['machine']}\nservers: {report['servers']}\nledger: {report['events']:,} events")
    print(f"{'run':>3}  {'ceiling ev/s':>13}  {'replay ev/s':>12}  {'ratio':>6}  phases (s)")
    for i, run in enumerate(report["runs"], start=1):
        phases = ", ".join(f"{k} {v}" for k, v in run["replay"]["phases"].items())
        print(f"{i:>3}  {run['ceiling']['events_per_second']:>13,}  {run['replay']['events_per_second']:>12,}  "
              f"{run['ratio']:>6.1%}  {phases}; peak RSS {run['replay']['peak_rss_mib']:,} MiB; "
              f"raw COPY of its rows {run['copy']['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="demo events in the ledger")
    parser.add_argument("--runs", type=int, default=2, help="ceiling + replay measurements")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0
