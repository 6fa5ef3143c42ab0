"""A standalone whisk on docker:// killed with SIGKILL leaves its containers running; started again, it removes
them before it serves (the invoker's cleanup at start)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiodocker
import aiohttp
import pytest

from tests.docker.conftest import labelled
from tests.invoke.test_invoke import invoke, put
from tests.support.docker_daemon import DockerDaemon
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, until_ready

pytestmark = pytest.mark.docker


async def test_a_killed_platform_cleans_up_its_containers_when_started_again(
        docker_daemon: DockerDaemon, docker_images: str, docker: aiodocker.Docker, tmp_path: Path) -> None:
    invoker = 0                     # standalone routes to invoker 0; test_standalone's server has stopped by now
    data_dir = str(tmp_path)
    env = dict(os.environ) | {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_INSTANCE": str(invoker),
                              "WHISK_DATA_DIR": data_dir, "WHISK_STORE": f"sqlite://{data_dir}/whisk.db",
                              "WHISK_BUS": "memory://", "WHISK_HOST": "127.0.0.1"}

    async def start() -> tuple[asyncio.subprocess.Process, str]:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env | {"WHISK_PORT": str(port)},
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        await until_ready(f"http://127.0.0.1:{port}/ping", proc, deadline_s=60)
        return proc, f"http://127.0.0.1:{port}"

    uuid, key = GUEST_AUTH.split(":")
    proc, url = await start()
    try:
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as session:
            await put(session, "py-left", {"kind": "python:3", "code": "def main(a):\n    return a\n"})
            status, body, _ = await invoke(session, "py-left", blocking="true", result="true")
            assert status == 200, body
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    left = await labelled(docker, invoker)
    assert left, "the killed platform left no container (prewarms and the warm one should still run)"
    proc, url = await start()          # cleans up at start, before serving
    try:
        assert not set(left) & set(await labelled(docker, invoker))
    finally:
        await terminate(proc)
    assert await labelled(docker, invoker) == []
