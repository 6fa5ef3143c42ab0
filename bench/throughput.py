"""Throughput of blocking no-op invokes at concurrency 4 and 32 (one action), and over 100 distinct actions.

    python -m bench.throughput --n 2000
"""

from __future__ import annotations

import asyncio
import itertools

from bench._harness import measure, parser, report, standalone_whisk, summary


async def main() -> None:
    p = parser(__doc__, 2000)
    p.add_argument("--actions", type=int, default=100, help="distinct actions for the spread run (default 100)")
    args = p.parse_args()
    rows = []
    # Room for one container per action in the spread run (128 MB each), as the target assumes.
    async with standalone_whisk({"WHISK_POOL_MEMORY_MB": str(max(4096, 128 * (args.actions + 8)))}) as api:
        await api.put_action("bench-one", "python:3", concurrency=1)
        for c in (4, 32):
            await measure(lambda: api.invoke("bench-one"), n=200, concurrency=c)
            rows.append({"scenario": f"1 action, concurrency {c}",
                         **summary(*await measure(lambda: api.invoke("bench-one"), n=args.n, concurrency=c))})
        names = [f"bench-many-{i}" for i in range(args.actions)]
        await asyncio.gather(*(api.put_action(n, "python:3") for n in names))
        cycle = itertools.cycle(names)
        await measure(lambda: api.invoke(next(cycle)), n=len(names) * 2, concurrency=8)   # warm every action
        rows.append({"scenario": f"{args.actions} actions, concurrency 32",
                     **summary(*await measure(lambda: api.invoke(next(cycle)), n=args.n, concurrency=32))})
    report("throughput", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
