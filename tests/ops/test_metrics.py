"""whisk/metrics.py in-process (the helpers the hot path calls), and `GET /metrics` scraped from a real server."""

from __future__ import annotations

import asyncio
import secrets
import time

import aiohttp
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from whisk import metrics
from whisk.entities.activation import Activation
from whisk.entities.errors import Conflict
from whisk.store.memory import MemoryStore

ECHO = 'def main(args):\n    return {"echo": args.get("n", 0)}\n'


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def record(namespace: str, action: str, *, code: int = 0, init_ms: int | None = None, wait_ms: int = 12,
           duration: int = 40, size: int | None = 17, memory: int = 256, kind: str = "python:3.11") -> Activation:
    annotations = [{"key": "path", "value": f"{namespace}/{action}"}, {"key": "waitTime", "value": wait_ms},
                   {"key": "kind", "value": kind}, {"key": "timeout", "value": False},
                   {"key": "limits", "value": {"memory": memory, "timeout": 60000}}]
    if init_ms is not None:
        annotations.append({"key": "initTime", "value": init_ms})
    response: dict = {"statusCode": code, "result": {}}
    if size is not None:
        response["size"] = size
    return Activation.from_doc({"namespace": "caller", "name": action.rsplit("/", 1)[-1],
                                "activationId": secrets.token_hex(16), "start": 1000, "end": 1000 + duration,
                                "duration": duration, "response": response, "annotations": annotations})


def test_an_init_under_a_millisecond_is_a_cold_start() -> None:
    """initTime 0 (a prewarmed proxy's /init can take less than a millisecond) is still an init: OpenWhisk's
    isColdStart is the annotation's presence, not its value."""
    ns, action = f"ns{secrets.token_hex(3)}", "quick"
    series = {"namespace": ns, "initiator": "caller", "action": action}
    metrics.observe_activation(record(ns, action, init_ms=0))
    metrics.observe_activation(record(ns, action))
    assert value("openwhisk_action_coldStarts_total", **series) == 1
    assert value("openwhisk_action_initTime_seconds_count", **series) == 1


def test_a_record_without_a_wait_time_observes_none() -> None:
    """A whisk-error record the controller writes for an activation forced closed has no waitTime (only its invoker
    knew it): the histogram must not take a made-up 0 s for it."""
    ns = f"ns{secrets.token_hex(3)}"
    forced = Activation.whisk_error(namespace=ns, name="x", subject=ns, activation_id=secrets.token_hex(16),
                                    version="0.0.1", path=f"{ns}/x", binding=None, at=1000, error="lost")
    metrics.observe_activation(forced)
    series = {"namespace": ns, "initiator": ns, "action": "x"}
    assert value("openwhisk_action_status", **series, status="whisk_internal_error") == 1
    assert REGISTRY.get_sample_value("openwhisk_action_waitTime_seconds_count", series) == 0


def test_observe_activation_uses_openwhisk_names_and_labels() -> None:
    ns, action = f"ns{secrets.token_hex(3)}", "pkg/act"
    series = {"namespace": ns, "initiator": "caller", "action": action}
    cold = value("whisk_invoker_container_starts_total", start="cold")
    metrics.observe_activation(record(ns, action, init_ms=300))
    metrics.observe_container_start("cold")
    metrics.observe_activation(record(ns, action, code=1, size=None))
    metrics.observe_activation(record(ns, action, code=2, duration=2500))

    assert value("openwhisk_action_activations_total", **series, kind="python:3.11", memory="256") == 3
    assert value("openwhisk_action_coldStarts_total", **series) == 1
    assert value("openwhisk_action_initTime_seconds_count", **series) == 1
    assert value("openwhisk_action_initTime_seconds_sum", **series) == pytest.approx(0.3)
    assert value("openwhisk_action_waitTime_seconds_count", **series) == 3
    assert value("openwhisk_action_duration_seconds_sum", **series) == pytest.approx(0.04 + 0.04 + 2.5)
    assert value("openwhisk_action_duration_seconds_bucket", **series, le="0.05") == 2
    assert value("openwhisk_action_status", **series, status="success") == 1
    assert value("openwhisk_action_status", **series, status="application_error") == 1
    assert value("openwhisk_action_status", **series, status="action_developer_error") == 1
    assert value("openwhisk_action_status", **series, status="whisk_internal_error") == 0
    assert value("openwhisk_action_response_size_bytes_count", **series) == 2
    assert value("openwhisk_action_memory", **series) == 256
    assert value("whisk_invoker_container_starts_total", start="cold") == cold + 1
    # The dashboards query `openwhisk_action_status` without a suffix (OpenWhisk's Java client did not add one).
    text = generate_latest(REGISTRY).decode()
    assert f'openwhisk_action_status{{action="{action}",initiator="caller",namespace="{ns}",status="success"}} 1.0' \
        in text
    # Ids never become labels.
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert not any(len(v) == 32 and v.isalnum() and v.islower() for v in sample.labels.values()), sample


