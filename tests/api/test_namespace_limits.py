"""Namespace limits set with `whisk admin limits` (OpenWhisk's `wskadmin limits`), seen through the REST API:
`storeActivations: false` keeps no activation record of the namespace, whoever writes it (the invoker for actions,
the controller for sequences and triggers), while the answers stay the same."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.api.support import JS, Deployment, basic, call, ns, run_cli, sqlite_deployment, unique
from tests.support.http import record_of
from tests.web.support import invoke, put


async def limited_namespace(deployment: Deployment, prefix: str, *limits: str) -> tuple[str, str]:
    """A new namespace with `whisk admin limits set NS *limits`: its name and key. The limits are set before the
    key's first use, so that no server holds the namespace's identity from before."""
    env = {"WHISK_STORE": deployment.store_url}
    name = unique(prefix)
    code, out, err = await run_cli("admin", "user", "create", name, "--store", deployment.store_url, env=env)
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    code, out, err = await run_cli("admin", "limits", "set", name, *limits, "--store", deployment.store_url, env=env)
    assert code == 0 and out == f'Limits successfully set for "{name}"\n', (out, err)
    return name, key


async def test_a_namespace_that_stores_no_activations() -> None:
    async with sqlite_deployment() as deployment:
        quiet, key = await limited_namespace(deployment, "quiet", "--storeActivations", "false")
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(key)) as s:
            status, limits = await call(s, "GET", ns("limits"))
            assert status == 200 and limits["storeActivations"] is False
            await put(s, "actions", "echo", {"exec": JS})
            await put(s, "actions", "twice", {"exec": {"kind": "sequence", "components": ["/_/echo", "/_/echo"]}})
            await put(s, "triggers", "t", {})
            await put(s, "rules", "r", {"trigger": "/_/t", "action": "/_/echo"})
            ids = []
            for name in ("echo", "twice"):
                status, body, _ = await invoke(s, name, {"x": 1}, blocking="true")
                assert status == 200 and body["response"]["result"] == {"x": 1}, body   # the answer is the same
                ids.append(body["activationId"])
            status, body, _ = await invoke(s, "echo", {"x": 2})
            assert status == 202
            ids.append(body["activationId"])
            status, fired = await call(s, "POST", ns("triggers", "t"), {"x": 3})
            assert status == 202
            ids.append(fired["activationId"])
            for _ in range(200):                              # until nothing is in flight
                status, in_flight = await call(s, "GET", "/activation/count")
                if in_flight == 0:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)                          # the trigger's rule and the records it would write
            for activation_id in ids:
                status, body = await call(s, "GET", ns("activations", activation_id))
                assert (status, body["error"]) == (404, "The requested resource does not exist."), activation_id
            status, count = await call(s, "GET", ns("activations") + "?count=true")
            assert (status, count) == (200, {"activations": 0})
            # A record that will never be stored is not waited for: a blocking caller reading its activation at once
            # waited ~1.6 s for its 404 (the wait for the record of an activation just answered), each time.
            for part in ("", "/result", "/logs"):
                status, body, _ = await invoke(s, "echo", {"x": 5}, blocking="true")
                assert status == 200, body
                began = time.monotonic()
                status, _ = await call(s, "GET", ns("activations", body["activationId"] + part))
                assert status == 404 and time.monotonic() - began < 1.0, (part, time.monotonic() - began)
        # Another namespace, without that limit, keeps its records.
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as s:
            await put(s, "actions", "echo", {"exec": JS})
            status, body, _ = await invoke(s, "echo", {"x": 4})
            assert status == 202
            assert json.dumps((await record_of(s, body["activationId"]))["response"]["result"]) == '{"x": 4}'


async def test_the_invoking_namespace_limits_bound_the_actions_it_runs() -> None:
    """OpenWhisk's invoker checks an action's limits against the invoking namespace's before it runs it
    (`action.limits.checkLimits(msg.user)`, docs/openwhisk.md §5.3): another namespace's published action, directly
    or through a binding, is refused when its limits lie outside the caller's bounds, with an application error
    record, the caller's, of zero duration."""
    async with sqlite_deployment() as deployment:
        narrow, key = await limited_namespace(deployment, "narrow", "--maxActionMemory", "256",
                                              "--minActionTimeout", "2000")
        owner = deployment.other_namespace
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as s:
            await put(s, "packages", "shared", {"publish": True})
            await put(s, "actions", "shared/big", {"exec": JS, "limits": {"memory": 512}})
            await put(s, "actions", "shared/small", {"exec": JS, "limits": {"memory": 128}})
            await put(s, "actions", "shared/short", {"exec": JS, "limits": {"memory": 512, "timeout": 1000}})
            status, body, _ = await invoke(s, "shared/big", {"x": 1}, blocking="true")
            assert status == 200 and body["response"]["result"] == {"x": 1}, body
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(key)) as s:
            await put(s, "packages", "bound", {"binding": {"namespace": owner, "name": "shared"}})
            status, body, _ = await invoke(s, "bound/small", {"x": 2}, blocking="true")
            assert status == 200 and body["response"]["result"] == {"x": 2}, body
            for name, namespace in (("bound/big", "_"), ("shared/big", owner)):
                status, body, _ = await invoke(s, name, {"x": 3}, namespace=namespace, blocking="true")
                assert status == 502, (name, status, body)
                assert body["namespace"] == narrow and body["duration"] == 0, body
                assert body["response"] == {"status": "application error", "success": False,
                                            "result": {"error": "memory size 512 MB exceeds allowed threshold of "
                                                                "256 MB"}}, body
            # OpenWhisk checks the time limit first, then memory, concurrency and logs.
            status, body, _ = await invoke(s, "bound/short", {}, blocking="true")
            assert status == 502 and body["response"]["result"] == {
                "error": "duration 1000 milliseconds below allowed threshold of 2000 milliseconds"}, body
            status, body, _ = await invoke(s, "bound/big", {})
            assert status == 202
            record = await record_of(s, body["activationId"])
            assert record["response"]["status"] == "application error", record


