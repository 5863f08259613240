"""Faust's own ceiling: how fast the worker's Faust app delivers a topic to an agent that does
nothing but count `stream.take_events` batches. Same settings as `mrr worker`
(`streams.worker.app.app_settings`), same topic, a consumer group of its own.

    python -m bench.faust_ceiling --bootstrap HOST:PORT --topic T --events N

prints one JSON line `{"events": n, "seconds": s, "rate": r}` measured from the first delivered
batch to the N-th event (group join and first fetch excluded), then exits. `bench worker` runs
it as a subprocess on its ledger topic so the worker's rate can be read against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any


def measure(bootstrap: str, topic: str, events: int, timeout: float = 600.0) -> dict[str, Any]:
    """Run the no-op agent in a subprocess over the first `events` events of `topic`."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.faust_ceiling", "--bootstrap", bootstrap, "--topic", topic,
         "--events", str(events)],
        capture_output=True, text=True, timeout=timeout, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"faust ceiling run failed ({done.returncode}): {done.stderr[-2000:]}")


def _run(bootstrap: str, topic: str, events: int) -> None:
    import faust

    from streams.config import load_config
    from streams.worker.app import app_settings, raw_topic

    config = load_config({"kafka_bootstrap": bootstrap, "ledger_topic": topic})
    app = faust.App(f"bench-faust-ceiling-{uuid.uuid4().hex[:8]}", **app_settings(config))
    state: dict[str, Any] = {"count": 0, "first": None}

    @app.agent(raw_topic(app, topic), concurrency=1)
    async def count(stream: Any) -> None:
        async for batch in stream.take_events(config.batch_size, within=config.batch_wait_seconds):
            now = time.perf_counter()
            if state["first"] is None:
                state["first"], state["first_size"] = now, len(batch)
            state["count"] += len(batch)
            if state["count"] >= events:
                counted = state["count"] - state["first_size"]  # the first batch marks the start
                seconds = now - state["first"]
                print(json.dumps({"events": counted, "seconds": round(seconds, 3),
                                  "rate": round(counted / seconds, 1) if seconds else None}), flush=True)
                os._exit(0)  # a Faust worker's orderly shutdown takes seconds; nothing to keep

    faust.Worker(app, loglevel="warning", redirect_stdouts=False).execute_from_commandline()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faust_ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1] + ["worker"]  # Faust's worker parses the command line itself
    _run(args.bootstrap, args.topic, args.events)
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    raise SystemExit(main())
