"""End to end with a real Prometheus: it scrapes `mrr exporter` and a real `mrr worker`, and its
HTTP API returns mrr_mrr equal to `mrr report kpis` to the cent and worker counters > 0; the
verify gauges are absent until `mrr verify` runs, then say 0 differences and the verify alerts'
expressions (deploy/prometheus/rules/business.yml) match nothing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import yaml

from tests.metrics.business import business, current_row, mrr_json
from tests.metrics.conftest import new_database
from tests.stack.prometheus import query
from tests.stack.base import free_port, spawn, tail
from tests.worker.support import MRR, new_topic, publish, start_worker, wait_caught_up

REPO = Path(__file__).resolve().parents[2]


async def wait_for(base_url: str, promql: str, timeout: float = 60) -> list[dict]:
    """Poll the Prometheus API until `promql` returns at least one series."""
    async with asyncio.timeout(timeout):
        while True:
            result = await asyncio.to_thread(query, base_url, promql)
            if result:
                return result
            await asyncio.sleep(0.5)


def prometheus_config(exporter_port: int, worker_port: int) -> str:
    return f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
  - job_name: worker
    static_configs:
      - targets: ["127.0.0.1:{worker_port}"]
"""


async def test_prometheus_scrapes_exporter_and_worker(
    tmp_path: Path, clean_env: dict[str, str], kafka_bootstrap: str, postgres_url: str,
    prometheus_server: Callable[[str], str],
) -> None:
    topic = await new_topic(kafka_bootstrap)
    database_url = await new_database(postgres_url)
    await publish(kafka_bootstrap, topic, business())
    worker_port, exporter_port = free_port(), free_port()
    worker = start_worker(tmp_path, kafka_bootstrap, database_url, topic,
                          extra_env={"MRR_METRICS_PORT": str(worker_port), "MRR_METRICS_HOST": "127.0.0.1"})
    env = {**clean_env, "MRR_DATABASE_URL": database_url, "MRR_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "MRR_LEDGER_TOPIC": topic}
    exporter_log = tmp_path / "exporter.log"
    exporter = spawn([MRR, "exporter", "--port", str(exporter_port), "--host", "127.0.0.1",
                      "--refresh-seconds", "1"], exporter_log, cwd=tmp_path, env=env)
    try:
        await wait_caught_up(kafka_bootstrap, topic, database_url, [worker])
        report = current_row(mrr_json(env, tmp_path, "kpis", "--period", "month"))
        base = prometheus_server(prometheus_config(exporter_port, worker_port))
        try:
            mrr = await wait_for(base, 'mrr_mrr{job="exporter", currency="USD"}')
            applied = await wait_for(base, 'mrr_worker_events_applied_total{job="worker"} > 0')
        except TimeoutError:
            raise AssertionError(f"exporter:\n{tail(exporter_log)}\nworker:\n{worker.tail()}") from None
        assert float(mrr[0]["value"][1]) == float(report["mrr"])
        assert round(float(mrr[0]["value"][1]) * 100) == round(float(report["mrr"]) * 100) == 45900
        assert float(applied[0]["value"][1]) == 13
        assert await wait_for(base, 'absent(mrr_verify_timestamp_seconds{job="exporter"})')
        assert not await asyncio.to_thread(query, base, "mrr_verify_differences")
        for promql in ('mrr_worker_batches_total{job="worker"} > 0',
                       'mrr_worker_events_consumed_total{job="worker"} > 0',
                       'mrr_worker_event_time_lag_seconds_count{job="worker"} > 0',
                       'mrr_worker_batch_duration_seconds_count{job="worker"} > 0',
                       'mrr_worker_last_commit_timestamp_seconds{job="worker"} > 0',
                       'sum(mrr_worker_consumer_lag_records{job="worker"}) == 0',  # refreshed while idle
                       'mrr_movements_month_to_date{job="exporter", type="churn"} < 0',
                       'mrr_metrics_snapshot_age_seconds{job="exporter"} < 30'):
            assert await wait_for(base, promql, timeout=30), promql

        before = time.time()
        verify = await asyncio.to_thread(subprocess.run, [MRR, "verify"], env=env, cwd=tmp_path,
                                         capture_output=True, text=True, timeout=300)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert await wait_for(base, 'mrr_verify_differences{job="exporter"} == 0', timeout=30)
        [stamp] = await wait_for(base, 'mrr_verify_timestamp_seconds{job="exporter"}', timeout=30)
        assert before - 1 <= float(stamp["value"][1]) <= time.time()
        rules = yaml.safe_load((REPO / "deploy/prometheus/rules/business.yml").read_text())
        verify_alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]
                         if r.get("alert", "").startswith("MrrVerify")}
        assert set(verify_alerts) == {"MrrVerifyFoundDifferences", "MrrVerifyStale"}
        for name, expr in verify_alerts.items():
            assert await asyncio.to_thread(query, base, expr) == [], name
    finally:
        if exporter.poll() is None:
            exporter.send_signal(signal.SIGTERM)
        assert exporter.wait(15) == 0, tail(exporter_log)
        assert worker.terminate() == 0, worker.tail()
