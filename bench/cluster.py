"""The invoke benchmarks on a cluster (1 controller, 2 invokers over Apache Kafka, pouchdb-server and the Consul double)
beside the same runs on standalone: warm blocking no-op latency against the direct /run floor, throughput at
concurrency 32 (one action, and 100 distinct actions), and the home-invoker share of one action.

    python -m bench.cluster --n 1000

The backends are the test fixtures' programs: Apache Kafka from .ci/work/kafka/libs (one KRaft node), pouchdb-server
from .ci/work/pouchdb (both installed by .ci/deps.sh), and `python -m tests.support.consul_double`. The bus keeps
whisk's default settings (`WHISK_BUS=kafka://host:port`, nothing added). Every process listens on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys

import aiohttp

from bench._cluster import whisk_cluster
from bench._harness import Api, measure, parser, report, standalone_whisk, summary
from bench.warm_invoke import direct_run
from tests.distributed.cluster import Cluster

HOME_SHARE_CALLS = 200
# Enough for Kafka's JIT: measured, the broker's CPU per round trip settles after about 6,000 requests.
WARMUP = 5000


async def activations_by_invoker(c: Cluster, action: str) -> list[int]:
    """`openwhisk_action_activations` of `action` on each invoker (its /metrics; counted where the action ran)."""
    counts = []
    pattern = re.compile(r'^openwhisk_action_activations_total\{[^}]*action="[^"]*' + re.escape(action)
                         + r'"[^}]*\} ([0-9.e+]+)$', re.M)
    async with aiohttp.ClientSession() as s:
        for instance in (0, 1):
            async with s.get(f"{c.invoker(instance).url}/metrics") as r:
                counts.append(int(sum(float(v) for v in pattern.findall(await r.text()))))
    return counts


async def runs(api: Api, n: int, actions: int, warmup: int) -> list[dict[str, object]]:
    """The same measurements on either setup: warm latency at concurrency 1, then throughput at 32. The warm-up
    invokes (not measured) also warm the broker's JVM: its request path is compiled only after some thousands of
    requests (docs/performance.md), and a broker in service has long been past that."""
    rows: list[dict[str, object]] = []
    await api.put_action("bench-noop", "python:3")
    print(f"warming up: {warmup} invokes", file=sys.stderr, flush=True)
    await measure(lambda: api.invoke("bench-noop"), n=warmup, concurrency=1)        # warm-up, not measured
    rows.append({"scenario": "warm blocking no-op, concurrency 1",
                 **summary(*await measure(lambda: api.invoke("bench-noop"), n=n, concurrency=1))})
    await api.put_action("bench-one", "python:3")
    await measure(lambda: api.invoke("bench-one"), n=200, concurrency=32)
    rows.append({"scenario": "1 action, concurrency 32",
                 **summary(*await measure(lambda: api.invoke("bench-one"), n=2 * n, concurrency=32))})
    names = [f"bench-many-{i}" for i in range(actions)]
    await asyncio.gather(*(api.put_action(name, "python:3") for name in names))
    cycle = itertools.cycle(names)
    await measure(lambda: api.invoke(next(cycle)), n=len(names) * 2, concurrency=8)   # a warm container each
    rows.append({"scenario": f"{actions} actions, concurrency 32",
                 **summary(*await measure(lambda: api.invoke(next(cycle)), n=2 * n, concurrency=32))})
    return rows


async def home_share(api: Api, c: Cluster) -> list[dict[str, object]]:
    """One action invoked while its home invoker has room (one at a time, then 4 at a time): the share of its
    activations that ran on one invoker, counted by the invokers themselves."""
    rows: list[dict[str, object]] = []
    for concurrency in (1, 4):
        name = f"bench-home-{concurrency}"
        await api.put_action(name, "python:3")
        await measure(lambda: api.invoke(name), n=HOME_SHARE_CALLS, concurrency=concurrency)
        counts = await activations_by_invoker(c, name)
        rows.append({"setup": "cluster", "scenario": f"home-invoker share, 1 action, concurrency {concurrency}",
                     "n": sum(counts), "share_pct": round(100 * max(counts) / max(1, sum(counts)), 1),
                     "by_invoker": "/".join(map(str, counts))})
    return rows


async def main() -> None:
    p = parser(__doc__, 1000)
    p.add_argument("--actions", type=int, default=100, help="distinct actions for the spread run (default 100)")
    p.add_argument("--warmup", type=int, default=WARMUP,
                   help=f"invokes before the measured ones, on each setup (default {WARMUP})")
    args = p.parse_args()
    # Room for one warm container per action (128 MB each, spread over the two invokers) and the other actions.
    pool_mb = max(4096, 128 * (args.actions + 16))
    rows: list[dict[str, object]] = [{"setup": "direct /run (floor)", "scenario": "warm no-op, concurrency 1",
                                      **await direct_run(args.n)}]
    async with whisk_cluster(pool_mb // 2) as (api, c):
        cluster_rows = [{"setup": "cluster", **row} for row in await runs(api, args.n, args.actions, args.warmup)]
        share_rows = await home_share(api, c)
    async with standalone_whisk({"WHISK_POOL_MEMORY_MB": str(pool_mb)}) as api:
        standalone_rows = [{"setup": "standalone", **row}
                           for row in await runs(api, args.n, args.actions, args.warmup)]
    floor = rows[0]["p50_ms"]
    rows += cluster_rows + standalone_rows
    for setup_rows in (cluster_rows, standalone_rows):
        rows.append({"setup": setup_rows[0]["setup"], "scenario": "warm p50 over the floor",
                     "p50_ms": round(float(setup_rows[0]["p50_ms"]) - float(floor), 3)})
    rows += share_rows
    report("cluster", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