def test_observe_activation_caps_the_number_of_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_ACTIONS", len(metrics._series))
    before = value("openwhisk_action_activations_total", namespace=metrics.OVERFLOW, initiator=metrics.OVERFLOW,
                   action=metrics.OVERFLOW, kind="nodejs:20", memory="128")
    for _ in range(3):
        metrics.observe_activation(record(f"ns{secrets.token_hex(3)}", "a", kind="nodejs:20", memory=128))
    after = value("openwhisk_action_activations_total", namespace=metrics.OVERFLOW, initiator=metrics.OVERFLOW,
                  action=metrics.OVERFLOW, kind="nodejs:20", memory="128")
    assert after - before == 3


def test_throttles_and_completions() -> None:
    ns = f"ns{secrets.token_hex(3)}"
    metrics.observe_throttle(ns, "concurrent")
    metrics.observe_throttle(ns, "timed")
    metrics.observe_throttle(ns, "timed")
    assert value("openwhisk_action_limit_concurrent_total", namespace=ns) == 1
    assert value("openwhisk_action_limit_timed_total", namespace=ns) == 2
    before = value("whisk_loadbalancer_completions_total", outcome="timeout")
    metrics.observe_completion("timeout")
    assert value("whisk_loadbalancer_completions_total", outcome="timeout") == before + 1


async def test_instrumented_store_times_calls_and_counts_errors() -> None:
    async with MemoryStore() as raw:
        store = metrics.instrument(raw, "store")
        calls = value("whisk_backend_operation_seconds_count", port="store", op="put")
        conflicts = value("whisk_backend_errors_total", port="store", op="put", error="Conflict")
        doc_id = f"guest/{secrets.token_hex(4)}"
        await store.put({"_id": doc_id, "entityType": "action"})
        with pytest.raises(Conflict):
            await store.put({"_id": doc_id, "entityType": "action"})
        assert (await store.get(doc_id))["_id"] == doc_id
        assert value("whisk_backend_operation_seconds_count", port="store", op="put") == calls + 2
        assert value("whisk_backend_errors_total", port="store", op="put", error="Conflict") == conflicts + 1
        assert value("whisk_backend_operation_seconds_count", port="store", op="get") >= 1
        await store.ping()                               # every coroutine method passes through


def test_pool_and_balancer_states_are_read_at_scrape_time() -> None:
    pool: dict = {"state": metrics.PoolState(containers={"ready": 2, "busy": 1}, memory_used_mb=768,
                                       memory_limit_mb=2048, buffered=4, prewarms_expired=2)}
    stop_pool = metrics.watch_pool(lambda: pool["state"])
    stop_balancer = metrics.watch_balancer(lambda: metrics.BalancerState(
        invokers={"up": 2, "down": 1}, in_flight=5, in_flight_memory_mb=1280, forced_total=3,
        health={"invoker0": "up", "invoker1": "up", "invoker2": "down"}, controllers=2))
    try:
        assert value("whisk_pool_containers", state="ready") == 2
        assert value("whisk_pool_memory_used_bytes") == 768 * metrics.MB
        assert value("whisk_pool_buffered_runs") == 4
        assert value("whisk_pool_prewarms_expired_total") == 2
        # ContainerPool.stats()'s own dict, read again at the next scrape.
        pool["state"] = {"containers": {"busy": 3}, "memory_used_mb": 768, "memory_mb": 2048, "buffered": 0,
                         "prewarms_expired": 5}
        assert value("whisk_pool_containers", state="busy") == 3
        assert value("whisk_pool_containers", state="paused") == 0       # every state, even when none is in it
        assert value("whisk_pool_memory_limit_bytes") == 2048 * metrics.MB
        assert value("whisk_pool_prewarms_expired_total") == 5
        assert value("whisk_loadbalancer_invokers", state="up") == 2
        assert value("whisk_loadbalancer_invokers", state="unhealthy") == 0
        assert value("whisk_loadbalancer_activations_in_flight") == 5
        assert value("whisk_loadbalancer_memory_in_flight_bytes") == 1280 * metrics.MB
        assert value("whisk_loadbalancer_completions_forced_total") == 3
        assert value("whisk_loadbalancer_controllers") == 2
        assert value("whisk_loadbalancer_invoker_up", invoker="invoker0") == 1
        assert REGISTRY.get_sample_value("whisk_loadbalancer_invoker_up", {"invoker": "invoker2"}) == 0
    finally:
        stop_pool()
        stop_balancer()
    assert REGISTRY.get_sample_value("whisk_pool_buffered_runs") is None


