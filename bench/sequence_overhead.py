"""A sequence of 5 warm no-op actions, blocking: what the sequence adds per component over the components' own
durations (the sequence record's `duration` is their sum), next to 5 single warm invokes in a row (issue target:
<= 2 ms per component).

    python -m bench.sequence_overhead --n 300
"""

from __future__ import annotations

import asyncio
import time

from bench._harness import Api, measure, parser, percentile, report, standalone_whisk, summary

COMPONENTS = 5


async def run_sequence(api: Api, name: str, samples: list[tuple[float, int]]) -> None:
    t0 = time.perf_counter()
    async with api.session.post(f"/api/v1/namespaces/_/actions/{name}?blocking=true", json={}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"sequence: {r.status} {body}")
    samples.append(((time.perf_counter() - t0) * 1000, int(body["duration"])))


async def main() -> None:
    args = parser(__doc__, 300).parse_args()
    async with standalone_whisk() as api:
        components = [f"bench-step-{i}" for i in range(COMPONENTS)]
        for name in components:
            await api.put_action(name)
            await api.invoke(name)                                    # warm
        async with api.session.put("/api/v1/namespaces/_/actions/bench-seq?overwrite=true", json={
                "exec": {"kind": "sequence", "components": [f"/_/{c}" for c in components]}}) as r:
            assert r.status == 200, await r.text()
        warmup: list[tuple[float, int]] = []
        for _ in range(20):
            await run_sequence(api, "bench-seq", warmup)

        async def five_singles() -> None:
            for name in components:
                await api.invoke(name)

        singles = summary(*await measure(five_singles, n=args.n, concurrency=1))
        samples: list[tuple[float, int]] = []
        await measure(lambda: run_sequence(api, "bench-seq", samples), n=args.n, concurrency=1)
    latency = [s[0] for s in samples]
    added = [(s[0] - s[1]) / COMPONENTS for s in samples]
    rows = [{"what": f"{COMPONENTS} single blocking invokes in a row", **singles},
            {"what": f"sequence of {COMPONENTS}, blocking", "n": len(latency),
             "p50_ms": round(percentile(latency, 50), 3), "p99_ms": round(percentile(latency, 99), 3)},
            {"what": "sequence: added per component over durations", "n": len(added),
             "p50_ms": round(percentile(added, 50), 3), "p99_ms": round(percentile(added, 99), 3)}]
    report("sequence_overhead", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
