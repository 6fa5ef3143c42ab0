"""deploy/kubernetes/kafka.yaml checked statically (no cluster here): the official image at the version the tests run,
one KRaft node, the Service whisk.yaml's WHISK_BUS names, its data on a claim, and broker settings that take
whisk's largest message. Each check fails on a copy broken in one place (test_each_check_catches_its_defect)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.ops.test_compose import COMPOSE, REPO
from whisk.messaging.base import MAX_MESSAGE_BYTES

KAFKA = REPO / "deploy" / "kubernetes" / "kafka.yaml"
WHISK = REPO / "deploy" / "kubernetes" / "whisk.yaml"
POM = REPO / ".ci" / "kafka" / "pom.xml"

Docs = list[dict[str, Any]]


def load() -> Docs:
    return [doc for doc in yaml.safe_load_all(KAFKA.read_text()) if doc is not None]


def kafka_version_under_test() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert match, "no kafka.version in .ci/kafka/pom.xml"
    return match.group(1)


def one(docs: Docs, kind: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"one {kind}"
    return found[0]


def container(docs: Docs) -> dict[str, Any]:
    (c,) = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return c


def env(docs: Docs) -> dict[str, str]:
    return {var["name"]: var["value"] for var in container(docs)["env"]}


def check_image(docs: Docs) -> None:
    assert container(docs)["image"] == f"apache/kafka:{kafka_version_under_test()}", container(docs)["image"]


def check_kraft(docs: Docs) -> None:
    e = env(docs)
    assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert one(docs, "StatefulSet")["spec"]["replicas"] == 1
    for name in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert e[name] == "1", name
    assert e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"    # whisk creates its topics itself


def check_service(docs: Docs) -> None:
    """The Service has the host and port whisk.yaml's WHISK_BUS names, and selects the broker's pod."""
    bus = next(doc for doc in yaml.safe_load_all(WHISK.read_text()) if doc and doc.get("kind") == "ConfigMap")
    parts = urlsplit(bus["data"]["WHISK_BUS"])
    service = one(docs, "Service")
    assert service["metadata"]["name"] == parts.hostname
    assert parts.port in {p["port"] for p in service["spec"]["ports"]}
    labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert env(docs)["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{parts.hostname}:{parts.port}"


def check_data_volume(docs: Docs) -> None:
    sts = one(docs, "StatefulSet")
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    assert mounts.get(env(docs)["KAFKA_LOG_DIRS"]) in claims, "the log directory is not on a claim"


def check_message_size(docs: Docs) -> None:
    assert int(env(docs)["KAFKA_MESSAGE_MAX_BYTES"]) > MAX_MESSAGE_BYTES
    assert int(env(docs)["KAFKA_REPLICA_FETCH_MAX_BYTES"]) >= int(env(docs)["KAFKA_MESSAGE_MAX_BYTES"])


CHECKS: list[Callable[[Docs], None]] = [check_image, check_kraft, check_service, check_data_volume,
                                        check_message_size]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_kafka_manifest(check: Callable[[Docs], None]) -> None:
    check(load())


def test_compose_runs_the_tested_version() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{kafka_version_under_test()}"


def _set_env(name: str, value: str) -> Callable[[Docs], None]:
    def apply(docs: Docs) -> None:
        for var in container(docs)["env"]:
            if var["name"] == name:
                var["value"] = value
    return apply


DEFECTS: list[tuple[Callable[[Docs], None], Callable[[Docs], None]]] = [
    (lambda d: container(d).update(image="apache/kafka:3.8.1"), check_image),
    (_set_env("KAFKA_PROCESS_ROLES", "broker"), check_kraft),
    (_set_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true"), check_kraft),
    (lambda d: one(d, "Service")["metadata"].update(name="broker"), check_service),
    (_set_env("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9092"), check_service),
    (_set_env("KAFKA_LOG_DIRS", "/tmp/kafka"), check_data_volume),
    (_set_env("KAFKA_MESSAGE_MAX_BYTES", "1048588"), check_message_size),
]


@pytest.mark.parametrize("index", range(len(DEFECTS)))
def test_each_check_catches_its_defect(index: int) -> None:
    breaks, check = DEFECTS[index]
    docs = copy.deepcopy(load())
    check(docs)                       # the file as it is passes...
    breaks(docs)
    with pytest.raises(AssertionError):
        check(docs)                   # ...and the broken copy does not
