"""pytest plugin: real Kafka, PostgreSQL and Prometheus for the tests that ask for them.

Registered in pyproject.toml (`-p tests.stack.plugin`). Servers start lazily, once per session,
the first time a test requests their fixture, and stop at the end of the session:

- `kafka_bootstrap`: "host:port" of a KRaft broker (or `MRR_KAFKA_BOOTSTRAP`);
- `postgres_url`: `postgresql+asyncpg://...` SQLAlchemy URL (or `MRR_DATABASE_URL`);
- `restart_postgres`: call it to stop and start that server (same port, same data);
  against `MRR_DATABASE_URL` it runs the shell command in `MRR_POSTGRES_RESTART_CMD`;
- `prometheus_server`: factory, `prometheus_server(config_text_or_path) -> "http://..."`.

A server that is missing or does not start fails the test with the server's log tail: never a
skip, so a broken stack can not pass for a green run. Tests using these fixtures get the
`kafka` / `postgres` / `prometheus` markers automatically (`make test-unit` deselects them).
"""

from __future__ import annotations

import atexit
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from tests.stack.base import ServerStartError, port_open, reap_orphans
from tests.stack.kafka import KafkaServer, check_broker
from tests.stack.postgres import PostgresServer
from tests.stack.prometheus import PrometheusServer

FIXTURE_MARKERS = {
    "kafka_bootstrap": "kafka",
    "postgres_url": "postgres",
    "restart_postgres": "postgres",
    "prometheus_server": "prometheus",
}


class Stack:
    """The servers this session started, so that they are stopped exactly once."""

    def __init__(self) -> None:
        self.servers: list = []
        reap_orphans()
        atexit.register(self.stop_all)  # also on an interrupted session

    def start(self, server):
        try:
            server.start()
        except ServerStartError as exc:
            failure = str(exc)
        else:
            self.servers.append(server)
            return server
        pytest.fail(failure, pytrace=False)  # outside `except`: no chained traceback noise

    def stop_all(self) -> None:
        while self.servers:
            self.servers.pop().stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & FIXTURE_MARKERS.keys():
            item.add_marker(FIXTURE_MARKERS[fixture])


@pytest.fixture(scope="session")
def mrr_stack():
    stack = Stack()
    yield stack
    stack.stop_all()


@pytest.fixture(scope="session")
def kafka_bootstrap(mrr_stack: Stack) -> str:
    external = os.environ.get("MRR_KAFKA_BOOTSTRAP")
    if not external:
        return mrr_stack.start(KafkaServer()).bootstrap
    try:
        problem = None if check_broker(external, timeout=15) else "lists no broker"
    except Exception as exc:  # noqa: BLE001 - reported below
        problem = f"does not answer: {exc!r}"
    if problem:
        pytest.fail(f"MRR_KAFKA_BOOTSTRAP={external} {problem}", pytrace=False)
    return external


@pytest.fixture(scope="session")
def _postgres(mrr_stack: Stack) -> PostgresServer | str:
    external = os.environ.get("MRR_DATABASE_URL")
    if external:
        from sqlalchemy.engine import make_url

        url = make_url(external)
        if not port_open(url.port or 5432, url.host or "127.0.0.1"):
            pytest.fail(f"MRR_DATABASE_URL={external}: nothing listens there", pytrace=False)
        return external
    try:
        server = PostgresServer()
    except ServerStartError as exc:  # no PostgreSQL binaries at all
        failure = str(exc)
    else:
        return mrr_stack.start(server)
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def postgres_url(_postgres: PostgresServer | str) -> str:
    return _postgres if isinstance(_postgres, str) else _postgres.url


@pytest.fixture()
async def fresh_database(postgres_url: str):
    """The URL of a new, empty database on the test server; dropped (forcibly) afterwards."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_url.rpartition("/")
    yield f"{base}/{name}"
    await admin.dispose()  # the test may have restarted the server: start from new connections
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session")
def restart_postgres(_postgres: PostgresServer | str) -> Callable[..., None]:
    """`restart_postgres(down_for=0.0)`: stop the server, keep it down that long, start it."""

    def restart(down_for: float = 0.0) -> None:
        if isinstance(_postgres, PostgresServer):
            try:
                return _postgres.restart(down_for=down_for)
            except ServerStartError as exc:
                failure = str(exc)
            pytest.fail(failure, pytrace=False)
        command = os.environ.get("MRR_POSTGRES_RESTART_CMD")
        if not command:
            pytest.fail("MRR_DATABASE_URL is an external server: set MRR_POSTGRES_RESTART_CMD "
                        "(e.g. `docker compose restart postgres`) to restart it", pytrace=False)
        # An external server's restart command decides how long it is down.
        subprocess.run(command, shell=True, check=True, timeout=120)

    return restart


@pytest.fixture(scope="session")
def prometheus_server(mrr_stack: Stack) -> Callable[[str | Path], str]:
    """`prometheus_server(config)`: a new Prometheus with that config (YAML text or a path)."""

    def start(config: str | Path) -> str:
        return mrr_stack.start(PrometheusServer(config)).url

    return start

