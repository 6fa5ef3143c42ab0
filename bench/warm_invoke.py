"""Warm blocking no-op invoke latency at concurrency 1, against the floor: the same /run sent straight to a warm
runtime proxy. The difference is what the platform adds (issue target: p50 <= 2 ms).

    python -m bench.warm_invoke --n 1000
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import aiohttp

from bench._harness import NOOP, measure, parser, report, standalone_whisk, summary


async def direct_run(n: int) -> dict[str, float]:
    """Start the Python proxy as the process backend does (unix socket), init once, then time /run."""
    from whisk.runtimes.manifest import load_manifest
    command = load_manifest().resolve("python:3.11").command     # the action environment's interpreter
    folder = tempfile.mkdtemp(prefix="whisk-bench-proxy-")
    sock = os.path.join(folder, "proxy.sock")
    proc = await asyncio.create_subprocess_exec(*command, env=os.environ | {"WHISK_PROXY_SOCKET": sock},
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as s:
            for _ in range(200):
                try:
                    async with s.post("http://proxy/init", json={"value": {"name": "noop", "main": "main",
                                      "code": NOOP["python:3"], "binary": False, "env": {}}}) as r:
                        await r.read()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.01)
            body = {"value": {}, "namespace": "guest", "action_name": "/guest/noop", "action_version": "0.0.1",
                    "activation_id": "0" * 32, "transaction_id": "bench", "deadline": "9999999999999"}

            async def call() -> None:
                async with s.post("http://proxy/run", json=body) as r:
                    await r.read()

            await measure(call, n=50, concurrency=1)
            return summary(*await measure(call, n=n, concurrency=1))
    finally:
        proc.kill()
        await proc.wait()


async def main() -> None:
    args = parser(__doc__, 1000).parse_args()
    floor = await direct_run(args.n)
    async with standalone_whisk() as api:
        await api.put_action("bench-noop", "python:3")
        await measure(lambda: api.invoke("bench-noop"), n=50, concurrency=1)        # warm-up, not measured
        platform = summary(*await measure(lambda: api.invoke("bench-noop"), n=args.n, concurrency=1))
    rows = [{"path": "direct /run (floor)", **floor}, {"path": "whisk blocking invoke", **platform},
            {"path": "overhead p50", "p50_ms": round(platform["p50_ms"] - floor["p50_ms"], 3)}]
    report("warm_invoke", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
