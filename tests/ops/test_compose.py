"""deploy/compose.yaml checked statically (no registry here to pull its images): the services, their health checks
and volumes, every WHISK_* variable against whisk/config.py, the backends' addresses against the services, and the
nginx service's template rendered the way the official image does it, then checked by Debian's nginx."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import missing
from tests.support.nginx import NGINX, available
from whisk.api.app import BODY_MARGIN, PEKKO_MAX_BODY
from whisk.config import Settings, variables

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
WHISK_SERVICES = {"controller0": ("controller", 0), "controller1": ("controller", 1),
                  "invoker0": ("invoker", 0), "invoker1": ("invoker", 1)}
BACKENDS = {"kafka": ("apache/kafka:", 9092), "couchdb": ("couchdb:", 5984), "consul": ("hashicorp/consul:", 8500)}
MONITORING = {"prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")
_ENVSUBST_FILTER = re.compile(r"^WHISK_NGINX_")


def interpolate(value: Any) -> Any:
    """Compose's ${VAR} / ${VAR:-default} with an empty environment: what an operator gets with no .env."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def test_the_services_of_the_architecture(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"nginx", *WHISK_SERVICES, *BACKENDS, *MONITORING}
    for name, service in services.items():
        assert "test" in service.get("healthcheck", {}), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name
    assert services["nginx"]["image"].startswith("nginx:")
    for name, (image, _) in BACKENDS.items():
        assert services[name]["image"].startswith(image), services[name]["image"]
    for name, image in MONITORING.items():
        assert services[name]["image"].startswith(image), services[name]["image"]
    for name in WHISK_SERVICES:
        assert services[name]["image"] == "whisk/whisk:latest"
        assert services[name]["init"] is True
        deps = services[name]["depends_on"]
        assert {d: deps[d]["condition"] for d in deps} == dict.fromkeys(BACKENDS, "service_healthy")
        assert "/health" in " ".join(services[name]["healthcheck"]["test"])


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    mounts = {"kafka": "/var/lib/kafka/data", "couchdb": "/opt/couchdb/data", "consul": "/consul/data"}
    for name, path in mounts.items():
        volumes = {v.split(":")[1]: v.split(":")[0] for v in compose["services"][name]["volumes"]}
        assert volumes.get(path) in declared, f"{name}: {path} is not on a named volume"
    kafka = environment(compose["services"]["kafka"])
    assert kafka["KAFKA_LOG_DIRS"] == mounts["kafka"]
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"] and "controller" in kafka["KAFKA_PROCESS_ROLES"]   # KRaft
    assert "-data-dir=/consul/data" in compose["services"]["consul"]["command"]


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists() or source == "./tls", f"{name}: {source} is missing"


def test_whisk_settings_are_valid_and_consistent(compose: dict[str, Any]) -> None:
    known = {name for name, _field, _default in variables()}
    services = compose["services"]
    for name, (role, instance) in WHISK_SERVICES.items():
        env = environment(services[name])
        unknown = {k for k in env if k.startswith("WHISK_") and k not in known}
        assert not unknown, f"{name}: not settings of whisk/config.py: {sorted(unknown)}"
        settings = Settings.from_env(env)          # every value parses as whisk itself would parse it
        assert (settings.role, settings.instance) == (role, instance)
        assert settings.host == "0.0.0.0"
        # Each backend URL names a service of this file, at the port that service listens on.
        for url, backend in ((settings.store_url, "couchdb"), (settings.bus_url, "kafka"),
                             (settings.discovery_url, "consul")):
            parts = urlsplit(url)
            assert (parts.hostname, parts.port) == (backend, BACKENDS[backend][1]), f"{name}: {url}"
        if role == "invoker":
            assert settings.containers_url == "docker:///var/run/docker.sock"
            mounts = dict(v.split(":")[:2] for v in services[name]["volumes"])
            assert mounts["/var/run/docker.sock"] == "/var/run/docker.sock"
            # The socket folders of action containers: the same path on the host and in the invoker.
            assert mounts[env["TMPDIR"]] == env["TMPDIR"]
            # Actions' calls go to a controller's actions port, naming their containers (api/actions_port.py).
            upstream = urlsplit(settings.docker_api_upstream)
            controller = Settings.from_env(environment(services[upstream.hostname]))
            assert controller.runs_controller and upstream.port == controller.actions_port != controller.port
            assert settings.docker_api_proxy_protocol
    couch = environment(services["couchdb"])
    store = urlsplit(Settings.from_env(environment(services["controller0"])).store_url)
    assert (store.username, store.password) == (couch["COUCHDB_USER"], couch["COUCHDB_PASSWORD"])
    instances = [(r, i) for r, i in WHISK_SERVICES.values()]
    assert len(set(instances)) == len(instances)
    bootstrap = [n for n in WHISK_SERVICES if environment(services[n]).get("WHISK_BOOTSTRAP_USERS") == "true"]
    assert bootstrap == ["controller0"]              # one controller seeds the users, so that none races another


