"""A controller's alarm machinery in process, over real parts (memory store and bus, the lean balancer, and the
controller's services as whisk.controller.services builds them) and a wall clock the test moves, so that minutes
pass at once. Nothing consumes the invoker topic: a rule's activation is accepted and its id logged in the
trigger's record, which is what an alarm's fire produces in the controller."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from whisk.alarms.service import Alarms
from whisk.config import Settings
from whisk.controller.drain import Drain
from whisk.controller.entities import Entities
from whisk.controller.launcher import Launcher
from whisk.controller.services import open_controller
from whisk.controller.subjects import GUEST_KEY, GUEST_UUID, Subjects
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.loadbalancer.base import Released
from whisk.loadbalancer.lean import LeanBalancer
from whisk.messaging.memory import MemoryBus
from whisk.runtimes.manifest import load_manifest
from whisk.store.base import ActivationQuery, Store
from whisk.store.memory import MemoryStore

GUEST_AUTH = f"{GUEST_UUID}:{GUEST_KEY}"
START_MS = 1_800_000_000_000          # 2027-01-15T08:00:00Z


class ManualWallClock:
    """Wall time that moves only when the test says so."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.ms = now_ms

    def now_ms(self) -> int:
        return self.ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()      # the tests call Scheduler.step themselves


@dataclass
class Controller:
    store: Store
    entities: Entities
    subjects: Subjects
    launcher: Launcher
    alarms: Alarms
    clock: ManualWallClock
    guest: Identity
    drain: Drain

    async def put(self, collection: str, name: str, body: dict[str, Any]) -> None:
        await self.entities.collections[collection].put(self.guest, EntityPath.of("guest"), name, body, True)

    async def feed(self, feed: str, event: str, trigger: str, **params: Any) -> tuple[bool, dict[str, Any]]:
        return await self.alarms.feeds.handle(feed, self.guest, {"lifecycleEvent": event, "authKey": GUEST_AUTH,
                                                                 "triggerName": f"/_/{trigger}", **params})

    async def advance(self, seconds: float) -> None:
        """Move the clock, let the scheduler do what fell due, and wait for the trigger records it started."""
        self.clock.ms += int(seconds * 1000)
        await self.alarms.scheduler.step()
        await self.settle()

    async def settle(self) -> None:
        """Wait (up to a second) for the fires the ticks started and the activations those started."""
        for _ in range(100):
            if not self.launcher._tasks and not self.alarms.scheduler._fires:
                return
            await asyncio.sleep(0.01)

    async def fires(self, trigger: str) -> list[dict[str, Any]]:
        records = await self.store.list_activations(ActivationQuery("guest", name=trigger, limit=0))
        return sorted(records, key=lambda r: r["start"])


@asynccontextmanager
async def controller(store: Store | None = None, clock: ManualWallClock | None = None,
                     instance: int = 0) -> AsyncIterator[Controller]:
    """One controller's alarms over `store` (a fresh memory store by default)."""
    clock = clock or ManualWallClock()
    async with AsyncExitStack() as stack:
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="whisk-alarms-"))
        settings = dataclasses.replace(Settings(), data_dir=data, instance=instance, fires_per_minute=10_000,
                                       invocations_per_minute=10_000, catalog=False, alarms_refresh_s=3600)
        if store is None:
            store = await stack.enter_async_context(MemoryStore())
        bus = await stack.enter_async_context(MemoryBus())

        def balancer(on_release: Released) -> LeanBalancer:
            return LeanBalancer(bus, controller=instance, on_release=on_release)

        services = await stack.enter_async_context(
            open_controller(settings, store, bus, balancer, load_manifest(), clock=clock))
        await services.subjects.bootstrap()
        guest = await services.subjects.identity_of("guest")
        assert guest is not None
        yield Controller(store, services.entities, services.subjects, services.launcher, services.alarms, clock,
                         guest, services.drain)
