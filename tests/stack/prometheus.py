"""Prometheus from Debian's packages, with a given config, on a free loopback port."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.stack.base import ServerStartError, claim, free_port, spawn, stop_process, wait_until


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def api_query(base_url: str, promql: str, timeout: float = 10) -> dict:
    """Prometheus's whole answer to an instant query, also for a bad expression (HTTP 400/422
    carry `status: error` and the reason)."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


def query(base_url: str, promql: str) -> list[dict]:
    """The result vector of an instant query that must succeed."""
    body = api_query(base_url, promql)
    assert body["status"] == "success", body
    return body["data"]["result"]


class PrometheusServer:
    """`PrometheusServer(config_text_or_path).start()`; `.url` is `http://127.0.0.1:<port>`."""

    name = "Prometheus"

    def __init__(self, config: str | Path, workdir: Path | None = None, *,
                 attached: bool = True) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="mrr-prom-"))
        self.log = self.dir / "prometheus.log"
        self.config = config
        self.port = free_port()
        self.attached = attached
        self.proc = None
        if self._own_dir and attached:
            claim(self.dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config_file(self) -> Path:
        if isinstance(self.config, Path):
            return self.config.resolve()
        path = self.dir / "prometheus.yml"
        path.write_text(self.config)
        return path

    def start(self, timeout: float = 30.0) -> "PrometheusServer":
        binary = shutil.which("prometheus")
        if binary is None:
            self.stop()
            raise ServerStartError(self.name, "no `prometheus` on PATH: run `make provision`")
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [binary, f"--config.file={self._config_file()}",
               f"--storage.tsdb.path={self.dir / 'data'}",
               f"--web.listen-address=127.0.0.1:{self.port}",
               "--web.enable-lifecycle", "--log.level=info"]
        self.proc = spawn(cmd, self.log, cwd=self.dir, attached=self.attached)
        try:
            wait_until(lambda: http_ok(f"{self.url}/-/ready"), name=self.name, log=self.log,
                       timeout=timeout, proc=self.proc, interval=0.2)
        except BaseException:
            self.stop(keep_dir=True)
            raise
        return self

    def stop(self, keep_dir: bool = False) -> None:
        stop_process(self.proc)
        self.proc = None
        if self._own_dir and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
