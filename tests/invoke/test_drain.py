"""Graceful stop (issue 7): SIGTERM refuses new activations with 503, lets in-flight ones finish, then exits."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile

import aiohttp

from tests.support.processes import GUEST_AUTH, free_port, until_ready


async def test_sigterm_drains_in_flight_activations_then_exits() -> None:
    port = free_port()
    env = dict(os.environ) | {"WHISK_PORT": str(port), "WHISK_STORE": "memory://",
                              "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-drain-")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    await until_ready(f"{url}/ping", proc)
    uuid, key = GUEST_AUTH.split(":")
    try:
        async with aiohttp.ClientSession(base_url=url, auth=aiohttp.BasicAuth(uuid, key)) as s:
            code = "import time\ndef main(a):\n    time.sleep(1.5)\n    return {'finished': True}\n"
            async with s.put("/api/v1/namespaces/_/actions/slow?overwrite=true",
                             json={"exec": {"kind": "python:3", "code": code}}) as r:
                assert r.status == 200
            async with s.post("/api/v1/namespaces/_/actions/slow") as r:
                in_flight = (await r.json())["activationId"]
            while True:                                   # until the controller reports it running
                async with s.get(f"/api/v1/namespaces/_/activations/{in_flight}") as r:
                    if r.status == 202:
                        break
                    assert r.status == 404, await r.text()
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            refused = None
            for _ in range(200):                          # the signal lands between two requests
                async with s.post("/api/v1/namespaces/_/actions/slow") as r:
                    if r.status == 503:
                        refused = await r.json()
                        break
                    assert r.status == 202
            assert refused is not None and "shutting down" in refused["error"] and refused["code"]
            while True:                                   # reads are served while in-flight work finishes
                async with s.get(f"/api/v1/namespaces/_/activations/{in_flight}") as r:
                    if r.status == 200:
                        record = await r.json()
                        break
                await asyncio.sleep(0.05)
            assert record["response"]["result"] == {"finished": True}
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
