"""The distributed architecture end to end (docs/openwhisk.md §5, §6): two controllers and two invokers as separate
processes over the Apache Kafka broker, pouchdb-server and the Consul double. Invoker health and supervision, the
home-invoker hash, records in CouchDB, disable/enable, and an invoker killed with SIGKILL. The tests share one
cluster and run in file order (the kill comes last)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio

from tests.distributed.cluster import (ADMIN_PASSWORD, ADMIN_USER, ANCESTORS, SLOW, Cluster, cluster_env,
                                       guest_session, new_workdir, owned, until)
from tests.support.processes import basic_auth
from whisk.loadbalancer.sharding import action_hash

pytestmark = [pytest.mark.kafka, pytest.mark.couchdb, pytest.mark.timeout(120)]

UP_DEADLINE_S = 60          # first ping, then the health test action's cold start
DOWN_DEADLINE_S = 15        # 10 s without pings, plus margin
INVALIDATION_DEADLINE_S = 2  # cacheInvalidation is asynchronous: a write is seen elsewhere after one bus hop


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_broker: Any, couchdb_url: str, consul_url: str) -> AsyncIterator[Cluster]:
    env, prefix = cluster_env(kafka_broker.bootstrap, couchdb_url, consul_url)
    async with owned(Cluster(env, couchdb_url, prefix, new_workdir())) as c:
        await asyncio.gather(c.start("controller", 0), c.start("controller", 1))
        await asyncio.gather(c.start("invoker", 0), c.start("invoker", 1))
        for controller in c.controllers:
            await until(f"both invokers up on {controller.url}",
                        lambda: invokers_are(c, {"invoker0": "up", "invoker1": "up"}, controller), UP_DEADLINE_S)
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def guest(cluster: Cluster) -> AsyncIterator[aiohttp.ClientSession]:
    async with guest_session(cluster.controller.url) as session:
        yield session


async def get_json(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, s.get(url, **kwargs) as r:
        return r.status, await r.json(content_type=None)


async def invokers_are(c: Cluster, expected: dict[str, str], controller: Any = None) -> dict[str, str] | None:
    status, body = await get_json(f"{(controller or c.controller).url}/invokers")
    return body if status == 200 and body == expected else None


async def put_action(session: aiohttp.ClientSession, name: str, code: str, kind: str = "python:3") -> None:
    async with session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                           json={"exec": {"kind": kind, "code": code}}) as r:
        assert r.status == 200, await r.text()


async def invoke(session: aiohttp.ClientSession, name: str, payload: Any = None, *,
                 blocking: bool = True) -> tuple[int, Any]:
    params = {"blocking": "true"} if blocking else {}
    async with session.post(f"/api/v1/namespaces/_/actions/{name}", params=params, json=payload or {}) as r:
        return r.status, await r.json()


def ran_on(c: Cluster, record: dict[str, Any]) -> int:
    """The invoker whose process is an ancestor of the action's process."""
    ancestors = set(record["response"]["result"]["ancestors"])
    hits = [m.instance for m in c.members if m.role == "invoker" and m.proc.pid in ancestors]
    assert len(hits) == 1, (ancestors, [(m.instance, m.proc.pid) for m in c.members])
    return hits[0]


def home(name: str, invokers: int = 2) -> int:
    """The home invoker of guest's action `name` over `invokers` managed invokers (docs/openwhisk.md §6.3)."""
    return action_hash("guest", f"guest/{name}") % invokers


async def couch_record(c: Cluster, activation_id: str) -> dict[str, Any] | None:
    doc_id = quote(f"guest/{activation_id}", safe="")
    status, body = await get_json(f"{c.couch_base}/{c.prefix}activations/{doc_id}",
                                  headers={"Accept": "application/json"})
    return body if status == 200 and body.get("end") else None


async def test_controller_reports_both_invokers_up(cluster: Cluster) -> None:
    url = cluster.controller.url
    assert await get_json(f"{url}/invokers") == (200, {"invoker0": "up", "invoker1": "up"})
    assert await get_json(f"{url}/invokers/healthy/count") == (200, 2)
    assert await get_json(f"{url}/invokers/ready") == (200, {"healthy": "2/2"})
    # The health test action was created in the store at controller start (docs/openwhisk.md §6.4).
    status, body = await get_json(f"{cluster.couch_base}/{cluster.prefix}whisks/"
                                  f"{quote('whisk.system/invokerHealthTestAction0', safe='')}",
                                  headers={"Accept": "application/json"})
    assert status == 200 and body["exec"]["kind"].startswith("nodejs"), body


