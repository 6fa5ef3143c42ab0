"""roles.py maps each WHISK_* URL to its adapter; a URL it cannot use stops the program with the variable named.
The docker adapter is given the API host to relay to containers without a network."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import free_port
from whisk.config import ConfigError, Settings
from whisk.roles import bus_from_url, containers_from_settings, discovery_from_url, store_from_url, timed_bus
from whisk.runtimes.manifest import load_manifest


def test_each_scheme_picks_its_adapter(tmp_path) -> None:
    assert type(store_from_url("memory://")).__name__ == "MemoryStore"
    assert type(store_from_url(f"sqlite://{tmp_path}/w.db")).__name__ == "SqliteStore"
    assert type(store_from_url("couchdb://u:p@127.0.0.1:5984")).__name__ == "CouchStore"
    assert type(bus_from_url("memory://", "t")).__name__ == "MemoryBus"
    assert type(bus_from_url("kafka://127.0.0.1:9092,127.0.0.1:9093?fetch_max_wait_ms=10", "t")).__name__ == "KafkaBus"
    assert type(discovery_from_url("local://")).__name__ == "LocalDiscovery"
    assert type(discovery_from_url("consul://127.0.0.1:8500")).__name__ == "ConsulDiscovery"


@pytest.mark.parametrize("make, url, variable", [
    (store_from_url, "redis://x", "WHISK_STORE"),
    (lambda url: bus_from_url(url, "t"), "amqp://x", "WHISK_BUS"),
    (lambda url: bus_from_url(url, "t"), "kafka://127.0.0.1:9092?fetch_max_wait_ms=soon", "WHISK_BUS"),
    (discovery_from_url, "etcd://x", "WHISK_DISCOVERY"),
])
def test_an_unusable_url_names_its_variable(make, url: str, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        make(url)


@pytest.mark.parametrize("env, relayed, named", [
    ({}, "http://127.0.0.1:3233", False),                                            # the server's own URL
    ({"WHISK_API_HOST": "https://whisk.example.org"}, "https://whisk.example.org", False),
    ({"WHISK_API_HOST": "https://whisk.example.org", "WHISK_DOCKER_API_UPSTREAM": "http://controller0:3233"},
     "http://controller0:3233", False),
    # A controller's actions port, told which container each connection carries (api/actions_port.py).
    ({"WHISK_DOCKER_API_UPSTREAM": "http://controller0:3234", "WHISK_DOCKER_API_PROXY_PROTOCOL": "true"},
     "http://controller0:3234", True),
])
def test_docker_containers_without_a_network_are_relayed_the_api_host(env: dict[str, str], relayed: str,
                                                                       named: bool) -> None:
    settings = Settings.from_env({"WHISK_CONTAINERS": "docker://", "WHISK_STORE": "memory://"} | env)
    factory = containers_from_settings(settings, load_manifest())
    assert (factory.api_host, factory.api_proxy_protocol) == (relayed, named)


def test_an_api_upstream_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="WHISK_DOCKER_API_UPSTREAM"):
        Settings.from_env({"WHISK_DOCKER_API_UPSTREAM": "controller0:3233"})


def test_only_a_bus_with_io_is_timed() -> None:
    memory = bus_from_url("memory://", "t")
    assert timed_bus("memory://", memory) is memory
    kafka = bus_from_url("kafka://127.0.0.1:9092", "t")            # not opened: wrapping does no I/O
    assert type(timed_bus("kafka://127.0.0.1:9092", kafka)).__name__ == "Instrumented"


def test_a_docker_daemon_that_does_not_answer_is_one_line(tmp_path) -> None:
    env = dict(os.environ) | {"WHISK_CONTAINERS": f"docker://{tmp_path}/docker.sock", "WHISK_STORE": "memory://",
                              "WHISK_DATA_DIR": str(tmp_path / "data"), "WHISK_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "whisk"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"whisk: cannot start: docker: the daemon at unix://{tmp_path}/docker.sock does not answer: "), done.stderr
