"""The alarms' clockwork: every controller runs one scheduler over all alarm documents, and each tick fires once.

Each controller reads the alarm documents from the store every `refresh_s` (and at once after a local change) and
sleeps until the earliest `next`. When a tick falls due, the controller claims it by writing the document with
the following tick as `next`, conditional on the revision it read (CouchDB's `_rev`, sqlite's transaction): of
controllers racing for one tick exactly one write succeeds, and only its writer fires; ticks due together are taken
in an order of each controller's own, so that they are shared out. A controller that dies leaves the ticks to the
others. A tick is not replayed once it is more than `late_s` past due (a controller that was down, or a store that
did not answer): the claim moves `next` on without firing, counted as `missed`.

A fire goes through the controller's own trigger fire (throttles, rules) as the namespace's owner, identified by
the alarm's uuid and the hash of the key that created it: a revoked key (the hash no longer matches) or a trigger
that is gone disables the alarm with the provider's reason (`{"kind": "AUTO", "statusCode", "message"}`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, Self

import structlog

from whisk import metrics
from whisk.alarms import feeds as alarm_feeds
from whisk.alarms.schedule import ONCE, Config, no_tick_left
from whisk.controller.fire import Firing
from whisk.controller.subjects import Subjects
from whisk.entities.activation import (APPLICATION_ERROR, WHISK_ERROR, Activation, ActivationResponse,
                                       new_activation_id, random_hex32)
from whisk.entities.errors import Conflict, NotFound, Throttled, WhiskError, http_status
from whisk.entities.identity import Identity
from whisk.store.base import Doc, Store

log = structlog.get_logger(__name__)

FIRES = metrics.ALARM_FIRES
# A fire refused for a reason that may pass (throttled, the platform unavailable) is tried again, as the provider
# does: ten more times, a second apart, or n² seconds after the n-th throttled attempt (6.4 minutes in all). One
# throttled every time disables its alarm.
RETRIES = 10
RETRY_DELAY_S = 1.0
MAX_REACHED = "Automatically disabled after reaching max triggers"
THROTTLED_TOO_OFTEN = "Automatically disabled after continuously receiving a 429 status code when firing the trigger"
# The 4xx statuses of a REST fire that may pass (the provider's shouldDisableTrigger): any other 4xx will not, and
# disables the alarm.
PASSING_4XX = (408, 409, 429)


def refused(status: int) -> str:
    """The provider's reason for an alarm whose fire got a 4xx that will not pass."""
    return f"Trigger automatically disabled: Received a {status} status code when firing the trigger"


