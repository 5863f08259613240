"""What every server manager shares: free ports, log tails, waiting, starting and stopping.

A manager starts its server from nothing in a throwaway directory, waits until it answers, and
stops it. Whatever goes wrong while starting raises `ServerStartError` carrying the tail of the
server's own log, because "did not start" alone is never enough to fix anything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """A server did not come up; the message ends with the last lines of its log."""

    def __init__(self, name: str, reason: str, log: Path | None = None) -> None:
        text = f"{name} did not start: {reason}"
        if log is not None:
            text += f"\n--- last {LOG_TAIL_LINES} lines of {log} ---\n{tail(log)}"
        super().__init__(text)


def cache_dir() -> Path:
    """Where provision.sh puts downloads (outside the repository)."""
    default = Path.home() / ".cache" / "mrr-ledger"
    return Path(os.environ.get("MRR_STACK_CACHE") or default)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(data.splitlines()[-lines:]) or "(log is empty)"


def _attached(cmd: Sequence[str]) -> list[str]:
    # util-linux setpriv sets PR_SET_PDEATHSIG, kept across exec: the server gets SIGTERM when the
    # test process dies, even by kill -9, so an aborted run leaves no broker behind.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv else list(cmd)


def spawn(cmd: Sequence[str], log: Path, *, cwd: Path, env: dict[str, str] | None = None,
          attached: bool = True) -> subprocess.Popen:
    """Start `cmd` with stdout+stderr to `log`. Attached servers die with this process."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            _attached(cmd) if attached else list(cmd),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env, start_new_session=True,
        )


def wait_until(ready: Callable[[], bool], *, name: str, log: Path, timeout: float,
               proc: subprocess.Popen | None = None, interval: float = 0.1) -> None:
    """Poll `ready()` until true; fail early if `proc` exits, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(name, f"process exited with code {proc.returncode}", log)
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not ready yet; the log tells why if it never is
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(name, f"not ready after {timeout:.0f}s", log)
        time.sleep(interval)


def stop_process(proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it will not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """Stop a server this process did not start (the devstack's `down`)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


OWNER_FILE = ".owner"
DIR_PREFIXES = ("mrr-kafka-", "mrr-pg-", "mrr-prom-")


def claim(directory: Path) -> None:
    """Mark a throwaway server directory as this process's, for `reap_orphans`."""
    (directory / OWNER_FILE).write_text(str(os.getpid()))


def reap_orphans(tmp: Path | None = None) -> list[Path]:
    """Remove server directories whose test process is gone (killed before its teardown).

    Kafka and Prometheus die with their test process already; PostgreSQL daemonizes, so a
    postmaster still running in such a directory is stopped here first.
    """
    import tempfile

    reaped = []
    for directory in Path(tmp or tempfile.gettempdir()).iterdir():
        owner = directory / OWNER_FILE
        if not directory.name.startswith(DIR_PREFIXES) or not owner.is_file():
            continue
        try:
            if pid_alive(int(owner.read_text().strip())):
                continue
        except (OSError, ValueError):
            continue
        postmaster = directory / "data" / "postmaster.pid"
        if postmaster.is_file():
            try:
                stop_pid(int(postmaster.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        shutil.rmtree(directory, ignore_errors=True)
        reaped.append(directory)
    return reaped
