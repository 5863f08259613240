"""PostgreSQL from Debian's packages, in a throwaway data directory on a free loopback port.

`initdb` and `pg_ctl` refuse to run as root, so as root they run through `runuser -u postgres`
and the directory is handed to that user. Durability is switched off: the data is thrown away.
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
import subprocess
import tempfile
from pathlib import Path

from tests.stack.base import ServerStartError, claim, free_port, port_open, wait_until

DATABASE = "mrr"
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
}


def pg_bindir() -> Path:
    """The newest /usr/lib/postgresql/<ver>/bin holding initdb (Debian keeps them off PATH)."""
    root = Path(os.environ.get("MRR_PG_ROOT", "/usr/lib/postgresql"))
    found = sorted((p.parent for p in root.glob("*/bin/initdb")),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise ServerStartError("PostgreSQL", f"no {root}/<ver>/bin/initdb: run `make provision`")
    return found[-1]


class PostgresServer:
    """`PostgresServer().start()`; `.url` is the asyncpg SQLAlchemy URL; `.restart()` keeps data."""

    name = "PostgreSQL"

    def __init__(self, workdir: Path | None = None, *, attached: bool = True) -> None:
        self.bin = pg_bindir()  # first: raises before anything is created
        self._own_dir = workdir is None
        self.attached = attached
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="mrr-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        self.started = False
        if self._own_dir and attached:
            claim(self.dir)  # pg_ctl daemonizes: reap_orphans() stops it if we die first

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        with open(self.log, "ab") as out:
            return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                  stdin=subprocess.DEVNULL, timeout=timeout)

    def _check(self, what: str, proc: subprocess.CompletedProcess) -> None:
        if proc.returncode != 0:
            raise ServerStartError(self.name, f"{what} exited {proc.returncode}", self.log)

    def start(self, timeout: float = 60.0) -> "PostgresServer":
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            for path in (self.dir, self.log):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            self._check("initdb", self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync"))
        self._start_server(timeout)
        if fresh:
            self._check("createdb", self._run(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE))
        return self

    def _start_server(self, timeout: float) -> None:
        opts = " ".join(f"-c {k}={v}" for k, v in SETTINGS.items())
        opts += f" -p {self.port} -c unix_socket_directories=''"  # TCP only: no socket path limits
        started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts,
                            "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10)
        self._check("pg_ctl start", started)
        self.started = True
        wait_until(lambda: port_open(self.port), name=self.name, log=self.log, timeout=10)

    def stop(self, keep_dir: bool = False) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.started = False
        if self._own_dir and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, timeout: float = 60.0, down_for: float = 0.0) -> None:
        """Stop, stay down `down_for` seconds, start again: same port, same data; every open
        connection is cut."""
        self.stop(keep_dir=True)
        time.sleep(down_for)
        self._start_server(timeout)

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