async def test_the_invoking_namespace_payload_limit_bounds_results() -> None:
    """A result is held to the invoking namespace's payload limit, as OpenWhisk's container run is given
    `msg.user.limits.allowedMaxPayloadSize`: the same published action answers its owner and refuses a narrower
    namespace's result."""
    async with sqlite_deployment() as deployment:
        _, key = await limited_namespace(deployment, "narrow", "--maxPayloadSize", "1 KB")
        owner = deployment.other_namespace
        wide = {"kind": "nodejs:default", "code": "function main() { return {s: 'x'.repeat(2000)}; }"}
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as s:
            await put(s, "packages", "shared", {"publish": True})
            await put(s, "actions", "shared/wide", {"exec": wide})
            status, body, _ = await invoke(s, "shared/wide", {}, blocking="true")
            assert status == 200 and len(body["response"]["result"]["s"]) == 2000, body
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(key)) as s:
            status, body, _ = await invoke(s, "shared/wide", {}, namespace=owner, blocking="true")
            assert status == 502, (status, body)
            error = body["response"]["result"]["error"]
            assert error.startswith("The action produced a response that exceeded the allowed length: 2008 > 1024 "
                                    "bytes."), error


async def test_allowed_kinds() -> None:
    """`allowedKinds` (OpenWhisk's KindRestrictor): a PUT whose exec has a kind not listed is 403 with OpenWhisk's
    text, on create and on update; an update without exec passes. A kind listed under another of its names (the
    alias `python:3`, OpenWhisk's name of the kind; `nodejs:default`) allows the kind that name resolves to, which
    is the kind the action is stored with: listed so, it refused every action of that kind."""
    async with sqlite_deployment() as deployment:
        keys = {}
        for prefix, kinds in (("aliases", "python:3,nodejs:default"), ("nodeonly", "nodejs:20")):
            _, keys[kinds] = await limited_namespace(deployment, prefix, "--allowedKinds", kinds)
        py = {"kind": "python:3", "code": "def main(args):\n    return args\n"}
        refused = "The supplied authentication is not authorized to access actions of kind '{}'."
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(keys["python:3,nodejs:default"])) as s:
            await put(s, "actions", "py", {"exec": py})
            await put(s, "actions", "js", {"exec": JS})
            status, body, _ = await invoke(s, "py", {"x": 1}, blocking="true")
            assert status == 200 and body["response"]["result"] == {"x": 1}, body
            status, body = await call(s, "PUT", ns("actions", "seq") + "?overwrite=true",
                                      {"exec": {"kind": "sequence", "components": ["/_/py"]}})
            assert (status, body["error"]) == (403, refused.format("sequence")), body
        async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(keys["nodejs:20"])) as s:
            await put(s, "actions", "js", {"exec": JS})
            status, body = await call(s, "PUT", ns("actions", "py") + "?overwrite=true", {"exec": py})
            assert (status, body["error"]) == (403, refused.format("python:3.11")), body
            status, body = await call(s, "PUT", ns("actions", "js") + "?overwrite=true", {"exec": py})
            assert (status, body["error"]) == (403, refused.format("python:3.11")), body        # update
            await put(s, "actions", "js", {"parameters": [{"key": "p", "value": 1}]})     # no exec: no kind to check
