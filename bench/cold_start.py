"""Cold and prewarmed start latency: a new action's first blocking invoke, with and without a prewarmed proxy.

    python -m bench.cold_start --n 20
"""

from __future__ import annotations

import asyncio
import time

from bench._harness import parser, report, standalone_whisk, summary


async def prewarmed(api) -> float:
    """The pool's prewarmed containers, from its gauge on /metrics."""
    async with api.session.get("/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith('whisk_pool_containers{state="prewarmed"}'):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def first_invokes(api, kind: str, n: int, tag: str, stem_cells: float) -> list[float]:
    latencies = []
    for i in range(n):
        name = f"bench-{tag}-{i}"
        await api.put_action(name, kind, memory=256)
        for _ in range(500):              # until the pool has refilled its prewarmed containers
            if await prewarmed(api) >= stem_cells:
                break
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        await api.invoke(name)
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


async def main() -> None:
    args = parser(__doc__, 20).parse_args()
    rows = []
    for prewarm in (True, False):
        # Room for every action of the run, so that refilling the prewarmed containers never waits on eviction.
        env = {"WHISK_POOL_PREWARM": "true" if prewarm else "false",
               "WHISK_POOL_MEMORY_MB": str(256 * (2 * args.n + 4))}
        async with standalone_whisk(env) as api:
            stem_cells = 0.0
            for _ in range(500):                  # the prewarms of the manifest are started at boot
                stem_cells = await prewarmed(api)
                if not prewarm or stem_cells >= 2:
                    break
                await asyncio.sleep(0.01)
            for kind in ("python:3", "nodejs:20"):
                tag = ("pre" if prewarm else "cold") + kind.split(":")[0]
                lat = await first_invokes(api, kind, args.n, tag, stem_cells)
                rows.append({"start": "prewarmed" if prewarm else "cold", "kind": kind,
                             **summary(lat, sum(lat) / 1000)})
    for row in rows:
        row.pop("per_s", None)
    report("cold_start", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
