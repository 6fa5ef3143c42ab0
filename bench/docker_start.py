"""Docker container starts through the docker:// adapter, beside a raw create+start of the same image.

    python -m bench.docker_start --n 20 [--network unix|host] [--docker unix:///path/docker.sock] [--api-host URL]

Without --docker it starts a private dockerd (as the tests do, root needed) and builds the runtime images into it.
--api-host gives `unix` containers the invoker's API relay to that URL (its socket is made with each container).
Per kind (python:3.11, nodejs:20), in one run:
  raw        aiodocker create + start of the same container (image, networking, limits) until the proxy's first
             HTTP answer: the floor the adapter is compared with
  cold       factory.create (create + start, with every OpenWhisk flag) + /init until it answers 200
  prewarmed  /init + /run on a container created beforehand (a prewarmed stem cell)
  resume     unpause + /run on a paused warm container
  warm       /run on a warm container
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiodocker
import aiohttp

from bench._harness import parser, report, summary
from tests.support.docker_daemon import build_images, start_dockerd, stop_dockerd
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import LOGS, TMP_MB, DockerContainerFactory
from whisk.containers.docker.security import action_uid, hardening, user

KINDS = {"python:3.11": ("whisk/action-python-v3.11:latest", "def main(args):\n    return args\n"),
         "nodejs:20": ("whisk/action-nodejs-v20:latest", "function main(args) { return args; }\n")}
INIT = {"name": "bench", "main": "main", "binary": False, "env": {}}


@asynccontextmanager
async def daemon(url: str | None) -> AsyncIterator[str]:
    if url:
        yield url
        return
    d = await start_dockerd(Path(tempfile.mkdtemp(prefix="whisk-bench-dockerd-", dir="/tmp")))
    try:
        await build_images(d)
        yield d.url
    finally:
        await stop_dockerd(d)


# The same resources and confinement as the adapter gives a 256 MB container in a 2048 MB pool: cpu shares matter
# when the machine is busy, and the tmpfs is mounted at each start, so the floor must have them too.
LIMITS = {"Init": True, "Memory": 256 << 20, "MemorySwap": 256 << 20, "CpuShares": 128,
          "LogConfig": LOGS} | hardening(TMP_MB)
USER = user(action_uid(999, 0))


async def raw_start(docker: aiodocker.Docker, image: str, network: str) -> float:
    """create + start + first HTTP answer: the same container, driven by hand."""
    folder = tempfile.mkdtemp(prefix="raw-", dir="/tmp")
    os.chmod(folder, 0o777)                       # the container's user makes its socket there
    # Both modes listen on a unix socket in a bind-mounted folder; `host` gives the container the host's network.
    config = {"Image": image, "Env": ["WHISK_PROXY_SOCKET=/run/whisk/proxy.sock"], "User": USER,
              "HostConfig": {"NetworkMode": "host" if network == "host" else "none",
                             "Binds": [f"{folder}:/run/whisk"]} | LIMITS}
    connector = aiohttp.UnixConnector(path=f"{folder}/proxy.sock", force_close=True)
    url = "http://localhost/run"
    t0 = time.perf_counter()
    container = await docker.containers.create(config)
    try:
        await container.start()
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    async with session.post(url, json={"value": {}}) as resp:
                        await resp.read()
                        break
                except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError):
                    await asyncio.sleep(0.005)
        return (time.perf_counter() - t0) * 1000
    finally:
        await container.delete(force=True)
        shutil.rmtree(folder, ignore_errors=True)


async def adapter_starts(factory: DockerContainerFactory, kind: str, n: int) -> dict[str, list[float]]:
    image, code = KINDS[kind]
    times: dict[str, list[float]] = {"cold": [], "prewarmed": [], "resume": [], "warm": []}
    for i in range(n):
        spec = ContainerSpec(name=f"wsk{factory.invoker}_{i}_bench_{kind}", kind=kind, image=image, memory_mb=256)
        t0 = time.perf_counter()
        container = await factory.create(spec)
        reply = await container.initialize(INIT | {"code": code}, 10)
        times["cold"].append((time.perf_counter() - t0) * 1000)
        if reply.status != 200:            # with what the proxy printed before it went
            raise AssertionError((reply, await container.logs(1 << 20, False)))
        for _ in range(3):
            t0 = time.perf_counter()
            await container.run({"value": {"i": i}}, 10)
            times["warm"].append((time.perf_counter() - t0) * 1000)
            await container.logs(1 << 20, True)
        await container.suspend()
        t0 = time.perf_counter()
        await container.resume()
        await container.run({"value": {}}, 10)
        times["resume"].append((time.perf_counter() - t0) * 1000)
        await container.logs(1 << 20, True)
        await container.destroy()

        stem = await factory.create(spec)
        await asyncio.sleep(0.3)            # a stem cell waits in the pool, its proxy long listening
        t0 = time.perf_counter()
        await stem.initialize(INIT | {"code": code}, 10)
        await stem.run({"value": {}}, 10)
        times["prewarmed"].append((time.perf_counter() - t0) * 1000)
        await stem.destroy()
    return times


async def main() -> None:
    p = parser(__doc__, 20)
    p.add_argument("--network", choices=("unix", "host"), default="unix",
                   help="WHISK_DOCKER_NETWORK of the adapter (default unix)")
    p.add_argument("--docker", help="a daemon's URL (unix:///...); default: start a private one")
    p.add_argument("--api-host", help="relay the API host at this URL to containers without a network")
    args = p.parse_args()
    rows = []
    async with daemon(args.docker) as url:
        async with aiodocker.Docker(url=url) as docker, DockerContainerFactory(
                "docker://", docker_url=url, invoker_instance=900, network=args.network,
                user_memory_mb=2048, api_host=args.api_host) as factory:
            await factory.cleanup()
            for kind, (image, _) in KINDS.items():
                await raw_start(docker, image, args.network)                   # warm the page cache
                raw = [await raw_start(docker, image, args.network) for _ in range(args.n)]
                rows.append({"kind": kind, "start": "raw create+start+answer", **summary(raw, 0)})
                for start, values in (await adapter_starts(factory, kind, args.n)).items():
                    rows.append({"kind": kind, "start": start, **summary(values, 0)})
    for row in rows:
        row.pop("per_s", None)
        row["network"] = args.network + (" + API relay" if args.api_host else "")
    report("docker_start", rows, args.json)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    asyncio.run(main())
