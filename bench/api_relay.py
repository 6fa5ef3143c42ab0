"""An action's calls to the API host: through the invoker's relay (`unix`) against directly over loopback (`host`).

    python -m bench.api_relay --n 200 [--docker unix:///path/docker.sock]

A Python action in a Docker container makes --n sequential GETs to `__OW_API_HOST` (a new connection each, as
`urllib` does) against a stand-in API host on loopback (aiohttp, answering a small JSON body), and times each from
inside. `unix`: `--network none`, proxy on 127.0.0.1:3233 of the container -> the invoker's unix socket -> the
API host. `host`: the host's network, straight to the API host. Without --docker it starts a private dockerd (root
needed) and builds the runtime images into it.
"""

from __future__ import annotations

import asyncio
import json
import os

from aiohttp import web

from bench._harness import parser, report, summary
from bench.docker_start import daemon
from tests.support.processes import free_port
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import DockerContainerFactory

IMAGE = "whisk/action-python-v3.11:latest"
CALLS = """
import os, time, urllib.request
def main(args):
    url = os.environ["__OW_API_HOST"] + "/api/v1"
    took = []
    for _ in range(args["n"] + 5):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
        took.append((time.perf_counter() - t0) * 1000)
    return {"ms": took[5:]}
"""


async def calls(url: str, network: str, api_host: str, n: int) -> list[float]:
    async with DockerContainerFactory("docker://", docker_url=url, invoker_instance=901, network=network,
                                      api_host=api_host) as factory:
        await factory.cleanup()
        spec = ContainerSpec(name=f"wsk901_1_bench_{network}", kind="python:3.11", image=IMAGE, memory_mb=256)
        container = await factory.create(spec)
        try:
            body = {"name": "bench", "main": "main", "binary": False, "code": CALLS,
                    "env": {"__OW_API_HOST": api_host}}
            assert (await container.initialize(body, 10)).status == 200
            run = await container.run({"value": {"n": n}}, 120)
            assert run.status == 200, run.body
            return json.loads(run.body)["ms"]
        finally:
            await container.destroy()


async def main() -> None:
    p = parser(__doc__, 200)
    p.add_argument("--docker", help="a daemon's URL (unix:///...); default: start a private one")
    args = p.parse_args()
    app = web.Application()
    app.router.add_get("/api/v1", lambda _: web.json_response({"api_paths": ["/api/v1"], "description": "bench"}))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rows = []
    try:
        async with daemon(args.docker) as url:
            for network in ("host", "unix"):
                ms = await calls(url, network, f"http://127.0.0.1:{port}", args.n)
                rows.append({"path": "relayed (unix)" if network == "unix" else "direct (host)", **summary(ms, 0)})
    finally:
        await runner.cleanup()
    for row in rows:
        row.pop("per_s", None)
    report("api_relay", rows, args.json)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    asyncio.run(main())
