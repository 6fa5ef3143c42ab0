"""A warm no-op /run costs well under a millisecond of proxy time (the bound here leaves room for a busy CI box)."""

from __future__ import annotations

from tests.runtimes.latency import measure

P50_BOUND_MS = 2.0


async def test_warm_run_latency(kind: str) -> None:
    result = await measure(kind, 1000)
    print(result)
    assert result["p50_ms"] < P50_BOUND_MS, result
