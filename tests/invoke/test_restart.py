"""Beyond OpenWhisk: an activation accepted before the platform was killed still ends with a stored record."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from typing import Any

import aiohttp

from tests.support.http import record_of
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, until_ready


async def start(data_dir: str, port: int) -> asyncio.subprocess.Process:
    env = dict(os.environ) | {"WHISK_PORT": str(port), "WHISK_DATA_DIR": data_dir, "WHISK_BUS": "memory://",
                              "WHISK_STORE": f"sqlite://{data_dir}/whisk.db", "WHISK_POOL_PREWARM": "false"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await until_ready(f"http://127.0.0.1:{port}/ping", proc, deadline_s=30)
    except BaseException:
        await terminate(proc)           # a start too slow for the deadline must not outlive the test
        raise
    return proc


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


def fresh() -> tuple[str, int, dict[str, str], str]:
    """A data folder and a port of its own, the guest's credentials, the server's URL."""
    port = free_port()
    return tempfile.mkdtemp(prefix="whisk-restart-"), port, basic_auth(*GUEST_AUTH.split(":")), \
        f"http://127.0.0.1:{port}"


async def put_with_sequence(s: aiohttp.ClientSession, code: str, sequence: str) -> None:
    """The python action `sleepy` with `code`, and the sequence `sequence` of it alone."""
    async with s.put("/api/v1/namespaces/_/actions/sleepy", json={"exec": {"kind": "python:3", "code": code}}) as r:
        assert r.status == 200, await r.text()
    async with s.put(f"/api/v1/namespaces/_/actions/{sequence}",
                     json={"exec": {"kind": "sequence", "components": ["/guest/sleepy"]}}) as r:
        assert r.status == 200, await r.text()


async def kill_on_answer(s: aiohttp.ClientSession, proc: asyncio.subprocess.Process, path: str, body: dict[str, Any],
                         status: int) -> str:
    """POST, and SIGKILL the server the moment its answer's head is in; the answer's activation id."""
    async with s.post(path, json=body) as r:
        assert r.status == status
        proc.send_signal(signal.SIGKILL)
        return (await r.json())["activationId"]


async def test_killed_platform_closes_in_flight_activations_on_restart() -> None:
    """A primitive action and a sequence (whose record the controller itself writes) both in flight at the kill."""
    data_dir, port, auth, url = fresh()
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            await put_with_sequence(s, "import time\ndef main(a):\n    time.sleep(60)\n    return {}\n",
                                    "sleepy-seq")
            ids = []
            for name in ("sleepy", "sleepy-seq"):
                async with s.post(f"/api/v1/namespaces/_/actions/{name}") as r:
                    assert r.status == 202
                    ids.append((await r.json())["activationId"])
            while True:                         # the controller has begun the sequence: its component is in flight
                async with s.get("/activation/count") as r:
                    if await r.json() >= 2:
                        break
                await asyncio.sleep(0.05)
    finally:
        await kill(proc)
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            for activation_id in ids:
                body = await record_of(s, activation_id, 20, complete=True)
                assert body["response"]["status"] == "whisk internal error"
                assert "restarted" in body["response"]["result"]["error"]
            # The sequence's component, closed by the restart too, still names the sequence that caused it.
            async with s.get("/api/v1/namespaces/_/activations", params={"name": "sleepy", "docs": "true"}) as r:
                records = await r.json()
            assert len(records) == 2, records
            component = next(record for record in records if record["activationId"] != ids[0])
            assert component.get("cause") == ids[1], component
            assert {"key": "causedBy", "value": "sequence"} in component["annotations"]
    finally:
        await terminate(proc)


async def test_an_activation_never_acknowledged_still_gets_a_record() -> None:
    """A forced completion (no ack within the timeout, docs/openwhisk.md §5.5) leaves a whisk-error record until, if
    ever, the invoker's own record replaces it."""
    from tests.support.processes import whisk_server
    env = {"WHISK_ACK_TIMEOUT_FACTOR": "0", "WHISK_ACK_TIMEOUT_ADDON_S": "0.3"}
    uuid, key = GUEST_AUTH.split(":")
    async with whisk_server(env) as url:
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as s:
            code = "import time\ndef main(a):\n    time.sleep(4)\n    return {'late': True}\n"
            async with s.put("/api/v1/namespaces/_/actions/late?overwrite=true",
                             json={"exec": {"kind": "python:3", "code": code}}) as r:
                assert r.status == 200
            async with s.post("/api/v1/namespaces/_/actions/late") as r:
                activation_id = (await r.json())["activationId"]
            body = await record_of(s, activation_id, 3, complete=True)
            assert body["response"]["status"] == "whisk internal error", body
            assert "did not acknowledge" in body["response"]["result"]["error"]


async def test_a_fire_killed_right_after_its_answer_still_gets_a_record() -> None:
    """The trigger's record is stored after its rules' activations are posted; a kill at once after the 202 (a few
    ms of window with one rule, more with many) left its activation id without a record for good."""
    data_dir, port, auth, url = fresh()
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            async with s.put("/api/v1/namespaces/_/actions/noop",
                             json={"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}) as r:
                assert r.status == 200, await r.text()
            async with s.put("/api/v1/namespaces/_/triggers/t", json={}) as r:
                assert r.status == 200, await r.text()
            rule = {"trigger": "/_/t", "action": "/_/noop"}
            for n in range(20):
                async with s.put(f"/api/v1/namespaces/_/rules/r{n}", json=rule) as r:
                    assert r.status == 200, await r.text()
            activation_id = await kill_on_answer(s, proc, "/api/v1/namespaces/_/triggers/t", {"p": 1}, 202)
    finally:
        await kill(proc)
    proc = await start(data_dir, port)
    try:
        async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
            body = await record_of(s, activation_id, 20)
            assert body["name"] == "t" and body["activationId"] == activation_id
    finally:
        await terminate(proc)


async def test_a_blocking_caller_answered_before_a_kill_finds_its_result_recorded() -> None:
    """The answer goes out before the logs are collected and the record stored; a kill at once after it left a
    whisk-error record ("interrupted") that contradicted the result the caller had got."""
    data_dir, port, auth, url = fresh()
    code = "def main(a):\n    print('running', a.get('n'))\n    return {'n': a.get('n')}\n"
    activation_id = ""
    for n in range(4):                              # three kills, each record read after the next start
        proc = await start(data_dir, port)
        try:
            async with aiohttp.ClientSession(base_url=url, headers=auth) as s:
                if n == 0:
                    async with s.put("/api/v1/namespaces/_/actions/quick",
                                     json={"exec": {"kind": "python:3", "code": code}}) as r:
                        assert r.status == 200, await r.text()
                else:                               # the record left by the last kill
                    body = await record_of(s, activation_id, 20)
                    assert body["response"]["status"] == "success" and body["response"]["result"] == {"n": n - 1}
                if n == 3:
                    break
                activation_id = await kill_on_answer(s, proc, "/api/v1/namespaces/_/actions/quick?blocking=true",
                                                     {"n": n}, 200)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
