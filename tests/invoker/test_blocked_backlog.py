"""End to end: a namespace blocked with `whisk admin user block` while a backlog of its activations waits for the
invoker gets that backlog refused (records with the error, nothing run), while another namespace's activations still
run. The real CLI in another process, one container at a time; a standalone whisk on SQLite, and a controller and an
invoker over Apache Kafka with records in pouchdb-server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.support import basic, call, ns, run_cli, unique
from tests.distributed.cluster import Cluster, cluster_env, owned
from tests.distributed.cluster import until as http_until
from tests.support.processes import whisk_server
from tests.support.waiting import until
from whisk.invoker.blocklist import BLOCKED_MESSAGE
from whisk.store.base import Store
from whisk.store.couchdb import CouchStore
from whisk.store.sqlite import SqliteStore

SLOW = {"exec": {"kind": "python:3", "code": "import time\ndef main(args):\n    time.sleep(0.5)\n    return args\n"},
        "limits": {"memory": 128}}
QUEUED = 16
# One container at a time, so that the activations queue; the block is read 0.2 s after it is made.
ENV = {"WHISK_POOL_MEMORY_MB": "128", "WHISK_POOL_PREWARM": "false", "WHISK_BLOCKLIST_POLL_S": "0.2"}


async def test_standalone_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "whisk.db"
    env = ENV | {"WHISK_STORE": f"sqlite://{db}", "WHISK_DATA_DIR": str(tmp_path)}
    async with whisk_server(env, log_path=str(tmp_path / "server.log")) as url:
        await a_blocked_backlog_is_refused_and_others_still_run(url, env, lambda: SqliteStore(str(db)))
    assert "invoker.namespace.refused" in (tmp_path / "server.log").read_text()


@pytest.mark.kafka
@pytest.mark.couchdb
@pytest.mark.timeout(180)
async def test_a_cluster_on_kafka_and_couchdb(kafka_broker: Any, couchdb_url: str, consul_url: str,
                                              tmp_path: Path) -> None:
    env, _ = cluster_env(kafka_broker.bootstrap, couchdb_url, consul_url)
    env |= ENV
    async with owned(Cluster(env, couchdb_url, "", str(tmp_path))) as c:
        await c.start("controller", 0)
        await c.start("invoker", 0)
        await http_until("invoker0 up", lambda: invoker_up(c.controller.url), 60)
        await a_blocked_backlog_is_refused_and_others_still_run(c.controller.url, env,
                                                                lambda: CouchStore(env["WHISK_STORE"]))
    assert "invoker.namespace.refused" in (tmp_path / "invoker0.log").read_text()


async def invoker_up(url: str) -> bool:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/invokers") as r:
        return r.status == 200 and (await r.json()).get("invoker0") == "up"


async def a_blocked_backlog_is_refused_and_others_still_run(url: str, env: dict[str, str],
                                                            open_store: Callable[[], Any]) -> None:
    alice, bob = unique("alice"), unique("bobby")
    auths = {}
    for name in (alice, bob):
        code, out, err = await run_cli("admin", "user", "create", name, "--store", env["WHISK_STORE"], env=env)
        assert code == 0, err
        auths[name] = out.strip().splitlines()[-1]
    async with aiohttp.ClientSession(base_url=url, headers=basic(auths[alice])) as a, \
            aiohttp.ClientSession(base_url=url, headers=basic(auths[bob])) as b:
        for session in (a, b):
            status, body = await call(session, "PUT", ns("actions", "slow"), SLOW)
            assert status == 200, body
        queued = []
        for n in range(QUEUED):          # one container: each waits for those before it, 0.5 s apiece
            status, body = await call(a, "POST", ns("actions", "slow"), {"n": n})
            assert status == 202, body
            queued.append(body["activationId"])
        blocking = asyncio.create_task(call(a, "POST", ns("actions", "slow"), {"n": "last"},
                                            params={"blocking": "true"}))
        await asyncio.sleep(0.1)         # the blocking one is queued behind the others
        code, out, err = await run_cli("admin", "user", "block", alice, "--store", env["WHISK_STORE"], env=env)
        assert code == 0, err
        others = []
        for n in range(3):
            status, body = await call(b, "POST", ns("actions", "slow"), {"n": n})
            assert status == 202, body
            others.append(body["activationId"])

        # The blocking caller of a refused activation gets the record at once: an application error, 502.
        status, answer = await asyncio.wait_for(blocking, 60)
        assert status == 502, answer
        assert answer["response"]["result"] == {"error": BLOCKED_MESSAGE} and answer["duration"] == 0, answer

    async with open_store() as opened:
        store: Store = opened

        def records(namespace: str, ids: list[str]) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
            return lambda: store.get_activations(namespace, ids)

        mine = await until("alice's records", records(alice, queued), 30.0, ok=lambda found: len(found) == QUEUED)
        theirs = await until("bob's records", records(bob, others), 30.0, ok=lambda found: len(found) == 3)
    # Those the invoker had taken before it read the block ran, in order; the rest of the backlog was refused.
    results = [r["response"]["result"] for r in mine]
    ran = results.index({"error": BLOCKED_MESSAGE})
    assert results == [{"n": n} for n in range(ran)] + [{"error": BLOCKED_MESSAGE}] * (QUEUED - ran), results
    assert QUEUED - ran >= 4, results
    refused = mine[ran:]
    for record in refused:
        assert record["response"]["statusCode"] == 1 and record["duration"] == 0, record
        assert {"key": "kind", "value": "unknown"} in record["annotations"], record
    assert [r["response"]["result"] for r in theirs] == [{"n": n} for n in range(3)], theirs
