"""The sharding balancer on the cluster's shape (docs/openwhisk.md §5.5, §6): two controllers sharing one invoker
over Apache Kafka, pouchdb-server and the Consul double, with a broker of this module's own (so that it can be
stopped) and a short completion-ack timeout (so that one can pass while the broker is away). The tests run in file
order and leave the cluster usable for the next one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
import pytest_asyncio

from tests.distributed.cluster import Cluster, cluster_env, guest_session, new_workdir, owned, until
from tests.distributed.test_cluster import get_json, invoke, put_action
from tests.support.kafka_broker import KafkaBroker
from tests.support.processes import terminate

pytestmark = [pytest.mark.kafka, pytest.mark.couchdb, pytest.mark.timeout(240)]

UP_DEADLINE_S = 60          # first ping, then the health test action's cold start
ACK_TIMEOUT_S = 15          # WHISK_ACK_TIMEOUT_FACTOR 0: the add-on alone
DEPART_S = 10               # an invoker gone from Consul and silent this long is forgotten
# Runs long enough to be running when the broker stops, and ends while it is away: its ack waits.
SLEEPY = "import time\ndef main(args):\n    time.sleep(4)\n    return {'slept': 4}\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(broker: KafkaBroker, couchdb_url: str, consul_url: str) -> AsyncIterator[Cluster]:
    settings = {"WHISK_ACK_TIMEOUT_FACTOR": "0", "WHISK_ACK_TIMEOUT_ADDON_S": str(ACK_TIMEOUT_S),
                "WHISK_INVOKER_DEPART_S": str(DEPART_S)}
    async with two_controllers(broker.bootstrap, couchdb_url, consul_url, settings, SLEEPY) as c:
        yield c


@asynccontextmanager
async def two_controllers(bootstrap: str, couchdb_url: str, consul_url: str, settings: dict[str, str],
                          sleepy: str) -> AsyncIterator[Cluster]:
    """Two controllers sharing invoker0 with `settings` added, each seeing it up and the other controller, and the
    guest's action `sleepy`."""
    env, prefix = cluster_env(bootstrap, couchdb_url, consul_url)
    async with owned(Cluster(env | settings, couchdb_url, prefix, new_workdir())) as c:
        await asyncio.gather(c.start("controller", 0), c.start("controller", 1))
        await c.start("invoker", 0)
        await all_up(c)
        async with guest_session(c.controller.url) as guest:
            await put_action(guest, "sleepy", sleepy)
        yield c


async def all_up(c: Cluster, deadline_s: float = UP_DEADLINE_S) -> None:
    for controller in c.controllers:
        await until(f"invoker0 up on {controller.url}", lambda: _states_are(controller.url, "up"), deadline_s)
        # Each sees the other (discovery, every 2 s), so that each places in its half of the invoker's memory.
        await until(f"two controllers seen by {controller.url}",
                    lambda: _sees_controllers(controller.url, len(c.controllers)), deadline_s)


async def _sees_controllers(url: str, count: int) -> bool:
    return await metric(url, "whisk_loadbalancer_controllers") == count


async def _states_are(url: str, state: str, **others: str) -> bool:
    status, body = await get_json(f"{url}/invokers")
    return status == 200 and body == {"invoker0": state, **others}


async def metric(url: str, name: str, **labels: str) -> float:
    """One sample of `url`'s /metrics (0 when absent)."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0


async def test_each_controller_has_its_share_of_the_invoker(cluster: Cluster) -> None:
    """Two controllers split the invoker's 1024 MB (docs/openwhisk.md §6.2): 512 MB each, two 256 MB activations.
    A third at once through one controller is forced onto the invoker (an overload, counted); two through the other
    at the same time fit its own share."""
    first, second = (m.url for m in cluster.controllers)
    before = [await metric(url, "whisk_loadbalancer_overloads_total", partition="managed") for url in (first, second)]
    async with guest_session(first) as a, guest_session(second) as b:
        calls = [invoke(a, "sleepy", blocking=False) for _ in range(3)]
        calls += [invoke(b, "sleepy", blocking=False) for _ in range(2)]
        for status, body in await asyncio.gather(*calls):
            assert status == 202, body
    after = [await metric(url, "whisk_loadbalancer_overloads_total", partition="managed") for url in (first, second)]
    assert after == [before[0] + 1, before[1]]
    for url in (first, second):
        await until(f"nothing in flight on {url}", lambda url=url: _in_flight_is(url, 0), 30)


async def _in_flight_is(url: str, count: float) -> bool:
    return await metric(url, "whisk_loadbalancer_activations_in_flight") == count


async def test_ack_timeouts_while_the_broker_is_away_leave_the_invoker_usable(cluster: Cluster,
                                                                             broker: KafkaBroker) -> None:
    """Activations running when the broker stops finish while it is away, their acks waiting on the invoker; the
    broker stays away past their ack timeout, so the controller forces them as timeouts. Those say nothing of the
    invoker: once the broker is back it is up after one health test action. Counted as its timeouts, they brought
    it back Unresponsive, unused for minutes (one test action a minute until they left its last ten outcomes)."""
    url = cluster.controller.url
    before = await metric(url, "whisk_loadbalancer_completions_total", outcome="timeout")
    async with guest_session(url) as guest:
        for _ in range(4):
            status, body = await invoke(guest, "sleepy", blocking=False)
            assert status == 202, body
    await asyncio.sleep(2.0)                     # taken and running (their containers started)
    await broker.stop()
    try:
        await until("4 ack timeouts forced", lambda: _reached(url, before + 4), ACK_TIMEOUT_S + 20)
    finally:
        await broker.start()
    await all_up(cluster)
    assert cluster.exited() == {}, cluster.logs()


async def _reached(url: str, count: float) -> bool:
    return await metric(url, "whisk_loadbalancer_completions_total", outcome="timeout") >= count


async def test_an_invoker_scaled_away_is_forgotten_and_blackbox_actions_run_again(cluster: Cluster) -> None:
    """A second invoker joins, then is stopped for good (a StatefulSet scaled down: SIGTERM, which deregisters it
    from Consul). The blackbox partition is the last invoker by index: kept `down`, it made every blackbox action
    503 "No invokers available." while invoker0 was up. Forgotten once silent for WHISK_INVOKER_DEPART_S, blackbox
    actions go to invoker0 again."""
    invoker1 = await cluster.start("invoker", 1)
    for controller in cluster.controllers:
        await until(f"invoker1 up on {controller.url}",
                    lambda url=controller.url: _states_are(url, "up", invoker1="up"), UP_DEADLINE_S)
    async with guest_session(cluster.controller.url) as guest:
        async with guest.put("/api/v1/namespaces/_/actions/image?overwrite=true",
                             json={"exec": {"kind": "blackbox", "image": "openwhisk/dockerskeleton"}}) as r:
            assert r.status == 200, await r.text()
        assert await terminate(invoker1.proc) == 0
        invoker1.killed = True                         # gone for good, by the test's hand
        for controller in cluster.controllers:
            await until(f"invoker1 down on {controller.url}",
                        lambda url=controller.url: _states_are(url, "up", invoker1="down"), 20)
        status, body = await invoke(guest, "image", blocking=False)
        assert (status, body.get("error")) == (503, "No invokers available."), body
        for controller in cluster.controllers:
            await until(f"invoker1 forgotten on {controller.url}", lambda url=controller.url: _states_are(url, "up"),
                        DEPART_S + 20)
        status, body = await invoke(guest, "image", blocking=False)
        assert status == 202, body
