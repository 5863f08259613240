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


ONE_SHOT = {"migrate", "topics"}
MRR_SERVICES = {"migrate": ["db", "upgrade"], "topics": ["topics", "create"], "worker": ["worker"],
                "api": ["serve"], "exporter": ["exporter"]}


def test_the_whole_system_is_there() -> None:
    assert {"kafka", "postgres", "prometheus", "grafana", *MRR_SERVICES} <= SERVICES.keys()
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{kafka_version()}", "same Kafka as tests"
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    for name, subcommand in MRR_SERVICES.items():
        command = SERVICES[name]["command"]
        assert command[:1 + len(subcommand)] == ["mrr", *subcommand], name
        assert SERVICES[name].get("build"), f"{name}: not built from this repo"
    assert "--metrics-port" in SERVICES["worker"]["command"]


def mrr_options(subcommand: list[str]) -> tuple[set[str], str]:
    """The option names of `mrr <subcommand>` and its help text, from click itself."""
    from click.testing import CliRunner

    from streams.cli.main import cli

    result = CliRunner().invoke(cli, [*subcommand, "--help"])
    assert result.exit_code == 0, f"mrr {' '.join(subcommand)} --help: {result.output}"
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", result.output)), result.output


@pytest.mark.parametrize("name", sorted(MRR_SERVICES))
def test_mrr_services_use_real_subcommands_and_options(name: str) -> None:
    service = SERVICES[name]
    subcommand = MRR_SERVICES[name]
    args = service["command"][1 + len(subcommand):]
    options, help_text = mrr_options(subcommand)
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=")[0] in options, f"{name}: mrr {' '.join(subcommand)} has no {arg}"
    # Every MRR_* variable the service sets is one the settings (streams/config.py) read.
    from streams.config import Config

    fields = {f.upper() for f in Config.__struct_fields__}
    for var in service.get("environment") or {}:
        if var.startswith("MRR_"):
            assert var.removeprefix("MRR_") in fields, f"{name}: {var} is no setting"


def test_services_are_configured_for_kafka_and_postgres() -> None:
    env = {name: SERVICES[name].get("environment") or {} for name in MRR_SERVICES}
    kafka_internal = "kafka:29092"
    assert f"INTERNAL://{kafka_internal}" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name in ("topics", "worker", "api"):
        assert env[name]["MRR_KAFKA_BOOTSTRAP"] == kafka_internal, name
    urls = {env[name]["MRR_DATABASE_URL"] for name in ("migrate", "worker", "exporter")}
    assert len(urls) == 1, "migrate, worker and exporter must use one database"
    assert "@postgres:5432/mrr" in urls.pop()
    assert env["api"]["MRR_API_TOKENS"].startswith("${MRR_API_TOKENS"), "the token comes from the environment"
    assert "--insecure-no-auth" not in SERVICES["api"]["command"]


def test_one_shot_jobs_gate_the_long_running_services() -> None:
    for name in ONE_SHOT:
        assert str(SERVICES[name].get("restart", "no")) == "no", f"{name} must run once"
        assert not has_healthcheck(SERVICES[name]), name
    assert {"migrate", "topics"} <= depends_on(SERVICES["worker"]).keys()
    assert "migrate" in depends_on(SERVICES["exporter"])
    assert "topics" in depends_on(SERVICES["api"])
    assert {"worker", "exporter"} <= depends_on(SERVICES["prometheus"]).keys()
    assert {"prometheus", "postgres"} <= depends_on(SERVICES["grafana"]).keys()


def test_every_dependency_waits_for_a_health_check() -> None:
    depended_on = {dep for s in SERVICES.values() for dep in depends_on(s)}
    for name, service in SERVICES.items():
        for dep, spec in depends_on(service).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            if dep in ONE_SHOT:  # a job: wait for it to finish with status 0
                assert spec.get("condition") == "service_completed_successfully", f"{name} -> {dep}"
                continue
            assert has_healthcheck(SERVICES[dep]), f"{name} depends on {dep}: no healthcheck"
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}: not gated"
        # A service without a health check must at least be a leaf nobody waits for (or a job).
        assert has_healthcheck(service) or name not in depended_on or name in ONE_SHOT, name


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
    scraped = {t.rsplit(":", 1)[0] for job in config["scrape_configs"]
               for static in job.get("static_configs", []) for t in static["targets"]}
    assert {"worker", "exporter"} <= scraped
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


def test_prometheus_mounts_its_rules_directory() -> None:
    """deploy/prometheus/rules is mounted where prometheus.yml's rule_files (relative to the
    config file, /etc/prometheus) look for them."""
    prometheus = SERVICES["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"] if v.startswith("./"))
    assert mounts.get("./deploy/prometheus/rules") == "/etc/prometheus/rules"
    assert mounts.get("./deploy/prometheus/prometheus.yml") == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    for pattern in config.get("rule_files") or []:
        path = pattern if pattern.startswith("/") else f"/etc/prometheus/{pattern}"
        assert path.startswith("/etc/prometheus/rules/"), f"rule_files {pattern} is not mounted"


def test_grafana_provisioning_is_consistent() -> None:
    grafana = SERVICES["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    provisioning = REPO / next(s for s, t in mounts.items() if t == "/etc/grafana/provisioning")
    datasources = [d for f in sorted((provisioning / "datasources").glob("*.yml"))
                   for d in yaml.safe_load(f.read_text())["datasources"]]
    uids = {d["uid"] for d in datasources}
    assert any("prometheus:9090" in d["url"] for d in datasources)
    postgres = [d for d in datasources if d["type"] == "grafana-postgresql-datasource"]
    assert len(postgres) == 1 and postgres[0]["url"] == "postgres:5432"
    assert postgres[0]["jsonData"]["database"] == SERVICES["postgres"]["environment"]["POSTGRES_DB"]
    # Its read-only role is created by the init script the postgres service mounts.
    pg_mounts = dict(v.split(":")[:2] for v in SERVICES["postgres"]["volumes"] if v.startswith("./"))
    init = REPO / next(s for s, t in pg_mounts.items() if t == "/docker-entrypoint-initdb.d")
    init_sql = "\n".join(f.read_text() for f in sorted(init.glob("*.sql")))
    assert f"CREATE ROLE {postgres[0]['user']} LOGIN PASSWORD '{postgres[0]['secureJsonData']['password']}'" \
        in init_sql
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
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        source = next(s for s, t in mounts.items() if home.startswith(t + "/"))
        assert (REPO / source / home.rsplit("/", 1)[1]).is_file(), home
