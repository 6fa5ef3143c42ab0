"""deploy/kubernetes/whisk.yaml checked statically (no cluster and no registry here): the objects and how they refer
to each other, every pod's environment parsed by whisk/config.py as that pod would start, the settings against
deploy/compose.yaml, the probes, the user, and the invokers' Docker socket and TMPDIR.

Each check is a function over the parsed documents; test_each_check_catches_its_defect breaks a copy of the file in
one place and expects the matching check to fail, so that none of them passes whatever the file says."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.ops.test_compose import BACKENDS, COMPOSE, REPO, environment, interpolate
from whisk.config import ConfigError, Settings, variables

KUBE = REPO / "deploy" / "kubernetes" / "whisk.yaml"
STATEFULSETS = {"whisk-controller": "controller", "whisk-invoker": "invoker"}     # name -> WHISK_ROLE
KINDS = {"ConfigMap", "Secret", "Service", "StatefulSet", "NetworkPolicy"}
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"    # the ordinal label, Kubernetes >= 1.28
IMAGE = "whisk/whisk:latest"
UID = 10001
PORT = 3233
ACTIONS_SERVICE = "whisk-controller-actions"
SUN_PATH_MAX = 107              # bytes of a unix socket path (whisk/containers/docker/factory.py)
_REF = re.compile(r"\$\((\w+)\)")

Docs = list[dict[str, Any]]
Obj = dict[str, Any]


def load(text: str) -> Docs:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.fixture(scope="module")
def docs() -> Docs:
    return load(KUBE.read_text())


def objects(docs: Docs, kind: str) -> dict[str, Obj]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc.get("kind") == kind}


def pod_spec(sts: Obj) -> Obj:
    return sts["spec"]["template"]["spec"]


def main_container(sts: Obj) -> Obj:
    containers = pod_spec(sts)["containers"]
    assert len(containers) == 1, f"{sts['metadata']['name']}: one container"
    return containers[0]


def container_env(docs: Docs, sts: Obj, container: Obj, index: int) -> dict[str, str]:
    """The environment of `container` in pod `index` of the StatefulSet, as the kubelet builds it: envFrom first,
    then env (a later name wins), with $(VAR) expanded from what is defined before it and the downward API's
    values for that pod."""
    fields = {"metadata.name": f"{sts['metadata']['name']}-{index}", POD_INDEX: str(index)}
    maps, secrets = objects(docs, "ConfigMap"), objects(docs, "Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in maps, f"no ConfigMap {source['configMapRef']['name']}"
            env |= maps[source["configMapRef"]["name"]]["data"]
        else:
            assert source["secretRef"]["name"] in secrets, f"no Secret {source['secretRef']['name']}"
            env |= secrets[source["secretRef"]["name"]]["stringData"]
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = _REF.sub(lambda m: env.get(m.group(1), m.group(0)), var["value"])
        else:
            path = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in fields, f"{var['name']}: fieldRef {path} is not one this check knows"
            env[var["name"]] = fields[path]
    return env


def settings_of(name: str, index: int, env: dict[str, str]) -> Settings:
    try:
        return Settings.from_env(env)        # every value parsed as whisk itself parses it at start
    except ConfigError as exc:
        raise AssertionError(f"{name}-{index}: {exc}") from None


def pods(docs: Docs) -> Iterator[tuple[str, int, Obj, dict[str, str]]]:
    """(StatefulSet name, ordinal, StatefulSet, the main container's environment) for every pod."""
    for name, sts in objects(docs, "StatefulSet").items():
        for index in range(sts["spec"]["replicas"]):
            yield name, index, sts, container_env(docs, sts, main_container(sts), index)


def port_of(container: Obj, port: int | str) -> int:
    """A probe's or a Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"no container port named {port!r}"
    return named[port]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def mount_of(sts: Obj, container: Obj, path: str) -> tuple[Obj, Obj]:
    """The volume mount holding `path` in the container (the deepest one), and its volume."""
    found = [m for m in container.get("volumeMounts", [])
             if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert found, f"{path} is on no volume"
    mount = max(found, key=lambda m: len(m["mountPath"]))
    volumes = {v["name"]: v for v in pod_spec(sts).get("volumes", [])}
    assert mount["name"] in volumes, f"no volume {mount['name']}"
    return mount, volumes[mount["name"]]


# --- the checks ---------------------------------------------------------------------------------------------------

def check_objects(docs: Docs) -> None:
    seen = set()
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc
        assert (doc["kind"], doc["metadata"]["name"]) not in seen, f"two {doc['kind']} {doc['metadata']['name']}"
        seen.add((doc["kind"], doc["metadata"]["name"]))
    assert {kind for kind, _ in seen} == KINDS
    assert set(objects(docs, "StatefulSet")) == set(STATEFULSETS)
    # The API takes only strings here: a bare 3233 or true is refused by `kubectl apply`.
    for cm in objects(docs, "ConfigMap").values():
        assert all(isinstance(v, str) for v in cm["data"].values()), f"{cm['metadata']['name']}: non-string data"
    for secret in objects(docs, "Secret").values():
        assert all(isinstance(v, str) for v in secret["stringData"].values()), secret["metadata"]["name"]
    for sts in objects(docs, "StatefulSet").values():
        for container in pod_spec(sts).get("initContainers", []) + pod_spec(sts)["containers"]:
            for var in container.get("env", []):
                assert "valueFrom" in var or isinstance(var.get("value"), str), f"{var['name']}: not a string"


def check_settings(docs: Docs) -> None:
    known = {name for name, _field, _default in variables()}
    for source in [*objects(docs, "ConfigMap").values(), *objects(docs, "Secret").values()]:
        keys = source.get("data") or source.get("stringData") or {}
        unknown = {k for k in keys if k.startswith("WHISK_") and k not in known}
        assert not unknown, f"{source['metadata']['name']}: not settings of whisk/config.py: {sorted(unknown)}"
    for name, index, _sts, env in pods(docs):
        unknown = {k for k in env if k.startswith("WHISK_") and k not in known}
        assert not unknown, f"{name}: not settings of whisk/config.py: {sorted(unknown)}"
        settings = settings_of(name, index, env)
        assert (settings.role, settings.instance) == (STATEFULSETS[name], index), \
            f"{name}-{index}: WHISK_ROLE {settings.role}, WHISK_INSTANCE {settings.instance}"
        assert (settings.host, settings.port, settings.log_format) == ("0.0.0.0", PORT, "json"), \
            f"{name}-{index}: WHISK_HOST {settings.host}, WHISK_PORT {settings.port}, {settings.log_format} logs"
        assert urlsplit(settings.api_host).scheme == "https", "WHISK_API_HOST: the public (TLS) URL"
        for url, backend in ((settings.store_url, "couchdb"), (settings.bus_url, "kafka"),
                             (settings.discovery_url, "consul")):
            parts = urlsplit(url)
            assert (parts.hostname, parts.port) == (backend, BACKENDS[backend][1]), f"{name}: {url}"
        if settings.role == "invoker":
            assert (settings.containers_url, settings.docker_network) == ("docker:///var/run/docker.sock", "unix")


def check_mirrors_compose(docs: Docs) -> None:
    """Pod 0 of each role gets the settings of the Compose file's <role>0, but for the public URL, the address the
    invokers relay actions' API calls to (each deployment's own controllers) and the users' seeding (both examples),
    and each role has as many pods as Compose has services."""
    services = interpolate(yaml.safe_load(COMPOSE.read_text()))["services"]
    for name, role in STATEFULSETS.items():
        sts = objects(docs, "StatefulSet")[name]
        compose_count = len([s for s in services if re.fullmatch(rf"{role}\d+", s)])
        assert sts["spec"]["replicas"] == compose_count, f"{name}: Compose runs {compose_count}"
        ours = settings_of(name, 0, container_env(docs, sts, main_container(sts), 0))
        theirs = Settings.from_env(environment(services[f"{role}0"]))
        own = ("api_host", "docker_api_upstream", "bootstrap_users")
        differ = [f.name for f in dataclasses.fields(Settings)
                  if f.name not in own and getattr(ours, f.name) != getattr(theirs, f.name)]
        assert not differ, f"{name}: not as Compose's {role}0: {differ}"


def check_services(docs: Docs) -> None:
    services = objects(docs, "Service")
    statefulsets = objects(docs, "StatefulSet")
    labels = {name: sts["spec"]["template"]["metadata"]["labels"] for name, sts in statefulsets.items()}
    for name, sts in statefulsets.items():
        assert selects(sts["spec"]["selector"]["matchLabels"], labels[name]), f"{name}: selector misses its pods"
        headless = services.get(sts["spec"]["serviceName"])
        assert headless is not None, f"{name}: no Service {sts['spec']['serviceName']}"
        assert headless["spec"].get("clusterIP") == "None", f"{name}: serviceName names a headless Service"
        chosen = [n for n in statefulsets if selects(headless["spec"]["selector"], labels[n])]
        assert chosen == [name], f"Service {sts['spec']['serviceName']} selects the pods of {chosen}"
    front = [s for s in services.values() if s["spec"].get("clusterIP") != "None"
             and s["metadata"]["name"] != ACTIONS_SERVICE]
    assert len(front) == 1, "one Service in front of the controllers"
    chosen = [n for n in statefulsets if selects(front[0]["spec"]["selector"], labels[n])]
    assert chosen == ["whisk-controller"], f"the front Service selects {chosen}"
    controller = main_container(statefulsets["whisk-controller"])
    for port in front[0]["spec"]["ports"]:
        assert port["port"] == PORT and port_of(controller, port.get("targetPort", port["port"])) == PORT, port


def check_actions_port(docs: Docs) -> None:
    """The invokers relay their actions' calls to the controllers' actions port, naming each container first
    (api/actions_port.py), through a Service of its own that only the invokers may reach: the front Service and
    the ingress never lead there."""
    controllers = objects(docs, "StatefulSet")["whisk-controller"]
    controller = settings_of("whisk-controller", 0, container_env(docs, controllers, main_container(controllers), 0))
    assert controller.actions_port and controller.actions_port != PORT, "WHISK_ACTIONS_PORT"
    service = objects(docs, "Service").get(ACTIONS_SERVICE)
    assert service is not None, f"no Service {ACTIONS_SERVICE}"
    assert [(p["port"], port_of(main_container(controllers), p.get("targetPort", p["port"])))
            for p in service["spec"]["ports"]] == [(controller.actions_port, controller.actions_port)]
    invokers = objects(docs, "StatefulSet")["whisk-invoker"]
    invoker = settings_of("whisk-invoker", 0, container_env(docs, invokers, main_container(invokers), 0))
    upstream = urlsplit(invoker.docker_api_upstream)
    assert (upstream.hostname, upstream.port) == (ACTIONS_SERVICE, controller.actions_port), upstream
    assert invoker.docker_api_proxy_protocol, "WHISK_DOCKER_API_PROXY_PROTOCOL"
    labels = invokers["spec"]["template"]["metadata"]["labels"]
    controller_labels = controllers["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in objects(docs, "NetworkPolicy").values()
                if selects(p["spec"]["podSelector"]["matchLabels"], controller_labels)]
    assert policies, "no NetworkPolicy keeps the actions port to the invokers"
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            if any(p["port"] == controller.actions_port for p in rule.get("ports", [])):
                sources = rule.get("from", [])
                assert sources and all(selects(f.get("podSelector", {}).get("matchLabels", {}), labels)
                                       for f in sources), f"the actions port is open beyond the invokers: {rule}"


def check_probes(docs: Docs) -> None:
    for name, index, sts, env in pods(docs):
        container = main_container(sts)
        assert PORT in [p["containerPort"] for p in container["ports"]], name
        for probe, path in (("readinessProbe", "/health"), ("livenessProbe", "/ping")):
            get = container[probe]["httpGet"]
            assert (get["path"], port_of(container, get["port"])) == (path, PORT), f"{name} {probe}: {get}"
        # SIGTERM drains for WHISK_SHUTDOWN_GRACE_S; Kubernetes must not SIGKILL before that.
        grace = pod_spec(sts).get("terminationGracePeriodSeconds", 30)
        assert grace > settings_of(name, index, env).shutdown_grace_s, f"{name}: terminationGracePeriodSeconds"


def check_user(docs: Docs) -> None:
    for name, sts in objects(docs, "StatefulSet").items():
        container = main_container(sts)
        context = pod_spec(sts).get("securityContext", {}) | container.get("securityContext", {})
        assert (context.get("runAsUser"), context.get("runAsGroup")) == (UID, UID), f"{name}: {context}"
        assert context.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
        # No registry: the image is loaded onto the nodes, never pulled.
        assert (container["image"], container.get("imagePullPolicy")) == (IMAGE, "IfNotPresent"), name


def check_instance(docs: Docs) -> None:
    for name, sts in objects(docs, "StatefulSet").items():
        found = [v for v in main_container(sts).get("env", []) if v["name"] == "WHISK_INSTANCE"]
        assert len(found) == 1, f"{name}: WHISK_INSTANCE set once"
        assert found[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == POD_INDEX, found[0]


def check_invokers(docs: Docs) -> None:
    sts = objects(docs, "StatefulSet")["whisk-invoker"]
    container = main_container(sts)
    assert pod_spec(sts).get("securityContext", {}).get("supplementalGroups"), "the Docker socket's group"
    # The scheduler does not see action containers: the invoker's memory request reserves their pool on the node.
    request = re.fullmatch(r"(\d+)(Mi|Gi)", str(container.get("resources", {}).get("requests", {}).get("memory")))
    assert request, "the invoker's memory request, in Mi or Gi"
    request_mb = int(request[1]) * (1024 if request[2] == "Gi" else 1)
    for index in range(sts["spec"]["replicas"]):
        env = container_env(docs, sts, container, index)
        settings = settings_of("whisk-invoker", index, env)
        assert request_mb >= settings.pool_memory_mb, f"memory request {request_mb} Mi < WHISK_POOL_MEMORY_MB"
        socket = urlsplit(settings.containers_url).path
        mount, volume = mount_of(sts, container, socket)
        assert mount["mountPath"] == socket == volume.get("hostPath", {}).get("path"), f"{socket}: {volume}"
        # The node's daemon bind-mounts each action container's socket folder (under TMPDIR) from the node: the
        # folder must have the same path there and in here.
        tmpdir = env["TMPDIR"]
        assert "$(" not in tmpdir, f"TMPDIR {tmpdir} refers to a variable defined after it, or to none"
        mount, volume = mount_of(sts, container, tmpdir)
        assert "subPath" not in mount and "subPathExpr" not in mount, mount
        assert volume.get("hostPath", {}).get("path") == mount["mountPath"], f"TMPDIR {tmpdir}: {volume}"
        socket_path = f"{tmpdir}/whisk-docker-{index}/01234567/proxy.sock"
        assert len(socket_path.encode()) <= SUN_PATH_MAX, f"TMPDIR {tmpdir} is too long for a unix socket path"
        # And exist, owned by the invoker, before it starts (Python falls back to /tmp otherwise).
        makers = [c for c in pod_spec(sts).get("initContainers", [])
                  if tmpdir in [_REF.sub(lambda m: container_env(docs, sts, c, index).get(m.group(1), ""), a)
                                for a in c.get("command", []) + c.get("args", [])]]
        assert makers, f"no init container makes {tmpdir}"
        assert any(f"chown(sys.argv[1], {UID}, {UID})" in " ".join(c["command"]) for c in makers), makers
        assert all(mount_of(sts, c, tmpdir)[1] is volume for c in makers), "the init container's TMPDIR volume"


def check_bootstrap(docs: Docs) -> None:
    """Seeding guest and whisk.system is check-then-create: two controllers starting at once on a fresh store
    could both create them. One at a time, each Ready first (OrderedReady), the second finds them."""
    seeding = {(name, index) for name, index, _sts, env in pods(docs) if settings_of(name, index, env).bootstrap_users
               and STATEFULSETS[name] == "controller"}
    assert ("whisk-controller", 0) in seeding, "no controller seeds guest and whisk.system"
    sts = objects(docs, "StatefulSet")["whisk-controller"]
    if len(seeding) > 1:
        assert sts["spec"].get("podManagementPolicy", "OrderedReady") == "OrderedReady", "controllers start at once"
        assert "readinessProbe" in main_container(sts)


CHECKS: list[Callable[[Docs], None]] = [check_objects, check_settings, check_mirrors_compose, check_services,
                                        check_actions_port, check_probes, check_user, check_instance, check_invokers,
                                        check_bootstrap]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_deployment(check: Callable[[Docs], None], docs: Docs) -> None:
    check(docs)


# One defect each: (text in the file, its replacement, the check that must catch it). The first occurrence is
# replaced; the texts are chosen so that it is the one meant.
MUTATIONS = [
    ("kind: ConfigMap\n", "", check_objects),
    ('WHISK_PORT: "3233"', "WHISK_PORT: 3233", check_objects),
    ("name: whisk-invoker-pods", "name: whisk-controller-pods", check_objects),
    ("WHISK_LOG_FORMAT: json", "WHISK_LOG_FORMT: json", check_settings),
    ("WHISK_HOST: 0.0.0.0", "WHISK_HOST: 127.0.0.1", check_settings),
    ("WHISK_API_HOST: https://", "WHISK_API_HOST: http://", check_settings),
    ("kafka://kafka:9092", "kafkas://kafka:9092", check_settings),
    ("@couchdb:5984", "@couch:5984", check_settings),
    ("{name: WHISK_ROLE, value: invoker}", "{name: WHISK_ROLE, value: controller}", check_settings),
    ("{name: WHISK_DOCKER_NETWORK, value: unix}", "{name: WHISK_DOCKER_NETWORK, value: none}", check_settings),
    ('WHISK_LIMIT_FIRES_PER_MINUTE: "600"', 'WHISK_LIMIT_FIRES_PER_MINUTE: "60"', check_mirrors_compose),
    ("replicas: 2", "replicas: 1", check_mirrors_compose),
    ("serviceName: whisk-invoker-pods", "serviceName: whisk-invokers", check_services),
    ("component: invoker}\n  ports", "component: invokers}\n  ports", check_services),
    ("targetPort: http}", "targetPort: 8080}", check_services),
    ('WHISK_ACTIONS_PORT: "3234"', 'WHISK_ACTIONS_PORT: "0"', check_actions_port),
    ("value: \"http://whisk-controller-actions:3234\"", "value: \"http://whisk-controller:3233\"", check_actions_port),
    ('{name: WHISK_DOCKER_API_PROXY_PROTOCOL, value: "true"}', '{name: WHISK_DOCKER_API_PROXY_PROTOCOL, value: "no"}',
     check_actions_port),
    ("{name: actions, port: 3234, targetPort: actions}", "{name: actions, port: 3234, targetPort: http}",
     check_actions_port),
    ("\n      from: [{podSelector:", "\n      _from: [{podSelector:", check_actions_port),     # open to all
    ("app.kubernetes.io/component: invoker}}}]", "app.kubernetes.io/component: controller}}}]", check_actions_port),
    ("path: /health, port: 3233", "path: /ping, port: 3233", check_probes),
    ("{path: /ping, port: 3233}", "{path: /ping, port: 8080}", check_probes),
    ("terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30", check_probes),
    ("{runAsUser: 10001, runAsGroup: 10001, runAsNonRoot: true}", "{runAsUser: 0, runAsGroup: 10001}", check_user),
    ("runAsNonRoot: true\n        supplementalGroups", "runAsNonRoot: false\n        supplementalGroups", check_user),
    ("imagePullPolicy: IfNotPresent\n          envFrom", "imagePullPolicy: Always\n          envFrom", check_user),
    ("fieldPath: \"metadata.labels['apps.kubernetes.io/pod-index']\"", "fieldPath: metadata.uid", check_instance),
    ("{name: docker-sock, mountPath: /var/run/docker.sock}", "{name: docker-sock, mountPath: /run/docker.sock}",
     check_invokers),
    ("path: /var/run/docker.sock, type: Socket", "path: /run/docker.sock, type: Socket", check_invokers),
    ("hostPath: {path: /srv/whisk,", "hostPath: {path: /var/lib/whisk-tmp,", check_invokers),
    ("- {name: tmpdir, mountPath: /srv/whisk}", "- {name: tmpdir, mountPath: /srv/whisk, subPath: x}", check_invokers),
    ("value: /srv/whisk/$(POD_NAME)}\n          ports", f"value: /srv/whisk/{'x' * 80}/$(POD_NAME)}}\n          ports",
     check_invokers),
    ("value: /srv/whisk/$(POD_NAME)}\n          ports", "value: /tmp/$(POD_NAME)}\n          ports", check_invokers),
    ("value: /srv/whisk/$(POD_NAME)}\n          securityContext", "value: /tmp/x}\n          securityContext",
     check_invokers),
    ("os.chown(sys.argv[1], 10001, 10001)", "os.chmod(sys.argv[1], 0o777)", check_invokers),
    ("supplementalGroups: [999]", "supplementalGroups: []", check_invokers),
    ("requests: {memory: 2Gi}", "requests: {memory: 1Gi}", check_invokers),
    ("podManagementPolicy: OrderedReady", "podManagementPolicy: Parallel", check_bootstrap),
    ('{name: WHISK_BOOTSTRAP_USERS, value: "true"}', '{name: WHISK_BOOTSTRAP_USERS, value: "false"}', check_bootstrap),
]


@pytest.mark.parametrize(("old", "new", "check"), MUTATIONS, ids=[f"{c.__name__}-{i}" for i, (_, _, c) in
                                                                   enumerate(MUTATIONS)])
def test_each_check_catches_its_defect(old: str, new: str, check: Callable[[Docs], None]) -> None:
    text = KUBE.read_text()
    assert old in text, f"the file no longer has {old!r}: update the mutation"
    with pytest.raises(AssertionError):
        check(load(text.replace(old, new, 1)))
