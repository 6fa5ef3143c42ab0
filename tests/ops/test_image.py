"""The top-level Dockerfile, built by `make image`'s script (deploy/image.sh) into the session's private dockerd with
no registry, then started with host networking on a loopback port: /ping, the health check, and the API."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.docker_daemon import DockerDaemon
from tests.support.processes import GUEST_AUTH, free_port, until_ready

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"
TAG = "whisk/whisk:test"
WHO = 'def main(args):\n    import os\n    return {"uid": os.getuid(), "n": args.get("n")}\n'


async def _docker(daemon: DockerDaemon, *args: str, timeout_s: float = 120) -> str:
    proc = await asyncio.create_subprocess_exec(DOCKER, *args, env=dict(os.environ) | {"DOCKER_HOST": daemon.url},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{text[-3000:]}")
    return text.strip()


@pytest.fixture(scope="module")
async def image(docker_daemon: DockerDaemon) -> str:
    env = dict(os.environ) | {"DOCKER_HOST": docker_daemon.url, "WHISK_IMAGE": TAG}
    proc = await asyncio.create_subprocess_exec("bash", str(REPO / "deploy" / "image.sh"), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 800)
    assert proc.returncode == 0, out.decode(errors="replace")[-4000:]
    return TAG


async def test_image_is_small_non_root_and_checks_its_health(docker_daemon: DockerDaemon, image: str) -> None:
    config = json.loads(await _docker(docker_daemon, "image", "inspect", "-f", "{{json .Config}}", image))
    user = config["User"].split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user), config["User"]
    assert "/ping" in " ".join(config["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["python3", "-m", "whisk"]
    size = int(await _docker(docker_daemon, "image", "inspect", "-f", "{{.Size}}", image))
    # 197 MB measured: 61 MB base, whisk and its dependencies, and the python:3.11 action environment (~100 MB with
    # its compiled .pyc files, what OpenWhisk's python image carries; docs/runtimes.md)
    assert size < 230_000_000, f"{size / 1e6:.0f} MB"


async def test_the_image_serves_the_api(docker_daemon: DockerDaemon, image: str) -> None:
    port = free_port()
    name = f"whisk-image-test-{secrets.token_hex(4)}"
    await _docker(docker_daemon, "run", "-d", "--init", "--name", name, "--network", "host",
                  "-e", "WHISK_HOST=127.0.0.1", "-e", f"WHISK_PORT={port}", "-e", "WHISK_STORE=memory://",
                  "-e", "WHISK_TRUST_ALL_CODE=true",            # non-root, no bwrap: no process sandbox in the image
                  "--health-interval", "1s", "--health-start-period", "1s", image)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            await until_ready(f"{base}/ping", None, deadline_s=60)
        except TimeoutError:
            raise AssertionError(await _docker(docker_daemon, "logs", name)) from None
        uuid, key = GUEST_AUTH.split(":")
        auth = {"Authorization": aiohttp.encode_basic_auth(uuid, key)}
        url = f"{base}/api/v1/namespaces/_/actions/who"
        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.put(url, json={"exec": {"kind": "python:3", "code": WHO}}) as resp:
                assert resp.status == 200, await resp.text()
            async with session.get(url) as resp:
                assert resp.status == 200 and (await resp.json())["name"] == "who"
            async with session.post(url, params={"blocking": "true", "result": "true"}, json={"n": 3}) as resp:
                assert resp.status == 200, await resp.text()
                assert await resp.json() == {"uid": 10001, "n": 3}      # the action ran as the image's user
            async with session.get(f"{base}/health") as resp:
                assert resp.status == 200
        deadline = time.monotonic() + 30
        while (status := await _docker(docker_daemon, "inspect", "-f", "{{.State.Health.Status}}", name)) != "healthy":
            assert status == "starting" and time.monotonic() < deadline, status
            await asyncio.sleep(0.2)
        logs = await _docker(docker_daemon, "logs", name)
        started = [json.loads(line) for line in logs.splitlines() if line.startswith("{") and "server.started" in line]
        assert started and started[0]["role"] == "standalone"            # JSON log lines by default
    finally:
        await _docker(docker_daemon, "rm", "-f", name)
