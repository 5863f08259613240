"""`mrr serve --metrics`: the business gauges of `mrr exporter` at `GET /metrics` of the API."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_cli_serve import free_port
from tests.metrics.business import business, current_row, ingest_events, jsonl, mrr_json
from tests.worker.support import MRR


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def serve(env: dict[str, str], cwd: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen([MRR, "serve", "--port", str(port), *flags],
                              env=env | {"MRR_API_TOKENS": "s3cret"}, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise AssertionError(server.communicate()[0].decode()) from None
            time.sleep(0.1)


def test_serve_exports_the_business_gauges(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = clean_env | {"MRR_CONFIG": str(tmp_path / "absent.toml")}
    ingest_events(env, tmp_path, jsonl(business()))
    kpis = current_row(mrr_json(env, tmp_path, "kpis", "--period", "month"))

    server, base = serve(env, tmp_path, "--metrics")
    try:
        deadline = time.monotonic() + 30
        while True:  # the first snapshot is read in the background right after startup
            response = httpx.get(f"{base}/metrics")  # no token: unauthenticated like /healthz
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain")
            got = samples(response.text)
            if ("mrr_mrr", (("currency", "USD"),)) in got or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0].decode()
    assert got[("mrr_mrr", (("currency", "USD"),))] == float(kpis["mrr"]), output
    assert got[("mrr_active_customers", ())] == kpis["customers"] == 5
    assert ("mrr_metrics_snapshot_age_seconds", ()) in got
    assert "Application shutdown complete" in output, output  # the refresher stops cleanly


def test_serve_has_no_metrics_by_default(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = clean_env | {"MRR_CONFIG": str(tmp_path / "absent.toml")}
    server, base = serve(env, tmp_path)
    try:
        assert httpx.get(f"{base}/metrics").status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
