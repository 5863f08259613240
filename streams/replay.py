"""`run_replay`: rebuild every projection from offset 0 of the ledger into a fresh PostgreSQL
schema, verify it, and swap it in (DESIGN.md decision 6), while the live worker keeps serving.

Stages, recorded in the schema's job table (`projections.side_schema`) so an interrupted replay
leaves the live projections untouched and can be resumed (`--resume`) or discarded (`--abort`):

1. `reading`: the target is fixed (the ledger's end offsets when the replay started, the MRR
   settings, the recorded-time cutoff); the ledger is read up to it once and spilled to local
   disk in buckets of customers (`streams.ledger_spill`); `--jobs` processes recompute the
   buckets one at a time (`projections.rebuild`), each COPYing its rows
   (`streams.replay_shards`), so memory does not grow with the ledger.
2. `loaded`: one transaction loaded the rows of no bucket, built the indexes and marked it.
3. `verified`: the loaded schema equals an independent from-scratch computation
   (`projections.verify`) of the same ledger records: every bucket compared its current rows
   with one before its COPY, and aggregates of the loaded schema are checked in SQL
   (`projections.verify.loaded`); a replay resumed at `loaded` has no bucket checks and reads
   every row back instead, as `mrr verify` does.
4. swapped in (the schema is gone), or, for a side rebuild (`--until-recorded`, other
   settings), `kept` for comparison under its own name.

A resumed replay keeps its target and starts at its stage; a replay killed before `loaded`
drops whatever its jobs had copied and reads and computes again.
One replay runs at a time (a PostgreSQL session advisory lock). The phases themselves are in
`streams.replay_phases`, the request/outcome/reporter types in `streams.replay_model`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from projections import side_schema
from projections.engine import MrrSettings
from projections.migrate import require_head
from projections.projector import settings_json
from streams import replay_phases as phases
from streams.config import Config
from streams.ledger_snapshot import ledger_ends
from streams.replay_shards import LoadedBuckets
from streams.replay_model import ReplayError, ReplayOutcome, ReplayRequest, Reporter

__all__ = ["ReplayError", "ReplayOutcome", "ReplayRequest", "Reporter", "run_replay"]

log = logging.getLogger(__name__)

REPLAY_LOCK_KEY = 0x6D72725F72706C01
"""PostgreSQL advisory lock id held by the running replay (one at a time)."""
SIDE_SCHEMA = "mrr_side"
"""Default schema of a side rebuild (`--until-recorded`, other settings)."""


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
    loaded: LoadedBuckets | None = None
    if outcome.stage == "reading":
        async with phases.spilled(config, outcome, until, request.jobs, reporter) as ledger:
            loaded = await phases.load(engine, url, name, ledger, settings, until, request.jobs, outcome, reporter)
    if outcome.stage == "loaded":
        snapshot = None if loaded else await phases.read(config, outcome, until, reporter)
        await phases.verify(engine, url, name, snapshot, settings, request.jobs, outcome, reporter, loaded)
    if outcome.stage == "verified":
        if swap:
            await phases.swap(engine, name, settings, config, outcome, reporter)
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