async def test_blocking_and_non_blocking_invokes_store_records_in_couchdb(cluster: Cluster,
                                                                          guest: aiohttp.ClientSession) -> None:
    await put_action(guest, "dist-echo", ANCESTORS)
    status, body = await invoke(guest, "dist-echo", {"x": 1})
    assert status == 200, body
    assert body["response"]["success"] is True and body["response"]["result"]["echo"] == {"x": 1}
    stored = await until("the blocking record in CouchDB", lambda: couch_record(cluster, body["activationId"]), 20)
    assert stored["response"]["result"]["echo"] == {"x": 1} and stored["name"] == "dist-echo"

    status, body = await invoke(guest, "dist-echo", {"y": 2}, blocking=False)
    assert status == 202 and set(body) == {"activationId"}, body
    stored = await until("the non-blocking record in CouchDB", lambda: couch_record(cluster, body["activationId"]),
                         30)
    assert stored["response"]["result"]["echo"] == {"y": 2}
    assert ran_on(cluster, stored) == home("dist-echo")
    # The API reads the same record back through the controller.
    async with guest.get(f"/api/v1/namespaces/_/activations/{body['activationId']}") as r:
        assert r.status == 200 and (await r.json())["activationId"] == body["activationId"]


async def test_a_blocking_callers_record_is_readable_at_once(cluster: Cluster, guest: aiohttp.ClientSession) -> None:
    """The invoker is another process, and its CouchDB writer batches records: the completion ack that closes the
    activation in the caller's controller waits for the write, so a caller that has its result reads its record
    there at once (about 100 KB of logs made the gap 20-40 ms, and the read a 404, most of the time)."""
    await put_action(guest, "dist-logs", "import sys\ndef main(a):\n    for i in range(2000):\n"
                                         "        print('line', i, 'x' * 40)\n        print(i, file=sys.stderr)\n"
                                         "    return {'n': a['n']}\n")
    for n in range(12):
        status, body = await invoke(guest, "dist-logs", {"n": n})
        assert status == 200 and body["response"]["result"] == {"n": n}, body
        async with guest.get(f"/api/v1/namespaces/_/activations/{body['activationId']}/logs") as r:
            assert r.status == 200, (n, await r.text())
            assert len((await r.json())["logs"]) == 4000


async def test_actions_run_on_their_home_invoker_and_use_both(cluster: Cluster,
                                                              guest: aiohttp.ClientSession) -> None:
    names = [f"dist-spread-{i}" for i in range(10)]
    assert {home(n) for n in names} == {0, 1}, "the names must hash to both invokers"
    await asyncio.gather(*(put_action(guest, n, ANCESTORS) for n in names))
    placed: dict[str, list[int]] = {}
    for _ in range(2):
        for n in names:              # one at a time: every home invoker has room, so nothing overflows
            status, body = await invoke(guest, n)
            assert status == 200, body
            placed.setdefault(n, []).append(ran_on(cluster, body))
    assert placed == {n: [home(n), home(n)] for n in names}


async def test_update_through_one_controller_is_seen_through_the_other(cluster: Cluster) -> None:
    a, b = cluster.controllers
    code = "def main(args):\n    return {{'version': {}}}\n"
    async with guest_session(a.url) as via_a, guest_session(b.url) as via_b:
        lags: list[float] = []
        await put_action(via_a, "dist-versioned", code.format(1))
        for _ in range(2):                       # the second read comes from b's cache
            status, body = await invoke(via_b, "dist-versioned")
            assert status == 200 and body["response"]["result"] == {"version": 1}, body
        for version in (2, 3):
            await put_action(via_a, "dist-versioned", code.format(version))
            written = time.monotonic()

            async def seen_by_b() -> bool:
                async with via_b.get("/api/v1/namespaces/_/actions/dist-versioned") as r:
                    return f"'version': {version}" in (await r.json())["exec"]["code"]

            await until(f"version {version} through b", seen_by_b, INVALIDATION_DEADLINE_S, interval_s=0.01)
            lags.append(time.monotonic() - written)
            status, body = await invoke(via_b, "dist-versioned")
            assert status == 200 and body["response"]["result"] == {"version": version}, body
        async with via_a.delete("/api/v1/namespaces/_/actions/dist-versioned") as r:
            assert r.status == 200

        async def gone_from_b() -> bool:
            async with via_b.get("/api/v1/namespaces/_/actions/dist-versioned") as r:
                return r.status == 404

        await until("the delete through b", gone_from_b, INVALIDATION_DEADLINE_S, interval_s=0.01)
        print(f"invalidation lag through the bus: {', '.join(f'{lag * 1000:.0f} ms' for lag in lags)}")


