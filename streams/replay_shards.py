"""Compute and COPY a replay's shards (`projections.rebuild.shard`) in parallel processes.

Each shard's customers are computed independently (`rebuild_shard`), so `mrr replay` forks one
process per shard (`--jobs`, default: the machine's cores): the children inherit the decoded
ledger without copying it through a pipe, compute their rows with the cyclic GC paused, and COPY
them into the replay schema over their own connection, in their own transaction. The parent
then loads what belongs to no shard and finishes the load (indexes, sequences, ANALYZE) in ONE
transaction that also marks the schema `loaded`; until then a crash leaves a schema whose job
is still `reading`, which a resumed replay drops and rebuilds. With one job everything runs in
this process (no fork).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec

from ledger.ports import LedgerRecord
from projections import side_schema
from projections.engine import MrrSettings
from projections.projector import settings_json
from projections.rebuild import rebuild_shard
from streams.gc_settings import paused_gc

_SHARDS: list[list[LedgerRecord]] = []
"""The shards of the running load, set before the pool forks (the children read them)."""


def asyncpg_dsn(url: str) -> str:
    """A libpq/asyncpg DSN for a SQLAlchemy PostgreSQL URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _copy(dsn: str, schema_name: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            return await side_schema.copy_rows(conn, schema_name, rows)
    finally:
        await conn.close()


def _run_shard(index: int, count: int, dsn: str, schema_name: str, settings: str) -> dict[str, int]:
    """Compute shard `index` of `_SHARDS` and COPY its rows (in a forked child, or in-process)."""
    with paused_gc():
        rows = rebuild_shard(_SHARDS[index], msgspec.json.decode(settings, type=MrrSettings),
                             index=index, count=count)
    return asyncio.run(_copy(dsn, schema_name, rows))


async def load_shards(shards: list[list[LedgerRecord]], url: str, schema_name: str,
                      settings: MrrSettings) -> dict[str, int]:
    """Compute every shard and COPY its rows into `schema_name` (tables created, committed);
    one process per shard when there are several. Returns rows copied per table."""
    global _SHARDS
    _SHARDS = shards
    dsn, encoded = asyncpg_dsn(url), settings_json(settings)
    try:
        if len(shards) == 1:
            counts = [await asyncio.to_thread(_run_shard_in_process, dsn, schema_name, encoded)]
        else:
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(max_workers=len(shards), mp_context=multiprocessing.get_context("fork")) as pool:
                counts = await asyncio.gather(*(
                    loop.run_in_executor(pool, _run_shard, i, len(shards), dsn, schema_name, encoded)
                    for i in range(len(shards))))
    finally:
        _SHARDS = []
    total: dict[str, int] = {}
    for shard_counts in counts:
        for table, n in shard_counts.items():
            total[table] = total.get(table, 0) + n
    return total


def _run_shard_in_process(dsn: str, schema_name: str, settings: str) -> dict[str, int]:
    return _run_shard(0, 1, dsn, schema_name, settings)
