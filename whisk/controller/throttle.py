"""Per-namespace throttles (docs/openwhisk.md §8, OpenWhisk's RateThrottler and ActivationThrottler).

Rates are counted per calendar minute (floor(now / 60 s)), and every check charges one, also for requests that
are rejected afterwards. Concurrency reads the balancer's in-flight count: allowed iff count < limit.
`InvocationThrottle` applies both to an invocation, before its action is even looked up, as OpenWhisk does, and
the fires per minute to a trigger fire; every refusal is counted in the metrics and reported as a user event, and so
is each admitted invocation's count of activations in flight (`ConcurrentInvocations`), as OpenWhisk's are.
With several controllers each enforces its share of a namespace's limits, as OpenWhisk's Entitlement does: the
limit × 1.2, divided by the number of controllers (at least 1; a limit of 0 stays 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from whisk import metrics
from whisk.controller.caller import Caller
from whisk.controller.events import CONCURRENT_INVOCATIONS, CONCURRENT_RATE_LIMIT, TIMED_RATE_LIMIT, UserEvents
from whisk.entities.errors import Throttled


def controller_share(limit: int, controllers: int) -> int:
    """This controller's part of a namespace limit when `controllers` share it (OpenWhisk's
    `calculateIndividualLimit`: 20 % over-commit for uneven balancing between controllers, never below 1)."""
    if controllers <= 1 or limit <= 0:
        return limit
    return max(1, math.ceil(limit * 1.2) // controllers)


def one_controller() -> int:
    return 1


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


class InvocationThrottle:
    """Invocations per minute, then concurrent invocations, of the caller's namespace; a refusal is counted and
    reported as a user event."""

    def __init__(self, in_flight: Callable[[str], int], events: UserEvents,
                 controllers: Callable[[], int] = one_controller) -> None:
        self._in_flight = in_flight              # the balancer's count of a namespace's activations in flight
        self._events = events
        self.controllers = controllers           # how many controllers share each namespace's limits
        self._rate = RateThrottle()
        self._fires = RateThrottle()             # trigger fires per minute, counted apart from invocations

    def check_fire(self, caller: Caller, fires_per_minute: int) -> None:
        """A trigger fire of the caller's namespace, against its fires per minute; a refusal is counted and reported
        as a refused invocation is (OpenWhisk's entitlement sends TimedRateLimit for both)."""
        self._charge(self._fires, caller, controller_share(fires_per_minute, self.controllers()))

    def check(self, caller: Caller) -> None:
        controllers = self.controllers()
        self._charge(self._rate, caller, controller_share(caller.invocations_per_minute, controllers))
        in_flight = self._in_flight(caller.uuid)
        try:
            check_concurrency(in_flight, controller_share(caller.concurrent_invocations, controllers))
        except Throttled:
            metrics.observe_throttle(caller.namespace, "concurrent")
            self._events.refused(CONCURRENT_RATE_LIMIT, caller.to_json())
            raise
        if self._events.enabled:     # (the user's JSON is not made on the invoke path for nothing)
            # OpenWhisk's checkThrottleOverload reports every admitted invocation with the count it makes (count + 1).
            self._events.metric(CONCURRENT_INVOCATIONS, in_flight + 1, caller.to_json())

    def _charge(self, rate: RateThrottle, caller: Caller, limit: int) -> None:
        """One of the caller's per-minute limits; a refusal is counted and reported (TimedRateLimit)."""
        try:
            rate.charge(caller.uuid, limit)
        except Throttled:
            metrics.observe_throttle(caller.namespace, "timed")
            self._events.refused(TIMED_RATE_LIMIT, caller.to_json())
            raise
