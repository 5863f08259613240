"""`mrr serve`: help, refusing to start without a token, and a real uvicorn server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.support import TOKEN
from tests.ledger.factory import started
from tests.streams.test_cli_backends import mrr


def test_help_explains_the_command(tmp_path: Path) -> None:
    result = mrr(tmp_path, "serve", "--help")
    assert result.exit_code == 0
    for text in ("POST /v1/events", "/readyz", "MRR_API_TOKENS", "--insecure-no-auth", "429"):
        assert text in result.output


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    result = mrr(tmp_path, "serve")
    assert result.exit_code == 2
    assert "no API token configured" in result.stderr
    assert not (tmp_path / "data").exists()


def test_refuses_to_start_without_the_kafka_topic(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = mrr(tmp_path, "serve", MRR_API_TOKENS=TOKEN, MRR_KAFKA_BOOTSTRAP=kafka_bootstrap,
                 MRR_LEDGER_TOPIC="no-such-topic-here")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "mrr topics create" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serves_over_http(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRR_")}
    env |= {"MRR_API_TOKENS": f"other, {TOKEN}", "MRR_API_PORT": str(port),
            "MRR_DATA_DIR": str(tmp_path / "data"), "MRR_CONFIG": str(tmp_path / "absent.toml")}
    server = subprocess.Popen([str(Path(sys.executable).with_name("mrr")), "serve"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        response = httpx.post(f"{base}/v1/events", content=json.dumps(started("a")),
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
        assert httpx.post(f"{base}/v1/events", content=b"{}").status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert (tmp_path / "data" / "ledger.sqlite").exists()