class WallClock(Protocol):
    def now_ms(self) -> int:
        """Epoch milliseconds (alarms name calendar times, so this is wall time, not monotonic)."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Scheduler:
    def __init__(self, store: Store, subjects: Subjects, firing: Firing, *, clock: WallClock | None = None,
                 refresh_s: float = 5.0, late_s: float = 5.0,
                 remove_trigger: Callable[[Identity, str, str, bool], Awaitable[None]] | None = None,
                 store_record: Callable[[Activation], Awaitable[object]] | None = None,
                 standby: Callable[[], bool] = lambda: False) -> None:
        self._store = store
        self._subjects = subjects
        self._firing = firing
        self.clock = clock or SystemClock()
        self._refresh_ms = int(refresh_s * 1000)
        self._late_ms = int(late_s * 1000)
        self._remove_trigger = remove_trigger
        self._store_record = store_record
        self._standby = standby                    # true while the controller drains: leave ticks to the others
        self._next: dict[str, int] = {}            # alarm id → its next tick, as last read
        self._loaded_at: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fires: set[asyncio.Task[None]] = set()  # claimed ticks firing, each apart: none waits for another
        self._order = random.Random()              # the order of ticks due together (`step`)

    # --- life -----------------------------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="alarms-scheduler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in self._fires:
            task.cancel()
        await asyncio.gather(*self._fires, return_exceptions=True)

    def changed(self) -> None:
        """An alarm was created or changed here: read them again now."""
        self._loaded_at = None
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                delay_s = await self.step()
            except asyncio.CancelledError:
                raise
            except WhiskError as exc:     # the store did not answer: try again after a refresh period
                log.warning("alarms.scheduler.store_failed", error=str(exc))
                delay_s = self._refresh_ms / 1000
            sleeper = asyncio.ensure_future(self.clock.sleep(delay_s))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
            self._wake.clear()

    async def step(self) -> float:
        """Reload when due, fire what is due; the seconds until the next thing to do."""
        now = self.clock.now_ms()
        if self._standby():
            return self._refresh_ms / 1000
        if self._loaded_at is None or now - self._loaded_at >= self._refresh_ms:
            await self._load(now)
        # Ticks due together are taken in an order of this controller's own. In one shared order the controller that
        # woke first claimed them one after another ahead of the others (18 of 20 on one of two, measured), and a
        # namespace's fires were all charged to that controller's share of its fires per minute (docs/openwhisk.md
        # §8), where OpenWhisk's provider's posts are spread over the controllers by the load balancer.
        due = sorted((at, self._order.random(), alarm_id) for alarm_id, at in self._next.items() if at <= now)
        for _, _, alarm_id in due:
            await self._tick(alarm_id, now)
        now = self.clock.now_ms()
        upcoming = min([*self._next.values(), (self._loaded_at or now) + self._refresh_ms])
        return max(0.0, (upcoming - now) / 1000)

    async def _load(self, now: int) -> None:
        docs = await self._store.list_entities(alarm_feeds.ENTITY_TYPE, alarm_feeds.NAMESPACE, skip=0, limit=0)
        self._next = {d["_id"]: int(d["next"]) for d in docs
                      if (d.get("status") or {}).get("active") and d.get("next") is not None}
        self._loaded_at = now

    # --- one tick -------------------------------------------------------------------------------------------------
    async def _tick(self, alarm_id: str, now: int) -> None:
        doc = await self._store.get(alarm_id)
        self._next.pop(alarm_id, None)
        if doc is None or not (doc.get("status") or {}).get("active") or doc.get("next") is None:
            return
        due = int(doc["next"])
        if due > now:                               # another controller claimed it and moved it on
            self._next[alarm_id] = due
            return
        config = Config.from_json(doc["config"])
        feed = config.feed
        late = now - due > self._late_ms
        following = config.next_after(max(now, due))
        claimed: Doc = {**doc, "next": following, "updated": now}
        if not late:
            claimed["fired"] = int(doc.get("fired", 0)) + 1
            claimed["lastFired"] = due
        ending = self._ending(config, claimed, following)
        if ending is not None:
            claimed["status"] = alarm_feeds.status(False, now, alarm_feeds.auto_disabled(ending))
        try:
            await self._store.put(claimed)
        except Conflict:
            return                                  # another controller claimed this tick
        if following is not None and ending is None:
            self._next[alarm_id] = following
        if late:
            FIRES.labels(feed, "missed").inc()
            log.info("alarms.tick.missed", alarm=alarm_id, due=due, late_ms=now - due)
            return
        task = asyncio.create_task(self._fire_tick(alarm_id, doc, config), name=f"alarm-fire-{alarm_id}")
        self._fires.add(task)
        task.add_done_callback(self._fires.discard)

    async def _fire_tick(self, alarm_id: str, doc: Doc, config: Config) -> None:
        """A claimed tick's fire, in a task of its own, so that ticks due together fire together and a retry's wait
        holds no other alarm up."""
        outcome = await self._fire(alarm_id, doc, config)
        FIRES.labels(config.feed, outcome).inc()
        if outcome in ("throttled", "failed") and config.max_triggers > 0:
            await self._give_back(alarm_id, config)
        if config.feed == ONCE and outcome in ("fired", "no_active_rule") \
                and config.delete_after_fire in ("true", "rules"):
            await self._delete_after_fire(alarm_id, doc, config.delete_after_fire == "rules")

    @staticmethod
    def _ending(config: Config, claimed: Doc, following: int | None) -> str | None:
        """Why the alarm stops after this tick (the provider's messages), or None."""
        if config.feed == ONCE:
            # With deleteAfterFire too: a fire that fails (throttled, failed) leaves the trigger, and its alarm must
            # not stay active with no tick left; a fire that succeeds deletes both right after.
            return "Automatically disabled after firing once"
        if following is None and config.stop_date is not None:
            return no_tick_left(config)
        if config.reached_max(int(claimed.get("fired", 0))):
            return MAX_REACHED
        if following is None:
            return no_tick_left(config)
        return None

    async def _owner(self, doc: Doc) -> Identity | None:
        """The trigger's owner, if the key the alarm was created with still opens the namespace."""
        owner = doc.get("owner") or {}
        found = await self._store.find_namespace(owner.get("uuid", ""))
        if found is None or found[0].get("blocked") or found[1].get("key_hash") != owner.get("keyHash"):
            return None
        return await self._subjects.identity_of(found[1]["name"])

    async def _fire(self, alarm_id: str, doc: Doc, config: Config) -> str:
        trigger = doc["trigger"]
        namespace, name = trigger["namespace"], trigger["name"]
        identity = await self._owner(doc)
        if identity is None:
            await self._disable(alarm_id, 401, refused(401))
            return "disabled"
        throttled = 0
        for attempt in range(RETRIES + 1):
            if attempt:
                await self.clock.sleep(max(RETRY_DELAY_S, float(throttled ** 2)))
                if not await self._may_retry(alarm_id, config):
                    break
            try:
                self._firing.throttle(identity)
                activation_id = await self._firing.fire(identity, namespace, name, dict(config.payload), {},
                                                        f"alarm-{random_hex32()[:16]}")
            except Throttled as exc:
                throttled += 1
                log.warning("alarms.fire.throttled", alarm=alarm_id, attempt=attempt)
                outcome, code, error = "throttled", APPLICATION_ERROR, str(exc)
                continue
            except WhiskError as exc:
                status = http_status(exc)             # what a REST fire would get
                if 400 <= status < 500 and status not in PASSING_4XX:
                    await self._disable(alarm_id, status, refused(status))
                    await self._failure_record(identity, doc, config, APPLICATION_ERROR, str(exc))
                    return "disabled"
                log.error("alarms.fire.failed", alarm=alarm_id, attempt=attempt, error=str(exc))
                outcome, code, error = "failed", WHISK_ERROR, str(exc) or "internal error"
                continue
            log.info("alarms.fired", alarm=alarm_id, activation_id=activation_id)
            return "fired" if activation_id is not None else "no_active_rule"
        if throttled > RETRIES:
            await self._disable(alarm_id, 429, THROTTLED_TOO_OFTEN)
        await self._failure_record(identity, doc, config, code, error)
        return outcome

    async def _may_retry(self, alarm_id: str, config: Config) -> bool:
        """Whether a fire is still owed: its alarm is there, unchanged, and neither paused nor disabled by a refused
        fire meanwhile (the tick that ended its schedule left it inactive without a status code, and owes its fire)."""
        try:
            doc = await self._store.get(alarm_id)
        except WhiskError:
            return True                            # the store is away: the fire's own try will tell
        if doc is None or Config.from_json(doc["config"]) != config:
            return False
        state = doc.get("status") or {}
        reason = state.get("reason") or {}
        return bool(state.get("active")) or (reason.get("kind") == "AUTO" and reason.get("statusCode") is None)

    async def _give_back(self, alarm_id: str, config: Config) -> None:
        """A tick whose fire failed for good does not count toward `maxTriggers` (the provider's triggersLeft is
        given back): the count goes down again, and an alarm that tick ended is active again."""
        while True:
            doc = await self._store.get(alarm_id)
            if doc is None or int(doc.get("fired", 0)) <= 0 or Config.from_json(doc["config"]) != config:
                return                             # deleted, updated (its count started again) meanwhile
            now = self.clock.now_ms()
            new: Doc = {**doc, "fired": int(doc["fired"]) - 1, "updated": now}
            reason = (doc.get("status") or {}).get("reason") or {}
            following = config.next_after(now)
            revived = reason.get("kind") == "AUTO" and reason.get("message") == MAX_REACHED and following is not None
            if revived:
                new.update(status=alarm_feeds.status(True, now), next=following)
            try:
                await self._store.put(new)
                break
            except Conflict:
                continue
        if revived and following is not None:
            self._next[alarm_id] = following

    async def _disable(self, alarm_id: str, code: int, message: str) -> None:
        """Disable the alarm with the provider's reason: `message` as READ shows it, `code` the refused fire's."""
        while True:
            doc = await self._store.get(alarm_id)
            if doc is None:
                return
            now = self.clock.now_ms()
            reason = alarm_feeds.auto_disabled(message, code)
            try:
                await self._store.put({**doc, "status": alarm_feeds.status(False, now, reason), "updated": now})
                break
            except Conflict:
                continue
        self._next.pop(alarm_id, None)
        log.warning("alarms.disabled", alarm=alarm_id, status_code=code)

    async def _failure_record(self, identity: Identity, doc: Doc, config: Config, code: int, error: str) -> None:
        """A failed fire shows in the trigger's activations, as a fire that OpenWhisk refused would in its
        provider's logs (whisk has no provider logs to look at)."""
        if self._store_record is None:
            return
        now = self.clock.now_ms()
        activation_id = new_activation_id()
        await self._store_record(Activation(
            identity.namespace, doc["trigger"]["name"], identity.subject, activation_id, now, now,
            ActivationResponse.error(code, error),
            annotations=[{"key": "feed", "value": f"/whisk.system/alarms/{config.feed}"}]))

    async def _delete_after_fire(self, alarm_id: str, doc: Doc, rules: bool) -> None:
        """`deleteAfterFire`: remove the alarm, the trigger, and with `rules` the trigger's rules."""
        fresh = await self._store.get(alarm_id)
        if fresh is not None:
            try:
                await self._store.delete(alarm_id, fresh["_rev"])
            except (NotFound, Conflict):
                pass                       # deleted or changed by its owner meanwhile: theirs wins
        identity = await self._owner(doc)
        if identity is not None and self._remove_trigger is not None:
            try:
                await self._remove_trigger(identity, doc["trigger"]["namespace"], doc["trigger"]["name"], rules)
            except WhiskError as exc:
                log.warning("alarms.delete_after_fire.failed", alarm=alarm_id, error=str(exc))
