"""What the process sandbox costs one container: start (create until the proxy listens, then /init) and a warm
/run, sandboxed and unconfined (WHISK_TRUST_ALL_CODE), alternating container by container so that a busy machine
weighs on both alike.

    python -m bench.sandbox_start --n 30
"""

from __future__ import annotations

import asyncio
import itertools
import time

from bench._harness import parser, report, summary
from whisk.containers.base import ContainerSpec
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.runtimes.manifest import load_manifest

CODE = {"python:3": "def main(args):\n    return args\n", "nodejs:20": "function main(args) { return args; }\n"}
RUNS = 20                     # warm /run calls per container


async def one(factory: ProcessContainerFactory, kind: str, n: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    container = await factory.create(ContainerSpec(name=f"bench_{n}", kind=kind, image="", memory_mb=256))
    try:
        init = await container.initialize({"name": "b", "main": "main", "code": CODE[kind], "binary": False}, 30)
        assert init.status == 200, init.body
        start_ms = (time.perf_counter() - t0) * 1000
        runs = []
        for _ in range(RUNS):
            t1 = time.perf_counter()
            assert (await container.run({"value": {}}, 30)).status == 200
            runs.append((time.perf_counter() - t1) * 1000)
        return start_ms, runs
    finally:
        await container.destroy()


async def main() -> None:
    args = parser(__doc__, 30).parse_args()
    manifest = load_manifest()
    counter = itertools.count()
    async with ProcessContainerFactory(manifest, sandbox=True) as boxed, \
            ProcessContainerFactory(manifest, sandbox=False) as open_:
        rows = []
        for kind in CODE:
            starts: dict[str, list[float]] = {"sandbox": [], "unconfined": []}
            runs: dict[str, list[float]] = {"sandbox": [], "unconfined": []}
            for _ in range(args.n):
                for mode, factory in (("sandbox", boxed), ("unconfined", open_)):
                    start_ms, run_ms = await one(factory, kind, next(counter))
                    starts[mode].append(start_ms)
                    runs[mode].extend(run_ms)
            for mode in starts:
                rows.append({"kind": kind, "mode": mode, "what": "start + /init", **summary(starts[mode], 0)})
                rows.append({"kind": kind, "mode": mode, "what": "warm /run", **summary(runs[mode], 0)})
    for row in rows:
        row.pop("per_s", None)
    report("sandbox_start", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
