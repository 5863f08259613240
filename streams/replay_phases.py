"""The phases of a replay (`streams.replay`): read the ledger, compute and load the shards,
verify the loaded schema, swap it in. Each records its time in the outcome and tells the
reporter when it starts."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from projections import side_schema
from projections.engine import MrrSettings
from projections.migrate import head_revision
from projections.projector import settings_json
from projections.rebuild import ledger_rows
from projections.store import ProjectionStore, schema_options
from projections.verify import RowsCheck
from projections.verify.loaded import check_loaded
from streams.config import Config
from streams.ledger_snapshot import LedgerSnapshot, read_ledger
from streams.replay_model import ReplayError, ReplayOutcome, ReplayVerificationError, Reporter, timed
from streams.ledger_spill import SpilledLedger, bucket_count, spill_ledger
from streams.process_memory import peak_rss_mib
from streams.replay_shards import LoadedBuckets, load_buckets
from streams.verify import UNTIL_KEY, Slices, check_projections, record_result

log = logging.getLogger("streams.replay")


async def read(config: Config, outcome: ReplayOutcome, until: dt.datetime | None,
               reporter: Reporter) -> LedgerSnapshot:
    """The whole ledger in memory (the full verification of a replay resumed at `loaded`)."""
    reporter.phase("reading", total=sum(outcome.ends.values()), partitions=len(outcome.ends))
    with timed(outcome, "reading"):
        snapshot = await read_ledger(config, outcome.ends, until_recorded=until, progress=reporter.read)
    outcome.events, outcome.dead_letters = len(snapshot.records), snapshot.dead_letters
    return snapshot


@contextlib.asynccontextmanager
async def spilled(config: Config, outcome: ReplayOutcome, until: dt.datetime | None, jobs: int,
                  reporter: Reporter) -> AsyncIterator[SpilledLedger]:
    """The ledger read once and spilled in buckets of customers (`streams.ledger_spill`) into a
    temporary directory under the data directory, removed afterwards."""
    from ledger.kafka.scan import scan_topic

    messages = sum(outcome.ends.values())
    buckets = bucket_count(messages, jobs)
    reporter.phase("reading", total=messages, partitions=len(outcome.ends), buckets=buckets)
    config.data_path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="replay-spill-", dir=config.data_path) as directory:
        with timed(outcome, "reading"):
            ledger = await spill_ledger(
                scan_topic(config.kafka_bootstrap or "", config.ledger_topic, outcome.ends), Path(directory),
                outcome.ends, buckets=buckets, horizon=dt.timedelta(days=config.future_horizon_days),
                until_recorded=until, progress=reporter.read)
        outcome.events, outcome.dead_letters = ledger.events, ledger.dead_letters
        outcome.peak_rss_mib["reading"] = peak_rss_mib() or 0
        log.info("ledger spilled into %d buckets under %s (%d records)", buckets, directory, ledger.events)
        yield ledger


async def load(engine: AsyncEngine, url: str, name: str, ledger: SpilledLedger, settings: MrrSettings,
               until: dt.datetime | None, jobs: int, outcome: ReplayOutcome, reporter: Reporter) -> LoadedBuckets:
    """Compute, check and COPY the buckets, then finish the load; returns what the buckets
    checked and copied, for `verify`."""
    async with engine.begin() as conn:
        await side_schema.drop_tables(conn, name)
        await side_schema.create_tables(conn, name)
    reporter.phase("computing", total=sum(ledger.sizes), jobs=min(jobs, ledger.buckets), buckets=ledger.buckets)
    with timed(outcome, "computing"):
        loaded = await load_buckets(ledger, url, name, settings, jobs, progress=reporter.computed)
    outcome.peak_rss_mib.update({f"job {j}": rss for j, rss in enumerate(loaded.peak_rss_mib)})
    shared = ledger_rows(ledger.ends, settings, [])
    if until is not None:  # `mrr verify` on this schema reads the ledger with the same cutoff
        shared["projection_meta"].append({"key": UNTIL_KEY, "value": until.isoformat()})
    reporter.phase("loading", rows=sum(loaded.copied.values()))
    with timed(outcome, "loading"):
        async with engine.begin() as conn:
            await side_schema.complete_load(conn, name, shared, head_revision())
            await side_schema.set_job(conn, name, {"stage": "loaded"})
    outcome.rows = sum(loaded.copied.values()) + sum(len(rows) for rows in shared.values())
    outcome.stage = "loaded"
    loaded.copied.update({table: len(rows) for table, rows in shared.items()})
    return loaded


async def verify(engine: AsyncEngine, url: str, name: str, snapshot: LedgerSnapshot | None, settings: MrrSettings,
                 jobs: int, outcome: ReplayOutcome, reporter: Reporter, loaded: LoadedBuckets | None) -> None:
    """Check the loaded schema: with the checks of this run's buckets, the load in SQL
    (`projections.verify.loaded`); without (a resumed replay), every row of `snapshot` read back
    and compared with a from-scratch computation, as `mrr verify` does."""
    reporter.phase("verifying", full=loaded is None)
    store = ProjectionStore.from_url(url, **schema_options(name))
    try:
        with timed(outcome, "verifying"):
            async with store.engine.connect() as conn, conn.begin():
                if loaded is not None:
                    result = await check_loaded(conn, name, loaded.figures, outcome.ends,
                                                loaded.checks, loaded.copied)
                else:
                    assert snapshot is not None
                    result = await check_projections(conn, snapshot.records, snapshot.ends, settings, jobs=jobs,
                                                     slices=Slices(store.url, store.engine_options, None))
        if result.ok:  # swapped in with it, so `mrr exporter` reports this verification
            await record_result(store, result)
    finally:
        await store.close()
    outcome.verify = result
    if not result.ok:
        raise ReplayVerificationError(f"the rebuilt projections in schema {name} differ from a from-scratch "
                          f"computation ({result.difference_count} differences, first: "
                          f"{(result.differences or result.bridge)[0]}); the live projections are "
                          f"untouched; `mrr replay --abort` drops the schema")
    async with engine.begin() as conn:
        await side_schema.set_job(conn, name, {"stage": "verified"})
    outcome.stage = "verified"


async def swap(engine: AsyncEngine, name: str, settings: MrrSettings, config: Config,
                outcome: ReplayOutcome, reporter: Reporter) -> None:
    if settings != config.mrr_settings():
        raise ReplayError(f"schema {name} was built with {settings_json(settings)}, the configured "
                          f"settings are {settings_json(config.mrr_settings())}: `mrr replay --abort`")
    reporter.phase("swapping")
    with timed(outcome, "swapping"):
        async with engine.begin() as conn:
            outcome.swapped_into = await side_schema.swap_in(conn, name)
    outcome.stage = "swapped"
    log.info("replay swapped into schema %s at offsets %s", outcome.swapped_into, outcome.ends)
