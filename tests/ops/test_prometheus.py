"""A real Prometheus (Debian's) against running whisk: a standalone server and a cluster of two controllers and two
invokers (Kafka-protocol broker, pouchdb-server, the Consul double; tests/distributed/cluster.py). Every target up,
PromQL over the activation, pool and balancer metrics, the shipped alert rules loaded and healthy (and checked and
unit-tested with promtool), every query of the shipped Grafana dashboards run, and an invoker killed to see its alerts
go pending. The tests share the servers and run in file order (the kill comes last)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import missing
from tests.distributed.cluster import Cluster, cluster_env, guest_session, new_workdir, owned, until
from tests.ops.prometheus import PROMTOOL, api, available, prometheus_server, query, values
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server

pytestmark = [pytest.mark.kafka, pytest.mark.couchdb, pytest.mark.timeout(240)]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
OUTPUT = DEPLOY.parent / "test-output" / "prometheus"
SCREENSHOT = Path(__file__).with_name("screenshot.js")
PLAYWRIGHT = DEPLOY.parent / "tests" / "node" / "node_modules" / "playwright-core"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
PER_MINUTE = 12                          # the standalone server's invocation limit: the workload passes it
POOL_MB = 1024                           # cluster_env's WHISK_POOL_MEMORY_MB
HELLO = 'def main(args):\n    print("hello", args.get("n"))\n    return {"n": args.get("n")}\n'
HELLO_JS = "function main(params) { return { n: params.n }; }\n"
FAILING = 'def main(args):\n    return {"error": "it fails on purpose"}\n'
# What Grafana puts in place of its built-in variables, for a 10-minute dashboard range.
BUILTIN = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "10m"}


def prometheus_or_missing() -> None:
    if not available():
        missing("Debian's prometheus and promtool (bash .ci/deps.sh installs them)")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def standalone() -> AsyncIterator[str]:
    prometheus_or_missing()
    env = {"WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-prom-"),
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": str(PER_MINUTE)}
    log = os.path.join(tempfile.gettempdir(), f"whisk-prom-{os.getpid()}.log")
    async with whisk_server(env, log_path=log) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_broker: Any, couchdb_url: str, consul_url: str) -> AsyncIterator[Cluster]:
    prometheus_or_missing()
    env, prefix = cluster_env(kafka_broker.bootstrap, couchdb_url, consul_url)
    async with owned(Cluster(env, couchdb_url, prefix, new_workdir())) as c:
        await asyncio.gather(c.start("controller", 0), c.start("controller", 1))
        await asyncio.gather(c.start("invoker", 0), c.start("invoker", 1))
        await until("both invokers up", lambda: invokers_up(c), 60)
        yield c


async def invokers_up(c: Cluster) -> bool:
    async with aiohttp.ClientSession() as s:
        for controller in c.controllers:
            async with s.get(f"{controller.url}/invokers") as r:
                if r.status != 200 or await r.json() != {"invoker0": "up", "invoker1": "up"}:
                    return False
    return True


def hostport(url: str) -> str:
    return url.removeprefix("http://")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def prometheus(standalone: str, cluster: Cluster) -> AsyncIterator[str]:
    jobs = {"whisk": [hostport(standalone)], "whisk-controllers": [hostport(m.url) for m in cluster.controllers],
            "whisk-invokers": [hostport(cluster.invoker(0).url), hostport(cluster.invoker(1).url)]}
    async with prometheus_server(jobs, [RULES]) as url:
        await until("every target scraped", lambda: all_up(url, 5), 30)
        await workload(url, standalone, cluster)
        yield url


async def all_up(url: str, n: int) -> bool:
    targets = (await api(url, "targets"))["activeTargets"]
    return len(targets) == n and all(t["health"] == "up" for t in targets)


async def put(session: aiohttp.ClientSession, name: str, code: str, kind: str) -> None:
    async with session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                           json={"exec": {"kind": kind, "code": code}}) as r:
        assert r.status == 200, await r.text()


async def invoke(session: aiohttp.ClientSession, name: str, n: int) -> int:
    async with session.post(f"/api/v1/namespaces/_/actions/{name}?blocking=true", json={"n": n}) as r:
        return r.status


async def workload(prom: str, standalone: str, cluster: Cluster) -> None:
    """Activations in two rounds with a scrape between them, so that rate() and increase() see the counters grow;
    then invocations past the standalone server's per-minute limit."""
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=standalone, headers=basic_auth(uuid, key)) as one, \
            guest_session(cluster.controller.url) as many:
        await put(one, "hello", HELLO, "python:3.11")
        await put(one, "hello-js", HELLO_JS, "nodejs:20")
        await put(one, "failing", FAILING, "python:3.11")
        await put(many, "hello", HELLO, "python:3.11")
        for round_ in range(2):
            assert [await invoke(one, "hello", n) for n in range(3)] == [200] * 3
            assert await invoke(one, "hello-js", 1) == 200
            assert await invoke(one, "failing", 1) == 502
            assert [await invoke(many, "hello", n) for n in range(3)] == [200] * 3

            # Every run of this round scraped before the next round starts: 5 standalone runs a round, 3 in the
            # cluster (with the invokers' own health-test runs in whisk.system).
            async def scraped(rounds: int = round_ + 1) -> bool:
                counts = values(await query(prom, 'sum by (job, action) (openwhisk_action_activations_total)'),
                                "job", "action")
                return (counts.get(("whisk", "hello")) == 3 * rounds and counts.get(("whisk", "hello-js")) == rounds
                        and counts.get(("whisk", "failing")) == rounds
                        and counts.get(("whisk-invokers", "hello")) == 3 * rounds)

            await until(f"round {round_} scraped", scraped, 20)
        # Past the limit (more than it, even if a new minute began since the rounds); then, once Prometheus has seen
        # the counter, past it again: a counter's first sample shows no increase, the second one does.
        statuses = [await invoke(one, "hello", n) for n in range(PER_MINUTE + 5)]
        assert 429 in statuses, statuses

        async def throttles_scraped() -> bool:
            return bool(await query(prom, "openwhisk_action_limit_timed_total"))

        await until("the throttling scraped", throttles_scraped, 20)
        statuses = [await invoke(one, "hello", n) for n in range(PER_MINUTE + 5)]
        assert 429 in statuses, statuses

    async def throttles_grew() -> bool:
        return bool(await query(prom, "increase(openwhisk_action_limit_timed_total[1m]) > 0"))

    await until("the throttling counted twice", throttles_grew, 20)


