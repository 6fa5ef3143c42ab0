"""A controller restarted in a rolling restart, behind nginx (config/nginx/): once it has its SIGTERM, nginx sends
the requests that come next to the other controller, while its own callers in flight get their answers. Two
controllers and an invoker over the session's Apache Kafka broker, pouchdb-server and Consul double.
bench/rolling_restart.py restarts every component in turn under load (docs/testing.md)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import missing
from tests.distributed.cluster import Cluster, cluster_env, guest_session, owned, until
from tests.distributed.test_cluster import invokers_are
from tests.support import nginx as nginx_mod
from tests.support.processes import GUEST_AUTH, basic_auth

pytestmark = [pytest.mark.kafka, pytest.mark.couchdb, pytest.mark.timeout(180)]

SLOW = "import time\ndef main(args):\n    time.sleep(6)\n    return {'slept': True}\n"
QUICK = "def main(args):\n    return {'ok': True}\n"


async def put(session: aiohttp.ClientSession, name: str, code: str) -> None:
    async with session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                           json={"exec": {"kind": "python:3", "code": code}}) as r:
        assert r.status == 200, await r.text()


async def stopping(url: str) -> bool:
    """Whether the controller at `url` has had its signal: it refuses connections (or, listening still, says so)."""
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/health") as r:
            return r.status == 503 and "shutting down" in (await r.json())["error"]
    except aiohttp.ClientConnectorError:
        return True


async def test_nginx_leaves_a_draining_controller_to_its_callers_in_flight(kafka_broker: Any, couchdb_url: str,
                                                                         consul_url: str, tmp_path: Path) -> None:
    """It listened and answered through its drain: nginx, which tries the next controller only when a connection
    fails, kept sending it about half of the new invokes, each refused with 503 "shutting down" while the other
    controller could have run it, for as long as its callers in flight held the drain (up to the grace, 30 s). It
    now stops listening and closes its idle connections first."""
    if not nginx_mod.available():
        missing(f"nginx ({nginx_mod.NGINX})")
    env, prefix = cluster_env(kafka_broker.bootstrap, couchdb_url, consul_url)
    env["WHISK_SHUTDOWN_GRACE_S"] = "20"
    async with owned(Cluster(env, couchdb_url, prefix, str(tmp_path))) as c:
        await asyncio.gather(c.start("controller", 0), c.start("controller", 1))
        await c.start("invoker", 0)
        for m in c.controllers:
            await until(f"invoker0 up on {m.url}", lambda m=m: invokers_are(c, {"invoker0": "up"}, m), 60)
        async with guest_session(c.controller.url) as s:
            await put(s, "rolling-slow", SLOW)
            await put(s, "rolling-quick", QUICK)
        victim = c.controllers[1]
        async with nginx_mod.run_nginx([nginx_mod.authority(m.url) for m in c.controllers]) as nginx:
            uuid, key = GUEST_AUTH.split(":")
            async with aiohttp.ClientSession(nginx.https_url, headers=basic_auth(uuid, key),
                                             connector=aiohttp.TCPConnector(ssl=False)) as front, \
                    guest_session(victim.url) as direct:

                async def quick() -> int:
                    async with front.post("/api/v1/namespaces/_/actions/rolling-quick",
                                          params={"blocking": "true"}) as r:
                        await r.read()
                        return r.status

                # nginx holds keep-alive connections to both controllers (least_conn spreads these)...
                assert await asyncio.gather(*(quick() for _ in range(8))) == [200] * 8
                # ...and the victim has a blocking caller in flight, which holds its drain for ~6 s.
                in_flight = asyncio.create_task(direct.post("/api/v1/namespaces/_/actions/rolling-slow",
                                                            params={"blocking": "true", "result": "true"}))
                await asyncio.sleep(1.0)
                victim.killed = True            # stopped by the test; its exit status is checked below
                victim.proc.send_signal(signal.SIGTERM)
                # Once it has the signal, nothing new reaches it through nginx.
                await until("the victim stopping", lambda: stopping(victim.url), 5, interval_s=0.02)
                statuses: list[int] = []
                began = time.monotonic()
                while not in_flight.done() and time.monotonic() - began < 15:
                    statuses += await asyncio.gather(quick(), quick())
                    await asyncio.sleep(0.05)
                answer = await in_flight
                assert answer.status == 200 and await answer.json() == {"slept": True}
                answer.release()
                errors = nginx.error_log()
        assert await asyncio.wait_for(victim.proc.wait(), 30) == 0
        assert len(statuses) >= 20, (statuses, errors)
        counts = {s: statuses.count(s) for s in set(statuses)}
        # No refusal. A request nginx wrote onto an idle connection in the very instant the controller closed it is
        # nginx's own 502 (it resends no POST): seen once in ~130 calls in one of three runs, right at the signal.
        assert set(counts) <= {200, 502} and counts.get(502, 0) <= 2, counts

