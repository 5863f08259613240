"""The Kafka broker and PostgreSQL server of the benchmarks that need them.

Each is the one the environment names (`MRR_KAFKA_BOOTSTRAP`, `MRR_DATABASE_URL`), else a
throwaway server of the test stack (`tests.stack`; its PostgreSQL runs with fsync and
synchronous_commit off), stopped and removed on leaving the `with` block. The test stack is
imported only when a throwaway server is needed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any, Iterator


def log(message: str) -> None:
    """A progress line on stderr (stdout is for the report)."""
    print(message, flush=True, file=sys.stderr)


def kafka() -> contextlib.AbstractContextManager[tuple[str, Any]]:
    """(bootstrap, None) for `MRR_KAFKA_BOOTSTRAP`, else (bootstrap, the `KafkaServer`) of a
    throwaway KRaft broker."""
    return _named_or_throwaway("MRR_KAFKA_BOOTSTRAP", "tests.stack.kafka", "KafkaServer",
                               "bootstrap", announce=True)


def postgres(*, announce: bool = True) -> contextlib.AbstractContextManager[tuple[str, Any]]:
    """(SQLAlchemy URL, None) for `MRR_DATABASE_URL`, else (URL of its `postgres` database, the
    `PostgresServer`) of a throwaway server. `announce`: say on stderr that it starts one."""
    return _named_or_throwaway("MRR_DATABASE_URL", "tests.stack.postgres", "PostgresServer",
                               "url", announce=announce)


@contextlib.contextmanager
def _named_or_throwaway(variable: str, module: str, server_class: str, address: str, *,
                        announce: bool) -> Iterator[tuple[str, Any]]:
    named = os.environ.get(variable)
    if named:
        yield named, None
        return
    server = getattr(importlib.import_module(module), server_class)()
    if announce:
        log(f"starting a throwaway {server.name} (tests.stack) ...")
    try:
        server.start()
        yield getattr(server, address), server
    finally:
        server.stop()