async def test_every_target_is_up(prometheus: str) -> None:
    targets = (await api(prometheus, "targets"))["activeTargets"]
    assert sorted(t["labels"]["job"] for t in targets) == ["whisk", "whisk-controllers", "whisk-controllers",
                                                           "whisk-invokers", "whisk-invokers"]
    assert all(t["health"] == "up" and t["lastError"] == "" for t in targets), targets
    assert list(values(await query(prometheus, "up"), "instance").values()) == [1, 1, 1, 1, 1]


async def test_activations_by_action_and_status(prometheus: str) -> None:
    by = values(await query(prometheus, 'sum by (action, status) (openwhisk_action_status{job="whisk"})'),
                "action", "status")
    assert by[("hello-js", "success")] == 2
    assert by[("failing", "application_error")] == 2
    assert by[("hello", "success")] >= 6 and by[("hello", "application_error")] == 0
    total = values(await query(prometheus, 'sum by (action, kind) (openwhisk_action_activations_total{job="whisk"})'),
                   "action", "kind")
    assert total[("hello-js", "nodejs:20")] == 2 and total[("failing", "python:3.11")] == 2
    # The cluster's activations were counted by the invokers that ran them.
    ran = values(await query(prometheus, 'sum(openwhisk_action_activations_total{job="whisk-invokers", '
                                         'action="hello"})'))
    assert ran[()] == 6


async def test_duration_quantiles_from_the_histograms(prometheus: str) -> None:
    for q in (0.5, 0.95, 0.99):
        expr = (f"histogram_quantile({q}, sum by (le, action) "
                f'(increase(openwhisk_action_duration_seconds_bucket{{job="whisk"}}[10m])))')
        quantiles = values(await query(prometheus, expr), "action")
        assert set(quantiles) >= {"hello", "hello-js", "failing"}
        assert all(0 < v <= 300 and not math.isnan(v) for v in quantiles.values()), quantiles
    p50 = values(await query(prometheus, 'histogram_quantile(0.5, sum by (le) '
                                         '(increase(openwhisk_action_waitTime_seconds_bucket[10m])))'))
    assert 0 <= p50[()] < 60


async def test_cold_starts(prometheus: str) -> None:
    cold = values(await query(prometheus, 'sum by (job, action) (openwhisk_action_coldStarts_total)'), "job", "action")
    # The first run of each action initialised a container; later runs of `hello` found it warm.
    assert cold[("whisk", "hello-js")] >= 1 and cold[("whisk", "failing")] >= 1
    assert 1 <= cold[("whisk", "hello")] < 6 + PER_MINUTE
    starts = values(await query(prometheus, 'sum by (start) (whisk_invoker_container_starts_total{job="whisk"})'),
                    "start")
    assert starts.get("warmed", 0) >= 1, starts


