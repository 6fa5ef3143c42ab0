"""`whisk admin user delete` removes what the namespace holds, so a namespace made again under the same name starts
empty: through the real CLI against the SQLite store of a running server, over real HTTP, with the server's caches
warm from the old owner's requests."""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

import aiohttp

from tests.api.support import basic, call, ns, run_cli, unique
from tests.support.processes import whisk_server

SECRET = "the-old-owners-secret"


async def as_owner(url: str, auth: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=url, headers=basic(auth))


async def ok(session: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    status, answer = await call(session, method, path, body, **kwargs)
    assert status in (200, 202), (method, path, status, answer)
    return answer


async def test_a_namespace_made_again_does_not_see_the_old_owners_entities() -> None:
    data = tempfile.mkdtemp(prefix="whisk-purge-")
    store = f"sqlite://{data}/whisk.db"
    env = {"WHISK_STORE": store, "WHISK_DATA_DIR": data}
    async with whisk_server(env, log_path=os.path.join(data, "server.log")) as url:
        tenant, other = unique("tenant"), unique("other")
        code, old_auth, err = await run_cli("admin", "user", "create", tenant, "--store", store, env=env)
        assert code == 0, err
        code, other_auth, err = await run_cli("admin", "user", "create", other, "--store", store, env=env)
        assert code == 0, err
        async with await as_owner(url, old_auth.strip()) as old, await as_owner(url, other_auth.strip()) as bystander:
            echo = {"exec": {"kind": "python:3", "code": "def main(args):\n    return args\n"},
                    "parameters": [{"key": "secret", "value": SECRET}]}
            await ok(old, "PUT", ns("actions", "secret"), echo)
            await ok(old, "PUT", ns("packages", "pkg"), {"parameters": [{"key": "secret", "value": SECRET}]})
            await ok(old, "PUT", ns("actions", "pkg/inner"), echo)
            await ok(old, "PUT", ns("triggers", "trg"), {"parameters": [{"key": "secret", "value": SECRET}]})
            await ok(old, "PUT", ns("rules", "rl"), {"trigger": f"/{tenant}/trg", "action": f"/{tenant}/secret"})
            done = await ok(old, "POST", ns("actions", "secret"), {}, params={"blocking": "true"})
            assert done["response"]["result"]["secret"] == SECRET
            assert (await ok(old, "GET", ns("actions", "secret")))["parameters"][0]["value"] == SECRET  # cached
            await ok(bystander, "PUT", ns("actions", "kept"), echo)                  # another tenant's

            code, out, err = await run_cli("admin", "user", "delete", tenant, "--store", store, env=env)
            assert code == 0, err
            assert re.search(r"deleted user .*\b5 entities and 1 activation records", out), out
            code, new_auth, err = await run_cli("admin", "user", "create", tenant, "--store", store, env=env)
            assert code == 0, err

            async with await as_owner(url, new_auth.strip()) as new:
                for collection in ("actions", "packages", "triggers", "rules"):
                    assert await ok(new, "GET", ns(collection)) == [], collection
                for path in (ns("actions", "secret"), ns("actions", "pkg/inner"), ns("packages", "pkg"),
                             ns("triggers", "trg"), ns("rules", "rl")):
                    status, body = await call(new, "GET", path)
                    assert status == 404 and SECRET not in str(body), (path, status, body)
                assert await ok(new, "GET", ns("activations")) == []
                status, body = await call(new, "GET", ns("activations", done["activationId"]))
                assert status == 404, body
                status, body = await call(new, "POST", ns("actions", "secret"), {}, params={"blocking": "true"})
                assert status == 404 and SECRET not in str(body), body
                # The old owner's key is void on the running server too, though it had it cached.
                status, _ = await call(old, "GET", ns("actions"))
                assert status == 401
            assert [a["name"] for a in await ok(bystander, "GET", ns("actions"))] == ["kept"]
