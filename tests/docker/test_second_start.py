"""A second standalone whisk started by mistake beside a running one on docker:// (the same data folder, or the
same port) must fail before it touches anything: its invoker's start-up cleanup removes every container of its
instance on the daemon, and so took the running server's, its activation in flight among them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiodocker
import aiohttp
import pytest

from tests.docker.conftest import labelled
from tests.invoke.test_invoke import put
from tests.support.docker_daemon import DockerDaemon
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, until_ready

pytestmark = pytest.mark.docker


async def test_a_second_server_leaves_the_running_ones_containers_alone(
        docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker, tmp_path: Path) -> None:
    invoker = 0                     # standalone routes to invoker 0; the other docker servers' tests have ended
    data = tmp_path / "data"
    env = dict(os.environ) | {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_INSTANCE": str(invoker),
                              "WHISK_DATA_DIR": str(data), "WHISK_STORE": f"sqlite://{data}/whisk.db",
                              "WHISK_BUS": "memory://", "WHISK_HOST": "127.0.0.1", "WHISK_CATALOG": "false",
                              "WHISK_PLAYGROUND": "false", "WHISK_POOL_PREWARM": "false"}
    port = free_port()
    first = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env | {"WHISK_PORT": str(port)},
                                                 stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        await until_ready(f"{url}/ping", first, deadline_s=60)
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as s:
            await put(s, "slow", {"kind": "python:3", "code": "import time\ndef main(a):\n    time.sleep(8)\n"
                                                              "    return {'slept': True}\n"})
            running = asyncio.create_task(s.post("/api/v1/namespaces/_/actions/slow?blocking=true&result=true"))
            while not await labelled(docker, invoker):
                await asyncio.sleep(0.05)
            containers = await labelled(docker, invoker)
            for other in ({"WHISK_PORT": str(free_port())},                              # the same data folder
                          {"WHISK_PORT": str(port), "WHISK_DATA_DIR": str(tmp_path / "other"),  # the same port
                           "WHISK_STORE": f"sqlite://{tmp_path}/other/whisk.db"}):
                second = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "whisk", env=env | other, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE)
                _, err = await asyncio.wait_for(second.communicate(), 60)
                assert second.returncode == 1 and "whisk: cannot start: " in err.decode(), err.decode()
                assert set(containers) <= set(await labelled(docker, invoker))
                assert "invoker.containers" not in err.decode()       # nothing was opened before it stopped
            async with await running as r:
                assert r.status == 200 and await r.json() == {"slept": True}, await r.text()
    finally:
        await terminate(first)
    assert await labelled(docker, invoker) == []