async def test_invoker_health_and_memory_in_use(prometheus: str) -> None:
    health = values(await query(prometheus, 'whisk_loadbalancer_invoker_up{job="whisk-controllers"}'), "instance",
                    "invoker")
    assert len(health) == 4 and set(health.values()) == {1}         # each controller sees both invokers up
    states = values(await query(prometheus, 'sum by (state) (whisk_loadbalancer_invokers{job="whisk-controllers"})'),
                    "state")
    assert states["up"] == 4 and states["down"] == 0
    limit = values(await query(prometheus, 'whisk_pool_memory_limit_bytes{job="whisk-invokers"}'), "instance")
    assert len(limit) == 2 and all(v == POOL_MB * 1_048_576 for v in limit.values())
    used = values(await query(prometheus, 'whisk_pool_memory_used_bytes / whisk_pool_memory_limit_bytes'), "job",
                  "instance")
    assert len(used) == 3 and all(0 <= v <= 1 for v in used.values())
    # Warm containers hold memory in the standalone pool (256 MB each, the default limit).
    assert values(await query(prometheus, 'whisk_pool_memory_used_bytes{job="whisk"}'))[()] >= 256 * 1_048_576
    rss = values(await query(prometheus, "process_resident_memory_bytes"), "instance")
    assert len(rss) == 5 and all(v > 10_000_000 for v in rss.values())


async def test_throttling(prometheus: str) -> None:
    throttled = values(await query(prometheus, "sum by (namespace) (openwhisk_action_limit_timed_total)"), "namespace")
    assert throttled["guest"] >= 1
    refused = values(await query(prometheus, 'sum(whisk_http_requests_total{job="whisk", status="429"})'))
    assert refused[()] == throttled["guest"]


async def test_the_alert_rules_are_loaded_and_evaluate_cleanly(prometheus: str) -> None:
    groups = (await api(prometheus, "rules"))["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules} == {
        "WhiskInvokerDown", "WhiskTargetDown", "WhiskActivationErrorRatio", "WhiskInternalErrors", "WhiskWaitTimeHigh",
        "WhiskApiLatencyHigh", "WhiskPoolExhausted", "WhiskPoolMemoryHigh", "WhiskThrottling", "WhiskBusDown"}

    async def evaluated() -> bool:
        rules_now = [r for g in (await api(prometheus, "rules"))["groups"] for r in g["rules"]]
        return all(r.get("lastEvaluation", "").startswith("2") and not r["lastEvaluation"].startswith("0001")
                   for r in rules_now)

    await until("every rule evaluated", evaluated, 10)
    rules = [r for g in (await api(prometheus, "rules"))["groups"] for r in g["rules"]]
    assert all(r["health"] == "ok" and not r.get("lastError") for r in rules), rules
    # The standalone namespace was throttled: that alert goes pending (its `for` has not passed) at a coming
    # evaluation; no invoker alert does.
    async def alerts() -> dict[tuple[str, str | None], str] | None:
        found = {(a["labels"]["alertname"], a["labels"].get("namespace")): a["state"]
                 for a in (await api(prometheus, "alerts"))["alerts"]}
        return found if found.get(("WhiskThrottling", "guest")) == "pending" else None

    found = await until("WhiskThrottling pending for guest", alerts, 10)
    assert not any(name in ("WhiskInvokerDown", "WhiskTargetDown") for name, _ in found), found


