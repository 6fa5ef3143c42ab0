"""Each controller enforces its share of a namespace's limits when several share them (docs/openwhisk.md §8,
OpenWhisk's Entitlement: limit × 1.2 / controllers, at least 1)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import pytest
from prometheus_client import REGISTRY

from whisk.controller.caller import Caller
from whisk.controller.events import UserEvents
from whisk.controller.throttle import InvocationThrottle, RateThrottle, controller_share
from whisk.entities.errors import Throttled
from whisk.loadbalancer.sharding import ShardingScheduler


def caller(per_minute: int, concurrent: int) -> Caller:
    return Caller(subject="s", namespace="ns", uuid="u", api_key="", invocations_per_minute=per_minute,
                  concurrent_invocations=concurrent)


def throttle(controllers: int, in_flight: int = 0) -> InvocationThrottle:
    t = InvocationThrottle(lambda _: in_flight, UserEvents(None, controller=0), lambda: controllers)
    t._rate = RateThrottle(lambda: 120.0)        # one calendar minute for the whole test
    return t


def test_share_is_openwhisks() -> None:
    assert controller_share(10, 1) == 10
    assert controller_share(10, 2) == 6          # ceil(12) / 2
    assert controller_share(60, 3) == 24
    assert controller_share(2, 2) == 1
    assert controller_share(1, 5) == 1           # never below 1
    assert controller_share(0, 2) == 0           # a namespace allowed nothing stays at nothing


@pytest.mark.parametrize(("controllers", "allowed"), [(2, 6), (1, 10)])
def test_rate_allows_each_controller_its_share(controllers: int, allowed: int) -> None:
    t = throttle(controllers)
    for _ in range(allowed):
        t.check(caller(10, 1000))
    with pytest.raises(Throttled, match=rf"count: {allowed + 1}, allowed: {allowed}\b"):
        t.check(caller(10, 1000))


def test_concurrency_with_two_controllers_allows_each_its_share() -> None:
    throttle(2, in_flight=0).check(caller(1000, 2))
    with pytest.raises(Throttled, match=r"count: 1, allowed: 1"):
        throttle(2, in_flight=1).check(caller(1000, 2))
    throttle(1, in_flight=1).check(caller(1000, 2))


def test_the_sharding_scheduler_reports_its_controllers() -> None:
    s = ShardingScheduler()
    assert s.controllers == 1
    s.update_controllers(2)
    assert s.controllers == 2


class RecordingBus:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def send(self, topic: str, message: bytes) -> None:
        self.sent.append((topic, json.loads(message)))


async def test_an_admitted_invocation_is_reported_with_its_namespaces_count_in_flight() -> None:
    """OpenWhisk's checkThrottleOverload sends a `ConcurrentInvocations` metric (the count in flight + 1) for every
    invocation its concurrency throttle admits, beside the refusals' `ConcurrentRateLimit`."""
    bus = RecordingBus()
    in_flight = {"u": 2}
    t = InvocationThrottle(lambda uuid: in_flight.get(uuid, 0), UserEvents(bus, controller=0))  # type: ignore[arg-type]
    t._rate = RateThrottle(lambda: 120.0)
    t.check(caller(1000, 4))
    in_flight["u"] = 4
    with pytest.raises(Throttled):
        t.check(caller(1000, 4))
    await asyncio.sleep(0)
    metrics = [(topic, e["eventType"], e["namespace"], e["userId"], e["body"]) for topic, e in bus.sent]
    assert metrics == [
        ("events", "Metric", "ns", "u", {"metricName": "ConcurrentInvocations", "metricValue": 3}),
        ("events", "Metric", "ns", "u", {"metricName": "ConcurrentRateLimit", "metricValue": 1})]


async def test_each_refusal_is_counted_for_the_operator_and_reported_as_a_user_event() -> None:
    """A refused invocation is `TimedRateLimit` or `ConcurrentRateLimit` (OpenWhisk's entitlement sends one for each
    refusal, a refused fire a `TimedRateLimit` too), and counted in `openwhisk_action_limit_*_total`; fires have a
    budget of their own, apart from the invocations'."""
    bus = RecordingBus()
    in_flight = {"u": 0}
    t = InvocationThrottle(lambda uuid: in_flight.get(uuid, 0), UserEvents(bus, controller=0))  # type: ignore[arg-type]
    t._rate, t._fires = RateThrottle(lambda: 120.0), RateThrottle(lambda: 120.0)
    me = Caller(subject="s", namespace=f"ns{uuid.uuid4().hex[:6]}", uuid="u", api_key="",
                invocations_per_minute=1, concurrent_invocations=1)

    def limited(kind: str) -> float:
        return REGISTRY.get_sample_value(f"openwhisk_action_limit_{kind}_total", {"namespace": me.namespace}) or 0

    t.check(me)
    with pytest.raises(Throttled, match=r"count: 2, allowed: 1"):
        t.check(me)                              # the minute's one invocation is spent
    t.check_fire(me, 1)                          # ... but not the minute's one fire
    with pytest.raises(Throttled, match=r"count: 2, allowed: 1"):
        t.check_fire(me, 1)
    me = dataclasses.replace(me, invocations_per_minute=1000)
    in_flight["u"] = 1
    with pytest.raises(Throttled, match=r"count: 1, allowed: 1"):
        t.check(me)
    await asyncio.sleep(0)
    names = [e["body"]["metricName"] for _, e in bus.sent]
    assert names == ["ConcurrentInvocations", "TimedRateLimit", "TimedRateLimit", "ConcurrentRateLimit"]
    assert (limited("timed"), limited("concurrent")) == (2, 1)
