"""roles.py maps each WHISK_* URL to its adapter; a URL it cannot use stops the program with the variable named."""

from __future__ import annotations

import pytest

from whisk.config import ConfigError
from whisk.roles import bus_from_url, discovery_from_url, store_from_url


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