async def test_disabled_invoker_goes_down_and_comes_back(cluster: Cluster, guest: aiohttp.ClientSession) -> None:
    inv1 = cluster.invoker(1)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{inv1.url}/disable") as r:
            assert r.status == 401
        async with s.post(f"{inv1.url}/disable", headers=basic_auth("admin", "wrong")) as r:
            assert r.status == 401
        async with s.post(f"{inv1.url}/disable", headers=basic_auth(ADMIN_USER, ADMIN_PASSWORD)) as r:
            assert r.status == 200, await r.text()
        async with s.get(f"{inv1.url}/isEnabled", headers=basic_auth(ADMIN_USER, ADMIN_PASSWORD)) as r:
            assert r.status == 200 and await r.json() == {"enabled": False}
        await until("invoker1 down after /disable",
                    lambda: invokers_are(cluster, {"invoker0": "up", "invoker1": "down"}), 5)
        assert await get_json(f"{cluster.controller.url}/invokers/ready") == (500, {"unhealthy": "1/2"})
        name = next(f"dist-away-{i}" for i in range(100) if home(f"dist-away-{i}") == 1)
        await put_action(guest, name, ANCESTORS)
        status, body = await invoke(guest, name)
        assert status == 200 and ran_on(cluster, body) == 0, body

        async with s.post(f"{inv1.url}/enable", headers=basic_auth(ADMIN_USER, ADMIN_PASSWORD)) as r:
            assert r.status == 200, await r.text()
        async with s.get(f"{inv1.url}/isEnabled", headers=basic_auth(ADMIN_USER, ADMIN_PASSWORD)) as r:
            assert await r.json() == {"enabled": True}
        await until("invoker1 up after /enable",
                    lambda: invokers_are(cluster, {"invoker0": "up", "invoker1": "up"}), 30)
        status, body = await invoke(guest, name)
        assert status == 200 and ran_on(cluster, body) == 1, body


async def test_killed_invoker_goes_down_and_work_moves_to_the_other(cluster: Cluster,
                                                                   guest: aiohttp.ClientSession) -> None:
    inv1 = cluster.invoker(1)
    slow = next(f"dist-slow-{i}" for i in range(100) if home(f"dist-slow-{i}") == 1)
    await put_action(guest, slow, SLOW)
    marker = os.path.join(cluster.workdir, "slow-started")
    status, body = await invoke(guest, slow, {"marker": marker}, blocking=False)
    assert status == 202, body
    lost = body["activationId"]
    await until("the slow activation running on invoker1", lambda: asyncio.sleep(0, os.path.exists(marker)), 30)

    cluster.kill(inv1)
    await inv1.proc.wait()
    await until("invoker1 down after SIGKILL",
                lambda: invokers_are(cluster, {"invoker0": "up", "invoker1": "down"}), DOWN_DEADLINE_S)
    assert await get_json(f"{cluster.controller.url}/invokers/ready") == (500, {"unhealthy": "1/2"})
    assert await get_json(f"{cluster.controller.url}/invokers/healthy/count") == (200, 1)
    names = [f"dist-spread-{i}" for i in range(10)]
    results = await asyncio.gather(*(invoke(guest, n) for n in names))
    for status, body in results:
        assert status == 200, body
        assert ran_on(cluster, body) == 0
    # The activation lost with invoker1 still ends with exactly one record: a whisk error, written by the
    # controller once the invoker was found silent (Offline after 10 s), long before its completion-ack timeout.
    record = await until("the lost activation's record", lambda: couch_record(cluster, lost), 20)
    assert record["response"]["statusCode"] == 3 and "error" in record["response"]["result"], record