async def test_promtool_checks_and_unit_tests_the_rules() -> None:
    prometheus_or_missing()
    for args in (("check", "rules", str(RULES)), ("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")),
                 ("test", "rules", "alerts.test.yml")):
        proc = await asyncio.create_subprocess_exec(PROMTOOL, *args, cwd=DEPLOY / "prometheus",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        assert "SUCCESS" in out.decode()


_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")
_METRIC = re.compile(r"\b((?:openwhisk|whisk|process)_\w+|up)\b(?=\s*[{\[)])")


def substitute(expr: str, chosen: dict[str, str]) -> str:
    for name, value in BUILTIN.items():
        expr = expr.replace(name, value)
    for name in sorted(chosen, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", chosen[name]).replace(f"${name}", chosen[name])
    assert "$" not in expr.replace("$1", ""), f"a variable left in {expr}"
    return expr


async def variable_values(prom: str, variable: dict[str, Any], chosen: dict[str, str]) -> list[str]:
    """A dashboard variable's `label_values(selector, label)` query, run as Grafana runs it (the series API)."""
    text = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
    match = _LABEL_VALUES.match(substitute(text, chosen))
    assert match, f"variable {variable['name']}: not a label_values query: {text}"
    selector, label = match.groups()
    series = await api(prom, "series", **{"match[]": selector}) if selector else None
    found = sorted({s[label] for s in series if label in s}) if series is not None else \
        await api(prom, f"label/{label}/values")
    return found


async def test_every_dashboard_query_runs_and_returns_data(prometheus: str) -> None:
    assert [p.name for p in DASHBOARDS] == ["whisk-actions.json", "whisk-invokers.json", "whisk-namespaces.json",
                                            "whisk-overview.json"]
    ran = 0
    unseen: list[str] = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        chosen: dict[str, str] = {}
        for variable in dashboard["templating"]["list"]:
            found = await variable_values(prometheus, variable, chosen)
            assert found, f"{path.name}: variable {variable['name']} has no values"
            # "All" of a multi-value variable, as Grafana writes it into a regex matcher: each value's regex
            # metacharacters escaped twice, once for the regex and once for the PromQL string.
            chosen[variable["name"]] = "(" + "|".join(re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", v)
                                                      for v in found) + ")"
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
            for target in panel["targets"]:
                expr = substitute(target["expr"], chosen)
                samples = await query(prometheus, expr)        # a parse error fails inside query()
                ran += 1
                names = set(_METRIC.findall(expr))
                assert names, expr
                present = [bool(await api(prometheus, "series", **{"match[]": n})) for n in sorted(names)]
                if all(present):
                    assert samples, f"{path.name} / {panel['title']}: no data from {expr}"
                else:
                    unseen.append(expr)
    assert ran >= 40
    # The only metric this workload cannot make: refusals of the concurrent-invocations limit.
    assert all("openwhisk_action_limit_concurrent_total" in expr for expr in unseen), unseen


async def test_prometheus_graph_page_draws_whisk_metrics(prometheus: str) -> None:
    """Prometheus's own graph page in headless Chromium over two of the dashboards' queries; the screenshot stays in
    test-output/prometheus/ (docs/operations.md shows it)."""
    node = shutil.which("node")
    if node is None or not os.access("/usr/bin/chromium", os.X_OK) or not PLAYWRIGHT.is_dir():
        missing("node, /usr/bin/chromium and tests/node's playwright-core (bash .ci/deps.sh installs them)")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "graph.png"
    shot.unlink(missing_ok=True)
    graphs = {"g0.expr": 'sum by (job, action) (rate(openwhisk_action_activations_total[1m]))',
              "g1.expr": 'histogram_quantile(0.95, sum by (le, action) '
                         '(rate(openwhisk_action_duration_seconds_bucket[1m])))'}
    params = graphs | {"g0.tab": "0", "g0.range_input": "1m", "g1.tab": "0", "g1.range_input": "1m"}
    url = f"{prometheus}/classic/graph?{urlencode(params)}"
    proc = await asyncio.create_subprocess_exec(node, str(SCREENSHOT), url, str(shot), ".graph_area svg", "1200",
                                                "1420", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode(errors="replace")
    page = json.loads(out)
    assert "Prometheus" in page["title"]
    assert shot.stat().st_size > 10_000


async def test_a_killed_invoker_shows_in_the_metrics_and_its_alerts_go_pending(prometheus: str,
                                                                               cluster: Cluster) -> None:
    cluster.kill(cluster.invoker(1))

    async def seen_down() -> bool:
        # Both controllers see it down.
        health = values(await query(
            prometheus, 'max by (invoker) (whisk_loadbalancer_invoker_up{job="whisk-controllers"})'), "invoker")
        up = values(await query(prometheus, 'up{job="whisk-invokers"}'), "instance")
        return health == {"invoker0": 1, "invoker1": 0} and sorted(up.values()) == [0, 1]

    await until("invoker1 down in the metrics", seen_down, 40)

    async def pending() -> set[str] | None:
        alerts = (await api(prometheus, "alerts"))["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] in ("pending", "firing")
                 and (a["labels"].get("invoker") == "invoker1"
                      or a["labels"].get("instance") == hostport(cluster.invoker(1).url))}
        return names if names == {"WhiskInvokerDown", "WhiskTargetDown"} else None

    await until("the invoker alerts pending", pending, 20)
