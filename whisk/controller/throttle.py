"""Per-namespace throttles (docs/openwhisk.md §8, OpenWhisk's RateThrottler and ActivationThrottler).

Rates are counted per calendar minute (floor(now / 60 s)), and every check charges one, also for requests that
are rejected afterwards. Concurrency reads the balancer's in-flight count: allowed iff count < limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from whisk.entities.errors import Throttled


class RateThrottle:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._minute = -1
        self._counts: dict[str, int] = {}

    def charge(self, namespace: str, allowed: int) -> None:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute = minute
            self._counts = {}
        count = self._counts.get(namespace, 0) + 1
        self._counts[namespace] = count
        if count > allowed:
            raise Throttled(f"Too many requests in the last minute (count: {count}, allowed: {allowed}).")


def check_concurrency(in_flight: int, allowed: int) -> None:
    if in_flight >= allowed:
        raise Throttled(f"Too many concurrent requests in flight (count: {in_flight}, allowed: {allowed}).")
