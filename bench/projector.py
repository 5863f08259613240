"""Projector benchmark: how many events per second `Projector.apply_batch` writes into a store.

    python -m bench projector --events 200000            # SQLite, then PostgreSQL both paths
    python -m bench projector --backend postgres --portable

Generates the demo business scaled to about N events (capped at N), stamps each event's
`recorded_at` with its arrival time (increasing, as `mrr demo` records them) and turns it into a
`LedgerRecord` on one of 12 partitions (stable hash of the Kafka key: customer id, or the event
type for reference events) with increasing offsets per partition. Then it applies them in arrival
order, `--batch` records (default 5,000) per `apply_batch`, i.e. per transaction, into a fresh
SQLite file and a fresh PostgreSQL schema, and times only the `apply_batch` calls (with the
worker's garbage-collector settings, `streams.gc_settings.tune_gc`).

PostgreSQL is `MRR_DATABASE_URL` if set (the benchmark works in a schema of its own, dropped at
the end), else a throwaway server started with the test stack's `tests.stack.postgres`
(fsync and synchronous_commit off: it measures the projector, not the disk). On PostgreSQL the
set-based fast path (`projections.bulk`) is measured against the portable executemany path
(`--portable` measures only the portable one, `--fast` only the fast one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterator

import msgspec

from bench import stack
from bench.machine import describe
from ledger.demo import customers_for_events, generate_business
from ledger.kafka.writer import key_of
from ledger.ports import LedgerRecord
from projections.bulk import PORTABLE
from projections.engine import MrrSettings
from projections.projector import Projector
from projections.store import ProjectionStore, sqlite_url
from streams.gc_settings import tune_gc

PARTITIONS = 12


def build_records(events: int, seed: int, months: int) -> list[LedgerRecord]:
    """At most `events` demo events as ledger records in arrival (= recorded) order."""
    arrivals = generate_business(seed=seed, customers=customers_for_events(events + events // 8, months),
                                 months=months)[:events]
    next_offset = [0] * PARTITIONS
    records = []
    for arrival, event in arrivals:
        partition = zlib.crc32(key_of(event)) % PARTITIONS
        records.append(LedgerRecord(partition, next_offset[partition],
                                    msgspec.structs.replace(event, recorded_at=arrival)))
        next_offset[partition] += 1
    return records


async def project(store: ProjectionStore, records: list[LedgerRecord], batch: int) -> float:
    """Seconds spent in `apply_batch` over all records, `batch` records per transaction."""
    projector = Projector(store, MrrSettings())
    tune_gc()  # the worker's garbage-collector settings, so this measures what it runs
    spent = 0.0
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        started = time.perf_counter()
        result = await projector.apply_batch(chunk, {})
        spent += time.perf_counter() - started
        if result.applied != len(chunk):
            raise RuntimeError(f"batch at {i}: applied {result.applied} of {len(chunk)}")
    return spent


async def run_sqlite(records: list[LedgerRecord], batch: int) -> float:
    with tempfile.TemporaryDirectory(prefix="mrr-bench-") as tmp:
        store = ProjectionStore.from_url(sqlite_url(Path(tmp) / "projections.sqlite"))
        try:
            await store.create_all()
            return await project(store, records, batch)
        finally:
            await store.close()


async def run_postgres(url: str, records: list[LedgerRecord], batch: int, portable: bool) -> float:
    """Project into a fresh schema of its own (search_path), dropped afterwards."""
    schema_name = f"mrr_bench_{os.getpid()}_{'portable' if portable else 'fast'}"
    admin = ProjectionStore.from_url(url)
    quoted = f'"{schema_name}"'
    try:
        await admin.transaction(lambda c: c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE"))
        await admin.transaction(lambda c: c.exec_driver_sql(f"CREATE SCHEMA {quoted}"))
        store = ProjectionStore.from_url(
            url, connect_args={"server_settings": {"search_path": schema_name}},
            execution_options={PORTABLE: portable})
        try:
            await store.create_all()
            return await project(store, records, batch)
        finally:
            await store.close()
    finally:
        await admin.transaction(lambda c: c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE"))
        await admin.close()


@contextlib.contextmanager
def postgres() -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, description): MRR_DATABASE_URL, else a throwaway server of the test stack."""
    with stack.postgres(announce=False) as (url, server):
        yield url, (f"throwaway PostgreSQL {server.bin.parent.name} on loopback (fsync off)"
                    if server else "MRR_DATABASE_URL")


def line(name: str, count: int, seconds: float) -> float:
    rate = count / seconds if seconds else float("inf")
    print(f"  {name:<26} {count:,} events in {seconds:6.2f} s = {rate:9,.0f} events/s")
    return rate


async def amain(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    records = build_records(args.events, args.seed, args.months)
    print(f"generated {len(records):,} records on {PARTITIONS} partitions in "
          f"{time.perf_counter() - started:.1f} s; {args.batch:,} records per transaction")
    if args.backend in ("sqlite", "all"):
        line("sqlite", len(records), await run_sqlite(records, args.batch))
    if args.backend in ("postgres", "all"):
        with postgres() as (url, where):
            print(f"postgres: {where}")
            paths = [True] if args.portable else [False] if args.fast else [True, False]
            rates = {}
            for portable in paths:
                name = "postgres portable" if portable else "postgres set-based"
                rates[portable] = line(name, len(records),
                                       await run_postgres(url, records, args.batch, portable))
            if len(rates) == 2:
                print(f"  set-based / portable: {rates[False] / rates[True]:.2f}x")
    print(describe())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench projector", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="at most this many events")
    parser.add_argument("--batch", type=int, default=5_000, help="records per transaction")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--portable", action="store_true",
                       help="PostgreSQL: measure only the portable executemany path")
    which.add_argument("--fast", action="store_true",
                       help="PostgreSQL: measure only the set-based fast path")
    args = parser.parse_args(argv)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
