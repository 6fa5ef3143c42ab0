"""Cold and prewarmed start latency: a new action's first blocking invoke, with and without a prewarmed proxy.

    python -m bench.cold_start --n 20
"""

from __future__ import annotations

import asyncio
import time

from bench._harness import parser, report, standalone_whisk, summary


async def first_invokes(api, kind: str, n: int, tag: str) -> list[float]:
    latencies = []
    for i in range(n):
        name = f"bench-{tag}-{i}"
        await api.put_action(name, kind, memory=256)
        t0 = time.perf_counter()
        await api.invoke(name)
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.2)          # let the pool refill its prewarmed container
    return latencies


async def main() -> None:
    args = parser(__doc__.splitlines()[0], 20).parse_args()
    rows = []
    for prewarm in (True, False):
        env = {"WHISK_POOL_PREWARM": "true" if prewarm else "false"}
        async with standalone_whisk(env) as api:
            for kind in ("python:3", "nodejs:20"):
                tag = ("pre" if prewarm else "cold") + kind.split(":")[0]
                lat = await first_invokes(api, kind, args.n, tag)
                rows.append({"start": "prewarmed" if prewarm else "cold", "kind": kind, **summary(lat, sum(lat) / 1000)})
    for row in rows:
        row.pop("per_s", None)
    report("cold_start", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
