"""What the pool adds to a warm activation: `ContainerPool.run` against a /run posted straight to a warm proxy
(same runtime, same unix-socket transport, keep-alive). Not a test; prints one JSON line.

    python -m tests.containerpool.overhead --n 1000 [--kind python:3.11]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

import aiohttp

from tests.containerpool.jobs import ECHO, PY, job
from whisk.containerpool.pool import ContainerPool
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.runtimes.manifest import load_manifest


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if p < 100 else max(values)


async def timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def direct(kind: str, n: int) -> list[float]:
    runtime = load_manifest().resolve(kind)
    folder = tempfile.mkdtemp(prefix="wcp-overhead-")
    sock = os.path.join(folder, "proxy.sock")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "WHISK_PROXY_SOCKET": sock} | dict(runtime.env)
    proc = await asyncio.create_subprocess_exec(*runtime.command, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as s:
            while True:
                try:
                    async with s.post("http://proxy/init", json={"value": {"name": "echo", "main": "main",
                                      "code": ECHO[kind], "binary": False, "env": {}}}) as r:
                        await r.read()
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.01)
            body = job(kind=kind).run_body

            async def call() -> None:
                async with s.post("http://proxy/run", data=json.dumps(body).encode(),
                                  headers={"Content-Type": "application/json"}) as r:
                    await r.read()

            await timed(call, 100)
            return await timed(call, n)
    finally:
        proc.kill()
        await proc.wait()


async def pooled(kind: str, n: int) -> list[float]:
    manifest = load_manifest()
    async with ProcessContainerFactory(manifest) as factory:
        pool = ContainerPool(factory, manifest, invoker_instance=0, memory_mb=1024, pause_grace_s=10,
                             idle_timeout_s=600, prewarm=False)
        try:
            j = job(kind=kind)
            await pool.run(j)
            await timed(lambda: pool.run(j), 100)
            return await timed(lambda: pool.run(j), n)
        finally:
            await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kind", default=PY)
    args = parser.parse_args()
    floor = await direct(args.kind, args.n)
    pool = await pooled(args.kind, args.n)
    row = {"kind": args.kind, "n": args.n,
           "direct_p50_ms": round(statistics.median(floor), 3), "pool_p50_ms": round(statistics.median(pool), 3),
           "overhead_p50_ms": round(statistics.median(pool) - statistics.median(floor), 3),
           "direct_p99_ms": round(pct(floor, 99), 3), "pool_p99_ms": round(pct(pool, 99), 3)}
    print(json.dumps(row))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
