"""`run_replay`: rebuild every projection from offset 0 of the ledger into a fresh PostgreSQL
schema, verify it, and swap it in (DESIGN.md decision 6), while the live worker keeps serving.

Stages, recorded in the schema's job table (`projections.side_schema`) so an interrupted replay
leaves the live projections untouched and can be resumed (`--resume`) or discarded (`--abort`):

1. `reading`: the target is fixed (the ledger's end offsets when the replay started, the MRR
   settings, the recorded-time cutoff); the ledger is read up to it (`streams.ledger_snapshot`),
   split into shards of customers and recomputed in memory (`projections.rebuild`), one
   process per shard, each COPYing its rows (`streams.replay_shards`).
2. `loaded`: one transaction loaded the rows of no shard, built the indexes and marked it.
3. `verified`: the loaded schema equals an independent from-scratch computation
   (`projections.verify`) of the same ledger records.
4. swapped in (the schema is gone), or, for a side rebuild (`--until-recorded`, other
   settings), `kept` for comparison under its own name.

A resumed replay keeps its target and starts at its stage; a replay killed before `loaded`
drops whatever its shards had copied and reads and computes again.
One replay runs at a time (a PostgreSQL session advisory lock).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from projections import side_schema
from projections.engine import MrrSettings
from projections.migrate import head_revision, require_head
from projections.projector import settings_json
from projections.rebuild import deduplicate, ledger_rows, shard
from projections.store import ProjectionStore, schema_options
from projections.verify import VerifyResult
from streams.config import Config
from streams.replay_shards import load_shards
from streams.ledger_snapshot import LedgerSnapshot, ledger_ends, read_ledger
from streams.verify import UNTIL_KEY, Slices, check_projections, record_result

log = logging.getLogger(__name__)

REPLAY_LOCK_KEY = 0x6D72725F72706C01
"""PostgreSQL advisory lock id held by the running replay (one at a time)."""
SIDE_SCHEMA = "mrr_side"
"""Default schema of a side rebuild (`--until-recorded`, other settings)."""


class ReplayError(RuntimeError):
    """The replay cannot start or go on; the message says why and what to do."""


@dataclass
class ReplayRequest:
    """What the user asked for."""

    resume: bool = False
    abort: bool = False
    until_recorded: dt.datetime | None = None
    settings: MrrSettings | None = None
    """Other MRR settings (a side rebuild); None: the configured ones."""
    into: str | None = None
    """Schema of a side rebuild (default `mrr_side`)."""
    jobs: int = 1
    """Processes computing shards of the rebuild (`streams.replay_shards`)."""


@dataclass
class ReplayOutcome:
    """What the replay did."""

    schema: str
    stage: str
    ends: dict[int, int] = field(default_factory=dict)
    events: int = 0
    dead_letters: int = 0
    rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    verify: VerifyResult | None = None
    swapped_into: str | None = None


class Reporter:
    """Progress callbacks (`streams.cli.replay` renders them as a bar or JSON lines)."""

    def phase(self, name: str, **info: Any) -> None:
        """A stage starts (`reading`, `computing`, `loading`, `verifying`, `swapping`, `done`)."""

    def read(self, messages: int) -> None:
        """`messages` more ledger messages were read."""

    def computed(self, done: int, total: int) -> None:
        """`done` of `total` records were computed (all shards together)."""


def _sides(request: ReplayRequest, config: Config) -> tuple[str, bool]:
    """(schema to build in, whether to swap it in): `--into` or a recorded-time cutoff or other
    settings make a side rebuild, kept for comparison; anything else is swapped in."""
    if request.into:
        if request.into == side_schema.REPLAY_SCHEMA:
            raise ReplayError(f"--into {request.into}: that schema is reserved for the swapped replay")
        return request.into, False
    side = request.until_recorded is not None or (
        request.settings is not None and request.settings != config.mrr_settings())
    return (SIDE_SCHEMA, False) if side else (side_schema.REPLAY_SCHEMA, True)


async def run_replay(config: Config, request: ReplayRequest, reporter: Reporter) -> ReplayOutcome:
    """Run (or resume, or abort) a replay; see the module docstring."""
    if not config.kafka_bootstrap or not config.database_url:
        raise ReplayError("mrr replay rebuilds PostgreSQL projections from the Kafka ledger: set "
                          "MRR_KAFKA_BOOTSTRAP and MRR_DATABASE_URL (the embedded store rebuilds "
                          "itself when its settings change)")
    from streams.bootstrap import engine_options, projections_url

    url = projections_url(config)
    await require_head(url, engine_options(config))  # the live schema belongs to Alembic
    engine = create_async_engine(url, **engine_options(config))
    try:
        async with engine.connect() as guard:
            got = (await guard.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REPLAY_LOCK_KEY})).scalar_one()
            await guard.commit()
            if not got:
                raise ReplayError("another mrr replay is running on this database")
            return await _replay(engine, url, config, request, reporter)
    finally:
        await engine.dispose()


async def _replay(engine: AsyncEngine, url: str, config: Config, request: ReplayRequest,
                  reporter: Reporter) -> ReplayOutcome:
    name, swap = _sides(request, config)
    if request.abort:
        async with engine.begin() as conn:
            existed = await side_schema.exists(conn, name)
            await side_schema.drop(conn, name)
        return ReplayOutcome(schema=name, stage="aborted" if existed else "nothing to abort")
    async with engine.begin() as conn:
        job = await side_schema.read_job(conn, name)
    if job is not None and not request.resume:
        raise ReplayError(f"schema {name} holds {'a kept side rebuild' if job.get('stage') == 'kept' else 'an interrupted replay'} "
                          f"(stage {job.get('stage')}): `mrr replay --resume` to finish it or "
                          f"`mrr replay --abort` to drop it")
    if job is None and request.resume:
        raise ReplayError(f"nothing to resume: schema {name} does not exist")
    if job is None:
        job = await _new_job(engine, name, config, request)
    outcome = ReplayOutcome(schema=name, stage=job["stage"], ends={int(p): o for p, o in job["ends"].items()})
    settings = msgspec.json.decode(job["settings"], type=MrrSettings)
    until = dt.datetime.fromisoformat(job["until_recorded"]) if job.get("until_recorded") else None
    snapshot: LedgerSnapshot | None = None
    if outcome.stage == "reading":
        snapshot = await _read(config, outcome, until, reporter)
        await _load(engine, url, name, snapshot, settings, until, request.jobs, outcome, reporter)
    if outcome.stage == "loaded":
        snapshot = snapshot or await _read(config, outcome, until, reporter)
        await _verify(engine, url, name, snapshot, settings, request.jobs, outcome, reporter)
    if outcome.stage == "verified":
        if swap:
            await _swap(engine, name, settings, config, outcome, reporter)
        else:
            async with engine.begin() as conn:
                await side_schema.set_job(conn, name, {"stage": "kept"})
            outcome.stage = "kept"
    reporter.phase("done", stage=outcome.stage)
    return outcome


async def _new_job(engine: AsyncEngine, name: str, config: Config, request: ReplayRequest) -> dict[str, Any]:
    ends = await ledger_ends(config)
    settings = request.settings or config.mrr_settings()
    job = {"stage": "reading", "ends": ends, "settings": settings_json(settings),
           "until_recorded": request.until_recorded.isoformat() if request.until_recorded else None,
           "started_at": dt.datetime.now(dt.UTC).isoformat()}
    async with engine.begin() as conn:
        await side_schema.start_job(conn, name, job)
    log.info("replay into schema %s: ledger up to %s (%d messages)", name, ends, sum(ends.values()))
    return job


async def _read(config: Config, outcome: ReplayOutcome, until: dt.datetime | None,
                reporter: Reporter) -> LedgerSnapshot:
    reporter.phase("reading", total=sum(outcome.ends.values()), partitions=len(outcome.ends))
    with _timed(outcome, "reading"):
        snapshot = await read_ledger(config, outcome.ends, until_recorded=until, progress=reporter.read)
    outcome.events, outcome.dead_letters = len(snapshot.records), snapshot.dead_letters
    return snapshot


async def _load(engine: AsyncEngine, url: str, name: str, snapshot: LedgerSnapshot,
                settings: MrrSettings, until: dt.datetime | None, jobs: int, outcome: ReplayOutcome,
                reporter: Reporter) -> None:
    new, _duplicates, conflicts = deduplicate(snapshot.records)
    shards = shard(new, jobs)
    async with engine.begin() as conn:
        await side_schema.drop_tables(conn, name)
        await side_schema.create_tables(conn, name)
    reporter.phase("computing", total=sum(len(part) for part in shards), shards=len(shards))
    with _timed(outcome, "computing"):
        copied = await load_shards(shards, url, name, settings, progress=reporter.computed)
    shared = ledger_rows(snapshot.ends, settings, conflicts)
    if until is not None:  # `mrr verify` on this schema reads the ledger with the same cutoff
        shared["projection_meta"].append({"key": UNTIL_KEY, "value": until.isoformat()})
    reporter.phase("loading", rows=sum(copied.values()))
    with _timed(outcome, "loading"):
        async with engine.begin() as conn:
            await side_schema.copy_rows(await side_schema.driver_connection(conn), name, shared)
            await side_schema.finish_load(conn, name, head_revision())
            await side_schema.set_job(conn, name, {"stage": "loaded"})
    outcome.rows = sum(copied.values()) + sum(len(rows) for rows in shared.values())
    outcome.stage = "loaded"


async def _verify(engine: AsyncEngine, url: str, name: str, snapshot: LedgerSnapshot, settings: MrrSettings,
                  jobs: int, outcome: ReplayOutcome, reporter: Reporter) -> None:
    reporter.phase("verifying")
    store = ProjectionStore.from_url(url, **schema_options(name))
    try:
        with _timed(outcome, "verifying"):
            async with store.engine.connect() as conn, conn.begin():
                result = await check_projections(conn, snapshot.records, snapshot.ends, settings, jobs=jobs,
                                                 slices=Slices(store.url, store.engine_options, None))
        if result.ok:  # swapped in with it, so `mrr exporter` reports this verification
            await record_result(store, result)
    finally:
        await store.close()
    outcome.verify = result
    if not result.ok:
        raise ReplayError(f"the rebuilt projections in schema {name} differ from a from-scratch "
                          f"computation ({result.difference_count} differences, first: "
                          f"{(result.differences or result.bridge)[0]}); the live projections are "
                          f"untouched; `mrr replay --abort` drops the schema")
    async with engine.begin() as conn:
        await side_schema.set_job(conn, name, {"stage": "verified"})
    outcome.stage = "verified"


async def _swap(engine: AsyncEngine, name: str, settings: MrrSettings, config: Config,
                outcome: ReplayOutcome, reporter: Reporter) -> None:
    if settings != config.mrr_settings():
        raise ReplayError(f"schema {name} was built with {settings_json(settings)}, the configured "
                          f"settings are {settings_json(config.mrr_settings())}: `mrr replay --abort`")
    reporter.phase("swapping")
    with _timed(outcome, "swapping"):
        async with engine.begin() as conn:
            outcome.swapped_into = await side_schema.swap_in(conn, name)
    outcome.stage = "swapped"
    log.info("replay swapped into schema %s at offsets %s", outcome.swapped_into, outcome.ends)


class _timed:
    """Adds the seconds a block took to `outcome.seconds[name]`."""

    def __init__(self, outcome: ReplayOutcome, name: str) -> None:
        self.outcome, self.name = outcome, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.outcome.seconds[self.name] = self.outcome.seconds.get(self.name, 0.0) + time.monotonic() - self.started

