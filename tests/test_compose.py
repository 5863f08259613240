"""docker-compose.yml and deploy/ are checked here, since no test run has a Docker engine:
health checks gate every dependency, everything mounted or built exists in the repo, ports are
sane and loopback-only, and the Prometheus/Grafana provisioning points at real things."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.stack.kafka import kafka_version

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable") and check["test"] != ["NONE"]


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def test_the_whole_system_is_there() -> None:
    assert {"kafka", "postgres", "prometheus", "grafana", "worker"} <= SERVICES.keys()
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{kafka_version()}", "same Kafka as tests"
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["worker"]["command"] == ["mrr", "worker"]


def test_every_dependency_waits_for_a_health_check() -> None:
    depended_on = {dep for s in SERVICES.values() for dep in depends_on(s)}
    for name, service in SERVICES.items():
        for dep, spec in depends_on(service).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            assert has_healthcheck(SERVICES[dep]), f"{name} depends on {dep}: no healthcheck"
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}: not gated"
        # A service without a health check must at least be a leaf nobody waits for.
        assert has_healthcheck(service) or name not in depended_on, name


def test_everything_mounted_or_built_exists_in_the_repo() -> None:
    named = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (REPO / source).resolve().exists(), f"{name}: {source} missing"
                assert (REPO / source).resolve().is_relative_to(REPO), f"{name}: {source}"
            else:
                assert source in named, f"{name}: volume {source} not declared"
        build = service.get("build")
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = REPO / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert context.is_dir() and dockerfile.is_file(), name
            for line in dockerfile.read_text().splitlines():
                if match := re.match(r"\s*(?:COPY|ADD)\s+(?!--from)(.+)", line):
                    *sources, _dest = match.group(1).split()
                    for src in sources:
                        assert (context / src).exists(), f"{dockerfile.name}: COPY {src} missing"


def test_ports_are_sane_and_loopback_only() -> None:
    published: dict[int, str] = {}
    for name, service in SERVICES.items():
        for port in service.get("ports") or []:
            match = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/(tcp|udp))?", str(port))
            assert match, f"{name}: unparsable port {port!r}"
            ip, host, container = match.group(1), int(match.group(2)), int(match.group(3))
            assert ip == "127.0.0.1", f"{name}: {port} is published beyond loopback"
            assert 1024 <= host <= 65535 and 1 <= container <= 65535, f"{name}: {port}"
            assert host not in published, f"{name} and {published.get(host)} both publish {host}"
            published[host] = name
        for port in service.get("expose") or []:
            assert 1 <= int(port) <= 65535, f"{name}: expose {port}"


def test_prometheus_scrapes_services_that_exist() -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                if host == "localhost":
                    continue
                assert host in SERVICES, f"{job['job_name']}: no service {host}"
                service = SERVICES[host]
                ports = {str(p) for p in service.get("expose") or []}
                ports |= {str(p).split(":")[-1].split("/")[0] for p in service.get("ports") or []}
                assert port in ports, f"{target}: {host} does not expose {port}"


@pytest.mark.prometheus
def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run `make provision`"
    result = subprocess.run([promtool, "check", "config", "deploy/prometheus/prometheus.yml"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_is_consistent() -> None:
    grafana = SERVICES["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    provisioning = REPO / next(s for s, t in mounts.items() if t == "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in sources["datasources"]}
    assert any("prometheus:9090" in d["url"] for d in sources["datasources"])
    providers = yaml.safe_load((provisioning / "dashboards/mrr.yml").read_text())["providers"]
    dashboards = []
    for provider in providers:
        source = next(s for s, t in mounts.items() if t == provider["options"]["path"])
        dashboards += sorted((REPO / source).glob("*.json"))
    assert dashboards, "no dashboard JSON provisioned"
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"], path.name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
