"""The controller's services, built in one place and in dependency order.

    UserEvents(bus), Drain, Ledger(store, journal, Drain)
    balancer(on_release=Ledger.released)                  chosen by roles.py
    InvocationThrottle(balancer), Activator(balancer, Ledger, Drain)
    Entities, Subjects(store, limits, runtime kinds)
    Launcher(Activator, Entities, Ledger, Drain, UserEvents)
    Firing, WebActions (Launcher, InvocationThrottle), Apis(store)
    catalog install (Entities, Subjects), then Alarms(Firing, Launcher), whose feeds the Launcher answers

Each part gets what it needs as constructor arguments. The balancer is chosen by the caller (roles.py), which
passes a factory that takes the release callback. `open_controller` opens them and closes them in reverse;
`ControllerServices.stop_work` (called when the HTTP server begins its shutdown) stops the alarms and lets the
launcher's compositions end first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from whisk.alarms.scheduler import WallClock
from whisk.alarms.service import Alarms
from whisk.config import Settings
from whisk.controller.apigw import Apis
from whisk.controller.cache import EntityCache
from whisk.controller.drain import Drain
from whisk.controller.entities import Entities
from whisk.controller.events import UserEvents
from whisk.controller.fire import Firing
from whisk.controller.invoke import Activator
from whisk.controller.launcher import Launcher
from whisk.controller.ledger import Ledger
from whisk.controller.limits import system_limits
from whisk.controller.subjects import Subjects
from whisk.controller.throttle import InvocationThrottle
from whisk.controller.web import WebActions
from whisk.entities.errors import Invalid
from whisk.loadbalancer.base import LoadBalancer, Released
from whisk.messaging.base import Bus
from whisk.runtimes.manifest import Manifest, Runtime, load_manifest
from whisk.store.base import Store

log = structlog.get_logger(__name__)

BalancerFactory = Callable[[Released], AbstractAsyncContextManager[LoadBalancer]]


@dataclass(slots=True)
class ControllerServices:
    balancer: LoadBalancer
    entities: Entities
    subjects: Subjects
    invocations: InvocationThrottle
    activator: Activator
    launcher: Launcher
    firing: Firing
    web_actions: WebActions
    apis: Apis
    drain: Drain
    alarms: Alarms
    shutdown_grace_s: float
    _stopped: bool = field(default=False)

    async def stop_work(self, grace_s: float | None = None) -> None:
        """No new alarm fires, then let compositions and trigger records finish (or cancel them past `grace_s`,
        by default the whole shutdown grace)."""
        if self._stopped:
            return
        self._stopped = True
        await self.alarms.__aexit__(None, None, None)
        await self.launcher.close(self.shutdown_grace_s if grace_s is None else grace_s)
        self.balancer.stop()            # what is still in flight (the drain's grace is over): "stopped", answered


def api_manifest() -> Manifest | None:
    """The runtime kinds the API accepts; without a manifest, only blackbox and sequence actions."""
    try:
        return load_manifest()
    except (ImportError, ValueError) as exc:
        log.warning("api.no_runtime_manifest", error=str(exc))
        return None


def _unknown_kind(kind: str) -> Runtime:
    raise Invalid(f"The specified runtime '{kind}' is not supported by this platform. Valid values are: "
                  "'blackbox', 'sequence'.")


@asynccontextmanager
async def open_controller(settings: Settings, store: Store, bus: Bus, balancer_of: BalancerFactory,
                          manifest: Manifest | None, *, clock: WallClock | None = None,
                          ) -> AsyncIterator[ControllerServices]:
    """`clock` is the alarms' wall clock (tests move it by hand)."""
    events = UserEvents(bus if settings.user_events else None, controller=settings.instance)
    drain = Drain()
    ledger = Ledger(store, Path(settings.data_dir) / f"controller{settings.instance}.journal", drain)
    # The ledger outlives the balancer: closing, the balancer force-closes what is still in flight (outcome
    # "stopped"), and the ledger's records and journal lines for those must be written before it closes.
    try:
        async with balancer_of(ledger.released) as balancer:
            await ledger.recover()
            invocations = InvocationThrottle(balancer.in_flight, events, balancer.controllers)
            activator = Activator(settings.instance, store, balancer, ledger, drain,
                                  manifest.concurrent if manifest is not None else lambda kind: kind == "blackbox")
            system = system_limits(settings)
            entities = Entities(store, system, manifest.resolve if manifest is not None else _unknown_kind)
            # A namespace made again under a new owner: the entity cache (when `store` is one) forgets the old
            # one's.
            forget = store.forget_namespace if isinstance(store, EntityCache) else None
            subjects = Subjects(store, system, on_new_owner=forget)
            launcher = Launcher(activator, entities, store, ledger=ledger, drain=drain, events=events)
            firing = Firing(launcher, entities, invocations, ledger)
            web_actions = WebActions(launcher, entities, subjects, invocations, settings.max_blocking_wait_ms)
            if settings.catalog:
                from whisk.catalog.installer import install
                await install(entities, subjects)
            # The feeds need trigger firing, which needs the launcher: the launcher learns of them last.
            alarms = Alarms(store, subjects, entities, firing, launcher, clock=clock,
                            refresh_s=settings.alarms_refresh_s)
            services = ControllerServices(balancer, entities, subjects, invocations, activator, launcher, firing,
                                          web_actions, Apis(store), drain, alarms, settings.shutdown_grace_s)
            await alarms.__aenter__()
            try:
                launcher.natives.update(alarms.natives())
                yield services
            finally:
                await services.stop_work()
    finally:
        await ledger.close()
        await events.close()