def test_bus_gauge_is_up_only_while_every_reader_says_so() -> None:
    """whisk_bus_up, one per process: 0 when the balancer or the invoker finds the bus away, or cannot say."""
    answers = {"balancer": True, "invoker": True}
    assert REGISTRY.get_sample_value("whisk_bus_up") is None          # nothing watched: no series (standalone)
    stops = [metrics.watch_bus(lambda: answers["balancer"]), metrics.watch_bus(lambda: answers["invoker"])]
    try:
        assert REGISTRY.get_sample_value("whisk_bus_up") == 1
        answers["invoker"] = False
        assert REGISTRY.get_sample_value("whisk_bus_up") == 0
        answers["invoker"] = True

        def broken() -> bool:
            raise RuntimeError("no balancer")
        stops.append(metrics.watch_bus(broken))
        assert REGISTRY.get_sample_value("whisk_bus_up") == 0
    finally:
        for stop in stops:
            stop()
    assert REGISTRY.get_sample_value("whisk_bus_up") is None


async def test_a_run_without_a_container_counts_no_container_start() -> None:
    """The invoker counts how each run's container was obtained; a job the pool refused before seeking one (more
    memory than the whole pool) was obtained no way, and is no cold start."""
    from tests.invoker.test_ack_failures import one_blocking_activation
    from whisk.containerpool.job import NO_CONTAINER, RunResult
    from whisk.messaging.memory import MemoryBus

    class Refusing:
        async def run(self, job: object, on_response: object = None) -> RunResult:
            return RunResult({"statusCode": 3, "result": {"error": "x"}}, 1, 1, None, False, NO_CONTAINER)

    starts = {start: value("whisk_invoker_container_starts_total", start=start) for start in ("cold", NO_CONTAINER)}
    async with MemoryBus() as bus, MemoryStore() as store:
        async with one_blocking_activation(bus, store, Refusing()):
            await asyncio.wait_for(_recorded(store), 5)
    assert {start: value("whisk_invoker_container_starts_total", start=start) for start in starts} == starts


async def _recorded(store: MemoryStore) -> None:
    while await store.get_activation("guest", "a" * 32) is None:
        await asyncio.sleep(0.01)


