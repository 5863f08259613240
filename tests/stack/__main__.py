"""The devstack: the test servers, kept running in the background for a human.

    python -m tests.stack up       # start Kafka, PostgreSQL, Prometheus; print `export ...` lines
    python -m tests.stack status   # what runs where
    python -m tests.stack down     # stop them and delete their data
    python -m tests.stack restart-postgres   # what MRR_POSTGRES_RESTART_CMD runs for the tests

`eval "$(python -m tests.stack up)"` points this shell (and the tests, which then use these
servers instead of starting their own) at them. Everything lives in `.devstack/` (gitignored).
Prometheus scrapes itself and the targets in MRR_METRICS_TARGETS (default 127.0.0.1:9108).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from tests.stack.base import ServerStartError, pid_alive, stop_pid
from tests.stack.kafka import KafkaServer
from tests.stack.postgres import PostgresServer
from tests.stack.prometheus import PrometheusServer

ROOT = Path(__file__).resolve().parents[2] / ".devstack"
STATE = ROOT / "state.json"


def prometheus_config() -> str:
    targets = os.environ.get("MRR_METRICS_TARGETS", "127.0.0.1:9108").split(",")
    listed = ", ".join(f'"{t.strip()}"' for t in targets if t.strip())
    return f"""\
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{{port}}"]
  - job_name: mrr
    static_configs:
      - targets: [{listed}]
"""


def load_state() -> dict | None:
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return None


def alive(state: dict) -> dict[str, bool]:
    return {name: bool(s.get("pid")) and pid_alive(s["pid"]) for name, s in state.items()
            if isinstance(s, dict)}


def exports(state: dict) -> str:
    repo = shlex.quote(str(ROOT.parent))
    restart = f"cd {repo} && {shlex.quote(sys.executable)} -m tests.stack restart-postgres"
    return (f"export MRR_KAFKA_BOOTSTRAP={state['kafka']['bootstrap']}\n"
            f"export MRR_DATABASE_URL={state['postgres']['url']}\n"
            f"export MRR_POSTGRES_RESTART_CMD={shlex.quote(restart)}\n"
            f"# Prometheus: {state['prometheus']['url']}")


def up() -> int:
    state = load_state()
    if state and all(alive(state).values()):
        print("devstack already running", file=sys.stderr)
        print(exports(state))
        return 0
    if state:
        down()
    ROOT.mkdir(exist_ok=True)
    started: list = []
    try:
        print("starting Kafka ...", file=sys.stderr)
        kafka = KafkaServer(ROOT / "kafka", attached=False).start()
        started.append(kafka)
        print("starting PostgreSQL ...", file=sys.stderr)
        pg = PostgresServer(ROOT / "postgres", attached=False).start()
        started.append(pg)
        print("starting Prometheus ...", file=sys.stderr)
        prom = PrometheusServer("", ROOT / "prometheus", attached=False)
        prom.config = prometheus_config().replace("{port}", str(prom.port))
        prom.start()
        started.append(prom)
    except ServerStartError as exc:
        print(exc, file=sys.stderr)
        for server in reversed(started):
            server.stop()
        return 1
    state = {
        "kafka": {"pid": kafka.proc.pid, "bootstrap": kafka.bootstrap, "log": str(kafka.log)},
        "postgres": {"pid": pg.pid, "url": pg.url, "port": pg.port, "log": str(pg.log)},
        "prometheus": {"pid": prom.proc.pid, "url": prom.url, "log": str(prom.log)},
    }
    STATE.write_text(json.dumps(state, indent=2))
    print(exports(state))
    return 0


def down() -> int:
    state = load_state() or {}
    if "postgres" in state:
        pg = PostgresServer(ROOT / "postgres")
        pg.started = True
        pg.stop()
    for name in ("kafka", "prometheus"):
        if state.get(name, {}).get("pid"):
            stop_pid(state[name]["pid"], timeout=30)
    shutil.rmtree(ROOT, ignore_errors=True)
    print("devstack stopped" if state else "devstack was not running", file=sys.stderr)
    return 0


def restart_postgres() -> int:
    state = load_state()
    if not state or "postgres" not in state:
        print("devstack not running", file=sys.stderr)
        return 1
    pg = PostgresServer(ROOT / "postgres", attached=False)
    pg.port, pg.started = state["postgres"]["port"], True
    try:
        pg.restart()
    except ServerStartError as exc:
        print(exc, file=sys.stderr)
        return 1
    state["postgres"]["pid"] = pg.pid
    STATE.write_text(json.dumps(state, indent=2))
    return 0


def status() -> int:
    state = load_state()
    if not state:
        print("devstack not running (python -m tests.stack up)")
        return 1
    running = alive(state)
    for name, info in state.items():
        where = info.get("bootstrap") or info.get("url")
        print(f"{name:<11} {'up' if running[name] else 'DOWN':<5} pid {info['pid']:<8} {where}"
              f"  log {info['log']}")
    print(exports(state))
    return 0 if all(running.values()) else 1


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status, "restart-postgres": restart_postgres}
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
