"""Alarms on the test cluster (tests/distributed/cluster.py: the broker, pouchdb-server as CouchDB, the Consul
double): two controllers starting at once both install the catalog; with both running each tick fires once
(the claim is a conditional write of the alarm document in CouchDB); when one is killed the other carries on.
No invoker is started: what is counted is the trigger's records, which the controllers write (each logs its rule's
activation as refused for want of an invoker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.distributed.cluster import Cluster, cluster_env, guest_session, new_workdir, owned, until
from tests.support.processes import GUEST_AUTH

pytestmark = [pytest.mark.kafka, pytest.mark.couchdb, pytest.mark.timeout(180)]

TICK_S = 2


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_broker: Any, couchdb_url: str, consul_url: str) -> AsyncIterator[Cluster]:
    env, prefix = cluster_env(kafka_broker.bootstrap, couchdb_url, consul_url)
    env["WHISK_ALARMS_REFRESH_S"] = "1"
    env["WHISK_LIMIT_FIRES_PER_MINUTE"] = "1000"
    async with owned(Cluster(env, couchdb_url, prefix, new_workdir())) as c:
        await asyncio.gather(c.start("controller", 0), c.start("controller", 1))
        yield c


def ticks_spanned(starts: list[int]) -> int:
    """How many ticks lie between the first and the last fire: more fires than that means a tick fired twice (half
    a period of slack, so that one fire recorded late on a busy machine does not count as an extra tick)."""
    period = TICK_S * 1000
    return int((starts[-1] - starts[0] + period / 2) // period) + 1


async def trigger_fires(session: Any, trigger: str) -> list[int]:
    async with session.get("/api/v1/namespaces/_/activations", params={"name": trigger, "limit": "200"}) as r:
        assert r.status == 200
        return sorted(a["start"] for a in await r.json())


async def test_each_tick_fires_once_with_two_controllers_and_once_one_is_killed(cluster: Cluster) -> None:
    c0, c1 = cluster.controllers
    async with guest_session(c0.url) as guest0, guest_session(c1.url) as guest1:
        for path, body in (("triggers/tick", {}),
                           ("actions/tock", {"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}),
                           ("rules/ticktock", {"trigger": "/_/tick", "action": "/_/tock"})):
            async with guest0.put(f"/api/v1/namespaces/_/{path}?overwrite=true", json=body) as r:
                assert r.status == 200, await r.text()
        # The feed goes through the other controller: it serves the catalog that both installed.
        body = {"lifecycleEvent": "CREATE", "triggerName": "/_/tick", "authKey": GUEST_AUTH,
                "cron": f"*/{TICK_S} * * * * *"}
        async with guest1.post("/api/v1/namespaces/whisk.system/actions/alarms/alarm?blocking=true", json=body) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["response"]["result"] == {"status": "success"}

        async def enough(n: int, since: int = 0) -> list[int] | None:
            starts = [s for s in await trigger_fires(guest1, "tick") if s >= since]
            return starts if len(starts) >= n else None

        both = await until("five ticks with both controllers", lambda: enough(5), deadline_s=30)
        assert len(both) <= ticks_spanned(both), both                      # no tick fired twice
        cluster.kill(c0)
        killed = int(time.time() * 1000)
        alone = await until("three ticks after the kill", lambda: enough(3, killed), deadline_s=30)
        assert len(alone) <= ticks_spanned(alone), alone
        body["lifecycleEvent"] = "DELETE"
        async with guest1.post("/api/v1/namespaces/whisk.system/actions/alarms/alarm?blocking=true", json=body) as r:
            assert r.status == 200