async def _scrape(session: aiohttp.ClientSession) -> dict[tuple[str, frozenset], float]:
    async with session.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _get(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_scrape_a_real_server_after_requests(guest: aiohttp.ClientSession) -> None:
    before = await _scrape(guest)
    name = f"ops-metrics-{secrets.token_hex(4)}"
    url = f"/api/v1/namespaces/_/actions/{name}"
    async with guest.put(url, json={"exec": {"kind": "python:3", "code": ECHO}}) as resp:
        assert resp.status == 200
    for n in range(3):
        async with guest.post(url, params={"blocking": "true"}, json={"n": n}) as resp:
            assert resp.status == 200, await resp.text()
    async with guest.get("/api/v1/namespaces/_/actions/no-such-action") as resp:
        assert resp.status == 404
    async with guest.get(f"/not/a/route/{name}") as resp:
        assert resp.status == 404
    after = await _scrape(guest)

    def delta(metric: str, **labels: str) -> float:
        return _get(after, metric, **labels) - _get(before, metric, **labels)

    route = "/api/v1/namespaces/{namespace}/actions/{name}"
    assert delta("whisk_http_requests_total", method="PUT", route=route, status="200") == 1
    assert delta("whisk_http_requests_total", method="POST", route=route, status="200") == 3
    assert delta("whisk_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta("whisk_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("whisk_http_request_duration_seconds_count", method="POST", route=route) == 3
    # Route templates only: no action name and no raw path in any label.
    assert not [key for key in after if any(name in v for _, v in key[1])
                and key[0].startswith("whisk_http")]
    assert _get(after, "process_resident_memory_bytes") > 0


async def test_a_web_action_cannot_grow_a_series_per_status_code(guest: aiohttp.ClientSession) -> None:
    """A web action chooses its answer's status, any of 200-599: the HTTP series keep registered codes as they are
    and name the others by class (`4xx`), so that one tenant cannot add hundreds of series per route and method."""
    name = f"ops-status-{secrets.token_hex(4)}"
    code = 'def main(args):\n    return {"statusCode": int(args["code"]), "body": "x"}\n'
    async with guest.put(f"/api/v1/namespaces/_/actions/{name}",
                         json={"exec": {"kind": "python:3", "code": code},
                               "annotations": [{"key": "web-export", "value": True}]}) as resp:
        assert resp.status == 200
    before = await _scrape(guest)
    for status in (418, 477, 478, 299, 404):
        async with guest.get(f"/api/v1/web/guest/default/{name}.http", params={"code": str(status)}) as resp:
            assert resp.status == status
    after = await _scrape(guest)

    def delta(status: str) -> float:
        labels = {"method": "GET", "route": "/api/v1/web/{tail}", "status": status}
        return _get(after, "whisk_http_requests_total", **labels) - _get(before, "whisk_http_requests_total", **labels)

    assert (delta("418"), delta("404"), delta("4xx"), delta("2xx")) == (1, 1, 2, 1)
    assert not [key for key in after if key[0] == "whisk_http_requests_total" and ("status", "477") in key[1]]


async def test_scrape_a_real_server_after_activations(guest: aiohttp.ClientSession) -> None:
    """Needs the hot-path calls in the invoker (metrics.observe_activation after storing a record) and the
    instrumented store (metrics.instrument in roles.py)."""
    before = await _scrape(guest)
    name = f"ops-activations-{secrets.token_hex(4)}"
    url = f"/api/v1/namespaces/_/actions/{name}"
    async with guest.put(url, json={"exec": {"kind": "python:3", "code": ECHO}}) as resp:
        assert resp.status == 200
    for n in range(3):
        async with guest.post(url, params={"blocking": "true"}, json={"n": n}) as resp:
            assert resp.status == 200, await resp.text()
    series = {"namespace": "guest", "initiator": "guest", "action": name}
    # A blocking caller gets its result before the invoker stores the record (docs/openwhisk.md §5.3): poll for the
    # count.
    deadline = time.monotonic() + 15
    while True:
        after = await _scrape(guest)
        if _get(after, "openwhisk_action_status", **series, status="success") >= 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)

    def delta(metric: str, **labels: str) -> float:
        return _get(after, metric, **labels) - _get(before, metric, **labels)

    # The activations, under OpenWhisk's user-events names, once the invoker stored their records.
    assert delta("openwhisk_action_status", **series, status="success") == 3
    assert delta("openwhisk_action_waitTime_seconds_count", **series) == 3
    assert delta("openwhisk_action_coldStarts_total", **series) >= 1
    # Store calls are timed, by operation.
    assert delta("whisk_backend_operation_seconds_count", port="store", op="put_activation") >= 3


async def test_balancer_state_of_a_real_lean_balancer() -> None:
    from whisk.loadbalancer.base import Entry
    from whisk.loadbalancer.lean import LeanBalancer
    from whisk.messaging.memory import MemoryBus

    async with MemoryBus() as bus, LeanBalancer(bus, controller=0) as balancer:
        for n, memory in enumerate((256, 512)):
            balancer.book.add(Entry(activation_id=f"a{n}", namespace_uuid="u", namespace="guest",
                                    action_path="guest/x", invoker=0, memory_mb=memory, concurrency=1,
                                    blocking=False), timeout_ms=60_000)
        stop = metrics.watch_balancer(lambda: metrics.BalancerState.of(balancer))
        try:
            assert value("whisk_loadbalancer_activations_in_flight") == 2
            assert value("whisk_loadbalancer_memory_in_flight_bytes") == 768 * metrics.MB
            assert value("whisk_loadbalancer_completions_forced_total") == 0
            assert value("whisk_loadbalancer_invokers", state="up") == 0        # lean: no health protocol
            assert value("whisk_loadbalancer_controllers") == 1                 # lean: alone
        finally:
            stop()


async def test_pool_and_balancer_gauges_on_a_real_server(guest: aiohttp.ClientSession) -> None:
    """Needs roles.py to watch the pool (metrics.watch_pool) and the balancer (metrics.watch_balancer)."""
    samples = await _scrape(guest)
    names = {name for name, _labels in samples}
    assert {"whisk_pool_containers", "whisk_pool_memory_limit_bytes", "whisk_pool_buffered_runs",
            "whisk_loadbalancer_activations_in_flight", "whisk_loadbalancer_memory_in_flight_bytes"} <= names
    assert _get(samples, "whisk_pool_memory_limit_bytes") > 0
