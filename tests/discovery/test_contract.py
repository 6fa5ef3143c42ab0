"""One contract for every discovery adapter: LocalDiscovery, and ConsulDiscovery against the Consul double.

Consul is eventually consistent (the controller's view comes from a watch), so reads are polled with a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.support.waiting import until
from tests.support.consul_double import ConsulDouble
from whisk.discovery.base import Discovery, InvokerInfo
from whisk.discovery.consul import ConsulDiscovery
from whisk.discovery.local import LocalDiscovery

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")


@pytest_asyncio.fixture(params=["local", "consul"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A factory of connected discovery clients that share one registry (one process, or one Consul)."""
    if request.param == "local":
        shared = LocalDiscovery()
        async with shared:
            yield lambda: _Shared(shared)
    else:
        async with ConsulDouble() as double:
            yield lambda: ConsulDiscovery(f"consul://127.0.0.1:{double.port}", watch_wait_s=5)


class _Shared:
    """Standalone's controller and invoker share one LocalDiscovery; each client here is that same object."""

    def __init__(self, shared: LocalDiscovery) -> None:
        self.shared = shared

    async def __aenter__(self) -> LocalDiscovery:
        return self.shared

    async def __aexit__(self, *exc: object) -> None:
        return None


async def seen(d: Discovery, expected: list[InvokerInfo]) -> None:
    await until("the invokers", d.invokers, ok=lambda found: found == expected)


async def test_nothing_registered(backend: Any) -> None:
    async with backend() as d:
        assert await d.invokers() == []
        assert await d.controllers() == 1
        await d.ping()


async def test_invokers_register_and_deregister(backend: Any) -> None:
    a, b = InvokerInfo(1, 2048, "127.0.0.1:8101"), InvokerInfo(0, 1024, "127.0.0.1:8100")
    async with backend() as invoker_a, backend() as invoker_b, backend() as controller:
        await invoker_a.register_invoker(a, ttl_s=5)
        await invoker_b.register_invoker(b, ttl_s=5)
        await seen(controller, [b, a])                                     # ordered by instance id
        await invoker_a.deregister_invoker(1)
        await seen(controller, [b])


async def test_reregistering_updates_the_invoker(backend: Any) -> None:
    async with backend() as invoker, backend() as controller:
        await invoker.register_invoker(InvokerInfo(3, 1024, "127.0.0.1:9000"), ttl_s=5)
        await invoker.register_invoker(InvokerInfo(3, 4096, "127.0.0.1:9001"), ttl_s=5)
        await seen(controller, [InvokerInfo(3, 4096, "127.0.0.1:9001")])


async def test_controllers_are_counted_and_a_setting_fixes_the_count(backend: Any) -> None:
    async with backend() as c0, backend() as c1:
        await c0.register_controller(0, "127.0.0.1:3233")
        await c1.register_controller(1, "127.0.0.1:3234")
        assert await c0.controllers() == 2
        await c0.put_setting("controllers", "5")
        assert await c1.controllers() == 5
        await c0.put_setting("controllers", "none")                         # not a count: ignored
        assert await c1.controllers() == 2
        await c1.deregister_controller(1)
        assert await until("the controllers", c0.controllers, ok=lambda n: n == 1) == 1


async def test_settings_round_trip(backend: Any) -> None:
    async with backend() as a, backend() as b:
        assert await a.get_setting("missing") is None
        await a.put_setting("greeting", "héllo")
        assert await b.get_setting("greeting") == "héllo"
        await a.put_setting("greeting", "")
        assert await b.get_setting("greeting") in ("", None)
