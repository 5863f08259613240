"""Helpers for the replay and verify tests: run `mrr` subprocesses against a topic and database,
and build a live projection with a real `mrr worker`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

from ledger.demo import generate_business
from tests.worker.support import (
    MRR,
    migrated,
    new_topic,
    publish_arrivals,
    start_worker,
    wait_caught_up,
)


def mrr_env(tmp_path: Path, bootstrap: str, url: str, topic: str, **extra: str) -> dict[str, str]:
    """The environment of an `mrr` command on this topic and database (no stray MRR_* vars)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env.update(MRR_KAFKA_BOOTSTRAP=bootstrap, MRR_DATABASE_URL=url, MRR_LEDGER_TOPIC=topic,
               MRR_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def run_mrr(args: Sequence[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `mrr ARGS` to completion, capturing its output."""
    return subprocess.run([MRR, *args], env=env, capture_output=True, text=True, timeout=timeout)


def report(env: dict[str, str], *args: str) -> dict[str, Any]:
    """`mrr report ARGS --json` without the instants it was asked at (they differ per call)."""
    done = run_mrr(["report", *args, "--json"], env)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    for key in ("as_of", "known_at", "generated_at"):
        payload.pop(key, None)
    return payload


def bridge_report(env: dict[str, str]) -> dict[str, Any]:
    """`mrr report bridge --json` over every period (see `report`)."""
    return report(env, "bridge")


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]


async def live_projection(tmp_path: Path, bootstrap: str, database: str, *, customers: int = 300,
                          months: int = 12, seed: int = 21) -> tuple[str, str]:
    """A topic holding a demo business and a migrated database a real `mrr worker` projected it
    into (the worker is stopped again). Returns (topic, database url)."""
    url = await migrated(database)
    topic = await new_topic(bootstrap)
    await publish_arrivals(bootstrap, topic, generate_business(seed=seed, customers=customers, months=months))
    worker = start_worker(tmp_path, bootstrap, url, topic, name="live")
    try:
        await wait_caught_up(bootstrap, topic, url, [worker], timeout=240)
    finally:
        assert worker.terminate() == 0, worker.tail()
    return topic, url
