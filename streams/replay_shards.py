"""Compute, check and COPY a replay's buckets of customers (`streams.ledger_spill`) in parallel
processes, one bucket in memory at a time per process.

`mrr replay` forks `--jobs` processes (default: the machine's cores; `streams.forked`); job j
takes buckets j, j + jobs, ... Customers never interact except through FX rates, so each bucket
is computed on its own (`projections.rebuild.rebuild_shard`) from its customers' events plus
every FX rate. For each bucket a job:

1. decodes the bucket's spilled records and sets aside duplicates and conflicts (the first copy
   of an event id in (partition, offset) order wins; copies whose first copy is in another
   bucket are conflicts);
2. computes its rows with the cyclic GC paused;
3. compares the current ones with its customers recomputed from scratch
   (`projections.verify.rebuilt`: the first half of the replay's verification, on rows still
   in memory) and counts what the bucket's records should leave in the reference tables
   (`projections.verify.loaded.expected_figures`);
4. COPYs them into the replay schema and lets them go.

A job COPYs all its buckets over its own connection in one transaction. The parent then loads
what belongs to no bucket and finishes the load (indexes, sequences, ANALYZE) in ONE
transaction that also marks the schema `loaded`; until then a crash leaves a schema whose job
is still `reading`, which a resumed replay drops and rebuilds. With one job everything runs in
a thread of this process (no fork).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

from ledger.ports import LedgerRecord
from projections import side_schema
from projections.dedupe import conflict_row, split_known, warn_conflicts
from projections.engine import MrrSettings
from projections.projector import settings_json
from projections.rebuild import rebuild_shard
from projections.store import asyncpg_dsn
from projections.verify import RowsCheck
from projections.verify.loaded import LedgerFigures, expected_figures
from projections.verify.rebuilt import check_rebuilt
from streams.forked import map_forked
from streams.gc_settings import paused_gc
from streams.ledger_spill import SpilledLedger
from streams.process_memory import peak_rss_mib


@dataclass
class ComputedBucket:
    """One bucket's rows per table, their check, and the figures its records should leave."""

    tables: dict[str, list[dict[str, Any]]]
    check: RowsCheck
    figures: LedgerFigures


@dataclass
class LoadedBuckets:
    """What the jobs copied (rows per table) and checked (one check per bucket)."""

    copied: Counter[str] = field(default_factory=Counter)
    checks: list[RowsCheck] = field(default_factory=list)
    figures: LedgerFigures = field(default_factory=LedgerFigures)
    peak_rss_mib: list[int] = field(default_factory=list)
    """Each job's peak resident memory."""

    def add(self, counts: dict[str, int], check: RowsCheck, figures: LedgerFigures) -> None:
        self.copied.update(counts)
        self.checks.append(check)
        self.figures.add(figures)

    def merge(self, other: LoadedBuckets) -> None:
        self.copied.update(other.copied)
        self.checks.extend(other.checks)
        self.figures.add(other.figures)
        self.peak_rss_mib.extend(other.peak_rss_mib)


def compute_bucket(spilled: SpilledLedger, bucket: int, settings: MrrSettings,
                   progress: Callable[[int], None] | None = None) -> ComputedBucket:
    """Steps 1 to 3 of the module docstring for `bucket` of `spilled`."""
    with paused_gc():  # decoded records and rows: many objects, no cycles
        read = sorted(spilled.read_bucket(bucket), key=lambda r: (r.partition, r.offset))
        foreign = spilled.foreign[bucket]
        mine: list[LedgerRecord] = [r for r in read if r.event.event_id not in foreign]
        new, _duplicates, conflicts = split_known(mine, {})
        elsewhere = [conflict_row(r) for r in read if r.event.event_id in foreign]
        warn_conflicts(elsewhere)
        applied = new if bucket == 0 else new + spilled.rates  # bucket 0 holds every event of no customer
        tables = rebuild_shard(applied, settings, index=bucket, count=spilled.buckets, progress=progress)
        check = check_rebuilt(applied, tables, settings)
        tables["event_conflicts"] = conflicts + elsewhere
        figures = expected_figures(mine)
        figures.counts["event_conflicts"] += len(elsewhere)
    return ComputedBucket(tables, check, figures)


def _run_job(shared: tuple[SpilledLedger, Any], job: int, jobs: int, dsn: str, schema_name: str,
             settings: str) -> LoadedBuckets:
    """Compute, check and COPY the buckets of `job` (in a forked child, or in this process);
    the records applied so far go to `done[job]` (shared memory) for the progress bar."""
    spilled, done = shared
    decoded = msgspec.json.decode(settings, type=MrrSettings)

    def applied(n: int) -> None:
        done[job] += n

    async def run() -> LoadedBuckets:
        import asyncpg

        loaded = LoadedBuckets()
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                for bucket in range(job, spilled.buckets, jobs):
                    computed = compute_bucket(spilled, bucket, decoded, applied)
                    counts = await side_schema.copy_rows(conn, schema_name, computed.tables)
                    loaded.add(counts, computed.check, computed.figures)
                    del computed
                    gc.collect()  # cycles left by the bucket, before the next one freezes what is alive
        finally:
            await conn.close()
        loaded.peak_rss_mib.append(peak_rss_mib() or 0)
        return loaded

    return asyncio.run(run())


Progress = Callable[[int, int], None]
"""Told (records computed, records in all buckets) about twice a second while jobs compute."""


async def load_buckets(spilled: SpilledLedger, url: str, schema_name: str, settings: MrrSettings, jobs: int,
                       progress: Progress | None = None) -> LoadedBuckets:
    """Compute every bucket of `spilled`, check it and COPY its rows into `schema_name` (tables
    created, committed), over `jobs` processes (at most one per bucket)."""
    dsn, encoded = asyncpg_dsn(url), settings_json(settings)
    jobs = max(1, min(jobs, spilled.buckets))
    done = multiprocessing.get_context("fork").Array("q", jobs, lock=False)  # one slot per job
    work = asyncio.ensure_future(map_forked(
        (spilled, done), _run_job, [(j, jobs, dsn, schema_name, encoded) for j in range(jobs)]))
    total_records = sum(spilled.sizes) + len(spilled.rates) * (spilled.buckets - 1)
    while progress is not None and not work.done():
        progress(sum(done), total_records)
        await asyncio.wait([work], timeout=0.5)
    total = LoadedBuckets()
    for part in await work:
        total.merge(part)
    return total
