"""A controller's services without its HTTP server, for tests that drive them directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from contextlib import asynccontextmanager

from whisk.config import Settings
from whisk.controller.entities import ResolvedAction
from whisk.controller.services import ControllerServices, open_controller
from whisk.entities.identity import Identity
from whisk.loadbalancer.base import Released
from whisk.loadbalancer.lean import LeanBalancer
from whisk.messaging.memory import MemoryBus
from whisk.runtimes.manifest import Manifest, load_manifest
from whisk.store.base import Store


@asynccontextmanager
async def guest_controller(settings: Settings, store: Store, manifest: Manifest | None = None,
                           ) -> AsyncIterator[tuple[ControllerServices, Identity]]:
    """A controller on `store`, an in-memory bus and the lean balancer (nothing consumes the invoker's topic), its
    subjects made, with the built-in runtime manifest unless given one: its services and the guest namespace's
    identity. The controller has stopped on the way out."""
    async with MemoryBus() as bus:
        def balancer(on_release: Released) -> LeanBalancer:
            return LeanBalancer(bus, controller=0, on_release=on_release)

        async with open_controller(settings, store, bus, balancer, manifest or load_manifest()) as services:
            await services.subjects.bootstrap()
            guest = await services.subjects.identity_of("guest")
            assert guest is not None
            yield services, guest


def serve_in_controller(services: ControllerServices, resolved: ResolvedAction, result: Any) -> None:
    """Have the controller serve `resolved` itself, answering `result`, as it serves the alarms feeds
    (`Launcher.natives`): no container runs it."""
    async def served(caller: Any, action: Any, params: Any) -> tuple[bool, Any]:
        return True, result

    services.launcher.natives[resolved.path] = served
