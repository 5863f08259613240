"""Compute and COPY a replay's shards (`projections.rebuild.shard`) in parallel processes.

Each shard's customers are computed independently (`rebuild_shard`), so `mrr replay` forks one
process per shard (`--jobs`, default: the machine's cores; `streams.forked`): the children inherit the decoded
ledger without copying it through a pipe, compute their rows with the cyclic GC paused, compare
the current ones with their customers recomputed from scratch (`projections.verify.rebuilt`: the
first half of the replay's verification, on rows still in memory), and COPY them into the
replay schema over their own connection, in their own transaction. The parent
then loads what belongs to no shard and finishes the load (indexes, sequences, ANALYZE) in ONE
transaction that also marks the schema `loaded`; until then a crash leaves a schema whose job
is still `reading`, which a resumed replay drops and rebuilds. With one job everything runs in
this process (no fork).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any, Callable

import msgspec

from ledger.ports import LedgerRecord
from projections import side_schema
from projections.engine import MrrSettings
from projections.projector import settings_json
from projections.rebuild import rebuild_shard
from projections.store import asyncpg_dsn
from projections.verify import RowsCheck
from projections.verify.rebuilt import check_rebuilt
from streams.forked import map_forked
from streams.gc_settings import paused_gc


async def _copy(dsn: str, schema_name: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            return await side_schema.copy_rows(conn, schema_name, rows)
    finally:
        await conn.close()


def _run_shard(shared: tuple[list[list[LedgerRecord]], Any], index: int, dsn: str, schema_name: str,
               settings: str) -> tuple[dict[str, int], RowsCheck]:
    """Compute shard `index`, check its rows against a from-scratch computation and COPY them
    (in a forked child, or in this process); the records applied so far go to `done[index]`
    (shared memory) for the progress bar."""
    shards, done = shared
    decoded = msgspec.json.decode(settings, type=MrrSettings)

    def applied(n: int) -> None:
        done[index] += n

    with paused_gc():
        rows = rebuild_shard(shards[index], decoded, index=index, count=len(shards), progress=applied)
        check = check_rebuilt(shards[index], rows, decoded)
    return asyncio.run(_copy(dsn, schema_name, rows)), check


Progress = Callable[[int, int], None]
"""Told (records computed, records in all shards) about twice a second while shards compute."""


async def load_shards(shards: list[list[LedgerRecord]], url: str, schema_name: str, settings: MrrSettings,
                      progress: Progress | None = None) -> tuple[dict[str, int], list[RowsCheck]]:
    """Compute every shard, check it (`projections.verify.rebuilt`) and COPY its rows into
    `schema_name` (tables created, committed); one process per shard when there are several.
    Returns rows copied per table and every shard's check."""
    dsn, encoded = asyncpg_dsn(url), settings_json(settings)
    done = multiprocessing.get_context("fork").Array("q", len(shards), lock=False)  # one slot per shard
    work = asyncio.ensure_future(map_forked(
        (shards, done), _run_shard, [(i, dsn, schema_name, encoded) for i in range(len(shards))]))
    total_records = sum(len(part) for part in shards)
    while progress is not None and not work.done():
        progress(sum(done), total_records)
        await asyncio.wait([work], timeout=0.5)
    results = await work
    total: dict[str, int] = {}
    for shard_counts, _check in results:
        for table, n in shard_counts.items():
            total[table] = total.get(table, 0) + n
    return total, [check for _counts, check in results]
