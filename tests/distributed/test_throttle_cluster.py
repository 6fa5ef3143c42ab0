"""Throttles in a cluster (docs/openwhisk.md §8): each of two controllers enforces its share of a namespace's limits,
OpenWhisk's `calculateIndividualLimit` over `loadBalancer.clusterSize`: ceil(limit × 1.2) / controllers, counted on
its own (a per-minute bucket and the activations it has in flight)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.distributed.cluster import Cluster, guest_session, until
from tests.distributed.test_balancer import two_controllers
from tests.support import waiting

pytestmark = [pytest.mark.kafka, pytest.mark.couchdb, pytest.mark.timeout(240)]

SLEEPY = "import time\ndef main(args):\n    time.sleep(3)\n    return {'slept': 3}\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_broker, couchdb_url: str, consul_url: str) -> AsyncIterator[Cluster]:
    limits = {"WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "10", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "20"}
    async with two_controllers(kafka_broker.bootstrap, couchdb_url, consul_url, limits, SLEEPY) as c:
        yield c


async def test_each_controller_enforces_its_share(cluster: Cluster) -> None:
    # 10 a minute over two controllers: 6 a minute on each (20 at once: 12 on each, no matter here).
    await waiting.room_in_the_minute(30)
    for controller in cluster.controllers:
        async with guest_session(controller.url) as s:
            statuses = []
            for _ in range(7):
                async with s.post("/api/v1/namespaces/_/actions/sleepy") as r:
                    statuses.append((r.status, await r.json()))
            assert [st for st, _ in statuses] == [202] * 6 + [429], statuses
            assert statuses[-1][1]["error"] == "Too many requests in the last minute (count: 7, allowed: 6)."


async def test_a_concurrency_limit_set_by_admin_is_shared_by_both(cluster: Cluster) -> None:
    """`whisk admin limits set` on the cluster's store: each controller applies it once its cached identity expires
    (30 s), its share of 2 at once being 1."""
    admin = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "whisk", "admin", "limits", "set", "guest", "--concurrentInvocations", "2",
        "--invocationsPerMinute", "1000", "--store", cluster.env["WHISK_STORE"])
    assert await admin.wait() == 0

    async def refused(url: str) -> dict | None:
        async with guest_session(url) as s:
            first = asyncio.create_task(s.post("/api/v1/namespaces/_/actions/sleepy?blocking=true"))
            await asyncio.sleep(1)
            async with s.post("/api/v1/namespaces/_/actions/sleepy") as r:
                second = (r.status, await r.json())
            async with await first as r:
                assert r.status in (200, 429), await r.text()
            # (the per-minute share of the test before holds until the new limits are read)
            return second[1] if second[0] == 429 and "concurrent" in second[1]["error"] else None

    for controller in cluster.controllers:
        body = await until(f"the share applied on {controller.url}", lambda: refused(controller.url), 60,
                           interval_s=1)
        assert body["error"] == "Too many concurrent requests in flight (count: 1, allowed: 1)."
