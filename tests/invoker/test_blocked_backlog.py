"""End to end: a namespace blocked with `whisk admin user block` while a backlog of its activations waits for the
invoker gets that backlog refused (records with the error, nothing run), while another namespace's activations still
run. A standalone whisk on SQLite, one container at a time, the real CLI in another process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.api.support import basic, call, ns, run_cli, unique
from tests.support.processes import whisk_server
from tests.support.waiting import until
from whisk.invoker.blocklist import BLOCKED_MESSAGE
from whisk.store.sqlite import SqliteStore

SLOW = {"exec": {"kind": "python:3", "code": "import time\ndef main(args):\n    time.sleep(0.4)\n    return args\n"},
        "limits": {"memory": 128}}
QUEUED = 12


async def test_a_backlog_of_a_namespace_blocked_midway_is_refused_and_others_still_run(tmp_path: Path) -> None:
    db = tmp_path / "whisk.db"
    env = {"WHISK_STORE": f"sqlite://{db}", "WHISK_DATA_DIR": str(tmp_path), "WHISK_POOL_MEMORY_MB": "128",
           "WHISK_POOL_PREWARM": "false", "WHISK_BLOCKLIST_POLL_S": "0.2"}
    async with whisk_server(env, log_path=str(tmp_path / "server.log")) as url:
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
            for n in range(QUEUED):          # one container: each waits for those before it, 0.4 s apiece
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

        async with SqliteStore(str(db)) as store:
            async def records(namespace: str, ids: list[str]) -> list[dict]:
                return await store.get_activations(namespace, ids)

            mine = await until("alice's records", lambda: records(alice, queued), 30.0,
                               ok=lambda found: len(found) == QUEUED)
            theirs = await until("bob's records", lambda: records(bob, others), 30.0,
                                 ok=lambda found: len(found) == len(others))
    ran = [r for r in mine if r["response"]["statusCode"] == 0]
    refused = [r for r in mine if r["response"]["result"] == {"error": BLOCKED_MESSAGE}]
    assert len(ran) + len(refused) == QUEUED, mine
    # Those the invoker had taken before it read the block ran; the rest of the backlog was refused, not run.
    assert len(refused) >= QUEUED // 2, [r["response"] for r in mine]
    for record in refused:
        assert record["response"]["statusCode"] == 1 and record["duration"] == 0, record
        assert {"key": "kind", "value": "unknown"} in record["annotations"], record
    assert [r["response"]["result"] for r in theirs] == [{"n": n} for n in range(3)], theirs
    assert "invoker.namespace.refused" in (tmp_path / "server.log").read_text()
