"""Alarms built into the controller: the three feed actions answered in the controller (`natives`, handed to the
launcher) and the scheduler that fires their triggers. `whisk/controller/services.py` opens one per controller
after the launcher and trigger firing exist.

Why the controller answers the feeds itself instead of running feed actions that call back into it: the client
side of the feed protocol stays exactly OpenWhisk's (a blocking invoke of `/whisk.system/alarms/<feed>` with
`lifecycleEvent`, `triggerName` and `authKey`, answered by an activation record), while an action container needs
no network path back to the controller (docker's unix networking gives it none) and no key of `whisk.system`.
"""

from __future__ import annotations

from typing import Any, Self

import structlog

from whisk.alarms.feeds import Feeds
from whisk.alarms.schedule import FEEDS
from whisk.alarms.scheduler import Scheduler, WallClock
from whisk.controller.entities import Entities, ResolvedAction
from whisk.controller.fire import Firing
from whisk.controller.launcher import Launcher, Native
from whisk.controller.subjects import Subjects
from whisk.entities.errors import NotFound, WhiskError
from whisk.entities.identity import SYSTEM_NAMESPACE, Identity
from whisk.entities.names import EntityPath, FullyQualifiedEntityName
from whisk.entities.trigger import Trigger
from whisk.store.base import Store

log = structlog.get_logger(__name__)

PACKAGE = "alarms"


class Alarms:
    def __init__(self, store: Store, subjects: Subjects, entities: Entities, firing: Firing, launcher: Launcher, *,
                 clock: WallClock | None = None, refresh_s: float = 5.0, late_s: float = 5.0) -> None:
        self._entities = entities
        self.scheduler = Scheduler(store, subjects, firing, clock=clock, refresh_s=refresh_s, late_s=late_s,
                                   remove_trigger=self._remove_trigger, store_record=launcher.store_record,
                                   standby=lambda: launcher.draining)
        self.feeds = Feeds(store, subjects, entities, self.scheduler.clock.now_ms, self.scheduler.changed)

    async def __aenter__(self) -> Self:
        await self.scheduler.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.scheduler.__aexit__(*exc)

    def natives(self) -> dict[str, Native]:
        """The feed actions by path, for `Launcher.natives`."""
        def serve(feed: str) -> Native:
            async def run(caller: Identity, resolved: ResolvedAction, params: Any) -> tuple[bool, Any]:
                return await self.feeds.handle(feed, caller, params)
            return run
        return {f"{SYSTEM_NAMESPACE}/{PACKAGE}/{feed}": serve(feed) for feed in FEEDS}

    async def _remove_trigger(self, owner: Identity, namespace: str, name: str, with_rules: bool) -> None:
        """deleteAfterFire: the trigger goes as its owner would delete it, after its rules when asked to."""
        path = EntityPath.of(namespace)
        if with_rules:
            trigger = await self._entities.repo.fetch(Trigger, f"{namespace}/{name}")
            for rule_id in (trigger.rules or {}) if trigger is not None else ():
                rule = FullyQualifiedEntityName.from_path(rule_id)
                try:
                    await self._entities.collections["rules"].delete(owner, rule.path, rule.name, dict)
                except NotFound:
                    continue
                except WhiskError as exc:
                    log.warning("alarms.rule_delete_failed", rule=rule_id, error=str(exc))
        try:
            await self._entities.collections["triggers"].delete(owner, path, name, dict)
        except NotFound:
            return