def test_nginx_fronts_every_controller(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["nginx"])
    upstreams = re.findall(r"server\s+([\w.-]+):(\d+)", env["WHISK_NGINX_UPSTREAM_SERVERS"])
    controllers = {n for n, (role, _) in WHISK_SERVICES.items() if role == "controller"}
    assert {host for host, _ in upstreams} == controllers
    for host, port in upstreams:
        assert environment(compose["services"][host])["WHISK_PORT"] == port
    template = (REPO / "config" / "nginx" / "whisk.conf.template").read_text()
    wanted = set(re.findall(r"\$\{(WHISK_NGINX_\w+)\}", template))
    assert wanted <= set(env), f"placeholders without a value: {sorted(wanted - set(env))}"
    assert ("443" in env["WHISK_NGINX_HTTPS_LISTEN"]) and any(p.endswith(":443") for p in
                                                              compose["services"]["nginx"]["ports"])


async def test_nginx_service_config_renders_and_passes_nginx_t(compose: dict[str, Any]) -> None:
    """Render the template as the official image does (envsubst limited to WHISK_NGINX_*), with the controllers'
    names swapped for a loopback address (they do not resolve here), and let Debian's nginx check the result."""
    envsubst = shutil.which("envsubst")
    if not available() or envsubst is None:
        missing("nginx and envsubst (Debian's nginx and gettext-base)")
    env = environment(compose["services"]["nginx"])
    root = Path(tempfile.mkdtemp(prefix="whisk-compose-nginx-"))
    try:
        proc = await asyncio.create_subprocess_exec("sh", str(REPO / "config" / "nginx" / "make-cert.sh"),
                                                    str(root / "tls"), stdout=asyncio.subprocess.DEVNULL)
        assert await proc.wait() == 0
        values = {k: v for k, v in env.items() if _ENVSUBST_FILTER.search(k)}
        values |= {"WHISK_NGINX_CERT": str(root / "tls" / "cert.pem"), "WHISK_NGINX_KEY": str(root / "tls" / "key.pem"),
                   "WHISK_NGINX_ACCESS_LOG": str(root / "access.log"),
                   "WHISK_NGINX_UPSTREAM_SERVERS": re.sub(r"controller\d", "127.0.0.1",
                                                          values["WHISK_NGINX_UPSTREAM_SERVERS"]),
                   "WHISK_NGINX_HTTPS_LISTEN": "127.0.0.1:1443", "WHISK_NGINX_HTTP_LISTEN": "127.0.0.1:1080"}
        shell_format = " ".join(f"${{{k}}}" for k in values)
        proc = await asyncio.create_subprocess_exec(
            envsubst, shell_format, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != "HOST"} | values)
        out, _ = await proc.communicate((REPO / "config" / "nginx" / "whisk.conf.template").read_bytes())
        rendered = out.decode()
        assert not re.search(r"\$\{WHISK_NGINX_[A-Z]", rendered)
        assert "$request_id" in rendered and "$host" in rendered and "$proxy_add_x_forwarded_for" in rendered
        (root / "whisk.conf").write_text(rendered)
        (root / "nginx.conf").write_text(
            f"pid {root}/nginx.pid;\nevents {{}}\nhttp {{\n client_body_temp_path {root}/body;\n"
            f" proxy_temp_path {root}/proxy;\n include {root}/whisk.conf;\n}}\n")
        proc = await asyncio.create_subprocess_exec(NGINX, "-t", "-q", "-p", str(root), "-e", str(root / "error.log"),
                                                    "-c", str(root / "nginx.conf"), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_prometheus_scrapes_every_whisk_service_and_grafana_reads_prometheus(compose: dict[str, Any]) -> None:
    """The monitoring services use the files of deploy/prometheus and deploy/grafana (tests/ops/test_prometheus.py
    runs them against a real Prometheus): every controller and invoker scraped at its port, the alert rules loaded,
    Grafana's data source and dashboard folder where its provisioning says, and both on the host's loopback only."""
    services = compose["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for rules in config["rule_files"]:
        assert mounts[f"./prometheus/{rules}"] == f"/etc/prometheus/{rules}"
    scraped = {target: job["job_name"] for job in config["scrape_configs"]
               for static in job["static_configs"] for target in static["targets"]}
    assert set(scraped) == {f"{name}:{environment(services[name])['WHISK_PORT']}" for name in WHISK_SERVICES}
    for target, job in scraped.items():
        assert job == f"whisk-{WHISK_SERVICES[target.split(':')[0]][0]}s"     # the jobs alerts.yml names
    gmounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert urlsplit(source["datasources"][0]["url"]).netloc == "prometheus:9090"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "whisk.yml").read_text())
    assert gmounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert gmounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    for service in (prometheus, grafana):
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])


def test_the_example_env_file_lists_every_variable_the_file_reads() -> None:
    """docs/operations.md sends operators to deploy/env.example for the variables Compose interpolates: it names each
    `${VAR}` of compose.yaml, and nothing the file does not read."""
    read = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    listed = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert read == listed


def test_couchdb_takes_the_largest_documents_whisk_writes() -> None:
    """CouchDB 3 refuses a document past `max_document_size`, 8 MB by default: an action of 48 MB of code, or a record
    of 10 MB of logs and a 1 MB result, would not be stored (docs/operations.md, "CouchDB's document size")."""
    ini = (DEPLOY / "couchdb" / "single-node.ini").read_text()
    sizes = re.findall(r"(?m)^max_document_size\s*=\s*(\d+)\s*$", ini)
    defaults = Settings()
    largest = max(PEKKO_MAX_BODY, defaults.max_exec_size + 2 * defaults.max_parameter_size + BODY_MARGIN)   # a body
    assert sizes and int(sizes[-1]) >= largest, (sizes, largest)
