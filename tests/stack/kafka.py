"""Apache Kafka, one KRaft node (broker + controller), from the jars provision.sh fetched."""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.stack.base import (
    ServerStartError, claim, cache_dir, free_port, port_open, spawn, stop_process, wait_until,
)

POM = Path(__file__).with_name("kafka-pom.xml")
# Modest on purpose: the test machine has 2 cores and other test runs beside this one.
JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]

LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.raft=WARN
"""


def kafka_version() -> str:
    """The version pinned in kafka-pom.xml, the single place it is written."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=ns)


def kafka_libs() -> Path:
    return cache_dir() / f"kafka-{kafka_version()}" / "libs"


def server_properties(log_dirs: Path, port: int, controller_port: int) -> str:
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={log_dirs}
# Topics are created by the project's admin code, never by a stray produce or fetch.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
"""


def _run_async(coro, timeout: float = 10.0):
    """Run a coroutine on its own loop in its own thread (a caller's loop may be running)."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(asyncio.wait_for(coro, timeout))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if "error" in box:
        raise box["error"]
    return box.get("value")


async def broker_answers(bootstrap: str) -> bool:
    """True once a metadata request lists a broker: the node is up and unfenced."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    finally:
        await client.close()


def check_broker(bootstrap: str, timeout: float = 10.0) -> bool:
    return bool(_run_async(broker_answers(bootstrap), timeout))


class KafkaServer:
    """`KafkaServer().start()`; `.bootstrap` is `127.0.0.1:<port>`; `.stop()` removes everything."""

    name = "Kafka"

    def __init__(self, workdir: Path | None = None, *, attached: bool = True) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="mrr-kafka-"))
        self.log = self.dir / "kafka.log"
        self.port = free_port()
        self.controller_port = free_port()
        self.attached = attached
        self.proc = None
        if self._own_dir and attached:
            claim(self.dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "KafkaServer":
        libs, java = kafka_libs(), shutil.which("java")
        if not (libs / ".complete").is_file() or java is None:
            self.stop()
            missing = "`java` on PATH" if java is None else f"Kafka jars in {libs}"
            raise ServerStartError(self.name, f"no {missing}: run `make provision`")
        self.dir.mkdir(parents=True, exist_ok=True)
        props, log4j = self.dir / "server.properties", self.dir / "log4j.properties"
        props.write_text(server_properties(self.dir / "data", self.port, self.controller_port))
        log4j.write_text(LOG4J)
        base = [java, *JVM_OPTS, f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{libs}/*"]
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        fmt = spawn([*base, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                     "-c", str(props), "--ignore-formatted"], self.log, cwd=self.dir)
        if fmt.wait(60) != 0:
            raise ServerStartError(self.name, f"storage format exited {fmt.returncode}", self.log)
        self.proc = spawn([*base, "kafka.Kafka", str(props)], self.log, cwd=self.dir,
                          attached=self.attached)
        try:
            wait_until(lambda: port_open(self.port), name=self.name, log=self.log,
                       timeout=timeout, proc=self.proc)
            wait_until(lambda: check_broker(self.bootstrap), name=self.name, log=self.log,
                       timeout=timeout, proc=self.proc, interval=0.3)
        except BaseException:
            self.stop(keep_dir=True)
            raise
        return self

    def stop(self, keep_dir: bool = False) -> None:
        stop_process(self.proc, timeout=30)
        self.proc = None
        if self._own_dir and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "KafkaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
