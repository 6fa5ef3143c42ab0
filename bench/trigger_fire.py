"""Trigger fire with 10 active rules to 10 warm no-op actions: the fire's answer (202) latency, and end to end, from
the fire to the last of its 10 action records stored (issue target: fire p50 <= 10 ms).

    python -m bench.trigger_fire --n 200
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench._harness import Api, measure, parser, percentile, report, standalone_whisk, summary

RULES = 10


async def fire(api: Api, trigger: str) -> str:
    async with api.session.post(f"/api/v1/namespaces/_/triggers/{trigger}", json={"n": 1}) as r:
        body = await r.json()
        if r.status != 202:
            raise RuntimeError(f"fire: {r.status} {body}")
        return body["activationId"]


async def record(api: Api, activation_id: str, deadline_s: float = 30) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while True:
        async with api.session.get(f"/api/v1/namespaces/_/activations/{activation_id}") as r:
            if r.status == 200:
                return await r.json()
        if time.monotonic() > end:
            raise RuntimeError(f"no record for {activation_id}")
        await asyncio.sleep(0.002)


async def end_to_end(api: Api, trigger: str) -> tuple[float, float]:
    """(ms to the fire's answer, ms until every rule's action record is stored), for a fire on an idle server."""
    t0 = time.perf_counter()
    activation_id = await fire(api, trigger)
    answered = (time.perf_counter() - t0) * 1000
    trigger_record = await record(api, activation_id)
    ids = [json.loads(line)["activationId"] for line in trigger_record["logs"]]
    await asyncio.gather(*(record(api, i) for i in ids))
    return answered, (time.perf_counter() - t0) * 1000


async def main() -> None:
    args = parser(__doc__, 200).parse_args()
    async with standalone_whisk({"WHISK_LIMIT_FIRES_PER_MINUTE": "10000000"}) as api:
        trigger = "bench-trigger"
        async with api.session.put(f"/api/v1/namespaces/_/triggers/{trigger}?overwrite=true", json={}) as r:
            assert r.status == 200, await r.text()
        for i in range(RULES):
            await api.put_action(f"bench-fired-{i}")
            async with api.session.put(f"/api/v1/namespaces/_/rules/bench-rule-{i}?overwrite=true", json={
                    "trigger": f"/_/{trigger}", "action": f"/_/bench-fired-{i}"}) as r:
                assert r.status == 200, await r.text()
            await api.invoke(f"bench-fired-{i}")                      # warm each action
        for _ in range(10):
            await end_to_end(api, trigger)                            # warm-up, not measured
        # One fire at a time, each after the previous one's work is done; then fires back to back, whose fired
        # work (10 activations each) queues up behind them.
        rounds = [await end_to_end(api, trigger) for _ in range(args.n)]
        back_to_back = summary(*await measure(lambda: fire(api, trigger), n=args.n, concurrency=1))
    answers, e2e = [r[0] for r in rounds], [r[1] for r in rounds]
    rows = [{"what": f"fire answer (202), {RULES} rules", "n": len(answers),
             "p50_ms": round(percentile(answers, 50), 3), "p99_ms": round(percentile(answers, 99), 3)},
            {"what": f"fire to {RULES} records stored", "n": len(e2e), "p50_ms": round(percentile(e2e, 50), 3),
             "p99_ms": round(percentile(e2e, 99), 3)},
            {"what": "fire answer, back to back", **back_to_back}]
    report("trigger_fire", rows, args.json)


if __name__ == "__main__":
    asyncio.run(main())
