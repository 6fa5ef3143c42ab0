"""The alarms feeds' lifecycle (OpenWhisk's feed protocol: `lifecycleEvent` CREATE, READ, UPDATE, DELETE, and PAUSE,
UNPAUSE) over alarm documents in the store. The controller answers invocations of `/whisk.system/alarms/alarm`,
`/once` and `/interval` with `Feeds.handle` (`Alarms.natives` in `whisk.alarms.service`); the results and messages
are the alarms provider's: `{"status": "success"}`, READ's `{"config": ..., "status": ...}`, and `{"error": ...}` on
a refusal.

An alarm document (`entityType: "alarm"`, id `alarm:<namespace>/<trigger>`) keeps the checked configuration, who
owns it (the namespace's uuid and the hash of the key that created it, never the key), its status (active, or
why not) and `next`, the epoch ms of its next tick; the scheduler (`whisk.alarms.scheduler`) claims each tick by
a conditional write of that document.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from whisk.alarms import schedule
from whisk.alarms.schedule import Config, FeedError
from whisk.controller.entities import Entities
from whisk.controller.subjects import Subjects, parse_api_key
from whisk.entities.errors import Conflict, Forbidden, Invalid, NotFound
from whisk.entities.identity import Identity
from whisk.entities.names import DEFAULT_NAMESPACE, EntityPath
from whisk.store.base import Doc, Store

log = structlog.get_logger(__name__)

ENTITY_TYPE = "alarm"
# Alarm documents live beside the entities, under a namespace no entity can have (names hold no ':'), so that one
# listing finds them all and no REST path reaches them.
NAMESPACE = "whisk.system/alarms"
# OpenWhisk's feed protocol names PAUSE and UNPAUSE (its feeds documentation); RESUME is whisk's older name.
EVENTS = ("CREATE", "READ", "UPDATE", "DELETE", "PAUSE", "UNPAUSE", "RESUME")
AUTH_FAILED = "Trigger authentication request failed."


def doc_id(namespace: str, trigger: str) -> str:
    return f"alarm:{namespace}/{trigger}"


def not_found(namespace: str, name: str) -> str:
    """The provider's answer when a trigger has no alarm: the trigger named with its namespace."""
    return f"could not find trigger /{namespace}/{name} in the database"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(active: bool, now_ms: int, reason: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"active": active, "dateChanged": now_ms}
    if reason is not None:
        out["reason"] = reason
    return out


def auto_disabled(message: str, code: int | None = None) -> dict[str, Any]:
    """The reason of an alarm the platform disabled, as the provider records it."""
    return {"kind": "AUTO", "statusCode": code, "message": message}


def initial_status(config: Config, following: int | None, now_ms: int) -> dict[str, Any]:
    """Active, unless the schedule has no time left (`following` is None: a cron pattern like "0 0 30 2 *", a stop
    date before the next tick): then disabled at once with the reason a tick would give, instead of an active alarm
    that never fires."""
    if following is not None:
        return status(True, now_ms)
    return status(False, now_ms, auto_disabled(schedule.no_tick_left(config)))


def parse_trigger_name(text: Any) -> tuple[str, str]:
    """The provider's parseQName: "/ns/name" → (ns, name); a bare name is in the default namespace `_`."""
    if not isinstance(text, str) or not text:
        raise FeedError("no trigger name parameter was provided")
    if text.startswith("/"):
        parts = text.split("/")
        return parts[1], "/".join(parts[2:])
    return DEFAULT_NAMESPACE, text


class Feeds:
    def __init__(self, store: Store, subjects: Subjects, entities: Entities, now_ms: Callable[[], int],
                 changed: Callable[[], None] = lambda: None) -> None:
        self._store = store
        self._subjects = subjects
        self._entities = entities
        self._now_ms = now_ms
        self._changed = changed          # wakes the scheduler: a new or changed alarm may fire sooner

    async def handle(self, feed: str, caller: Identity, params: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(success, result) of one feed invocation; a refusal is `(False, {"error": message})`."""
        event = str(params.get("lifecycleEvent", "")).strip().upper()
        try:
            if event not in EVENTS:
                raise FeedError("unsupported lifecycleEvent")
            namespace, name = parse_trigger_name(params.get("triggerName"))
            owner = await self._owner(caller, params.get("authKey"))
            namespace = owner.namespace if namespace == DEFAULT_NAMESPACE else namespace
            result = await getattr(self, f"_{event.lower()}")(feed, owner, namespace, name, params)
        except FeedError as exc:
            log.info("alarms.feed.refused", feed=feed, lifecycle=event, error=str(exc))
            return False, {"error": str(exc)}
        log.info("alarms.feed.done", feed=feed, lifecycle=event, trigger=f"{namespace}/{name}")
        return True, result

    async def _owner(self, caller: Identity, auth_key: Any) -> Identity:
        """Who the alarm acts for: the `authKey` the client sends (as the provider uses it), else the caller."""
        if auth_key is None or auth_key == "":
            return caller
        try:
            uuid, key = parse_api_key(str(auth_key))
        except Invalid:
            raise FeedError(AUTH_FAILED, 401) from None
        identity = await self._subjects.authenticate(uuid, key)
        if identity is None:
            raise FeedError(AUTH_FAILED, 401)
        return identity

    async def _check_trigger(self, owner: Identity, namespace: str, name: str) -> None:
        """The provider's verifyTriggerAuth: the owner may read the trigger."""
        try:
            await self._entities.triggers.get(owner, EntityPath.of(namespace), name, dict)
        except (NotFound, Forbidden, Invalid) as exc:
            raise FeedError(AUTH_FAILED, {NotFound: 404, Forbidden: 403}.get(type(exc), 400)) from None

    async def _alarm(self, owner: Identity, namespace: str, name: str) -> Doc:
        if namespace != owner.namespace:
            raise FeedError(AUTH_FAILED, 403)
        doc = await self._store.get(doc_id(namespace, name))
        # An alarm the namespace's previous owner made (deleted with `whisk admin`, made again under the same name,
        # even with the same uuid) is not this owner's: its payload and schedule are the old tenant's. One made
        # before `whisk admin user create --revoke` is not either, as OpenWhisk's provider's stored key stops working.
        made_by = (doc or {}).get("owner") or {}
        found = await self._store.find_namespace(owner.uuid) if made_by.get("uuid") == owner.uuid else None
        if doc is None or found is None or found[1].get("key_hash", "") != made_by.get("keyHash"):
            raise FeedError(not_found(namespace, name), 404)
        return doc

    async def _create(self, feed: str, owner: Identity, namespace: str, name: str, params: dict[str, Any]) -> Doc:
        now = self._now_ms()
        config = schedule.create(feed, params, now)
        await self._check_trigger(owner, namespace, name)
        found = await self._store.find_namespace(owner.uuid)
        key_hash = found[1].get("key_hash", "") if found is not None else ""
        following = config.next_after(now)
        doc: Doc = {"_id": doc_id(namespace, name), "entityType": ENTITY_TYPE, "namespace": NAMESPACE,
                    "name": f"{namespace}/{name}", "updated": now,
                    "trigger": {"namespace": namespace, "name": name},
                    "owner": {"uuid": owner.uuid, "keyHash": key_hash},
                    "config": config.to_json(), "status": initial_status(config, following, now),
                    "next": following, "fired": 0}
        # A trigger has one feed: a new CREATE replaces what an earlier one left (the trigger was checked above).
        while True:
            old = await self._store.get(doc["_id"])
            if old is not None:
                doc["_rev"] = old["_rev"]
            try:
                await self._store.put(doc)
                break
            except Conflict:
                doc.pop("_rev", None)
        self._changed()
        return {"status": "success"}

    async def _read(self, feed: str, owner: Identity, namespace: str, name: str, params: dict[str, Any]) -> Doc:
        doc = await self._alarm(owner, namespace, name)
        config = Config.from_json(doc["config"])
        state = doc.get("status") or {}
        changed = int(state.get("dateChanged", 0))
        view: Doc = {"config": {"name": name, "namespace": namespace, **config.read_view()},
                     "status": {"active": bool(state.get("active")), "dateChanged": changed,
                                "dateChangedISO": iso(changed)}}
        if state.get("reason") is not None:
            view["status"]["reason"] = state["reason"]
        if doc.get("next") is not None and state.get("active") and int(doc["next"]) <= schedule.MAX_DATE_MS:
            view["status"]["nextFire"] = iso(int(doc["next"]))         # beyond the provider: when it fires next
        return view

    async def _update(self, feed: str, owner: Identity, namespace: str, name: str, params: dict[str, Any]) -> Doc:
        await self._check_trigger(owner, namespace, name)

        def change(doc: Doc, now: int) -> Doc:
            reason = (doc.get("status") or {}).get("reason") or {}
            if reason.get("kind") == "ADMIN":
                raise FeedError(f"{params.get('triggerName')} cannot be updated because it was disabled by an "
                                "admin.  Please contact support for further assistance")
            config = schedule.update(Config.from_json(doc["config"]), params, now)
            following = config.next_after(now)
            # The count of fires starts again, as the provider's (it schedules an updated alarm anew, with all of
            # its maxTriggers left).
            return {**doc, "config": config.to_json(), "status": initial_status(config, following, now),
                    "next": following, "fired": 0}

        await self._rewrite(owner, namespace, name, change)
        return {"status": "success"}

    async def _delete(self, feed: str, owner: Identity, namespace: str, name: str, params: dict[str, Any]) -> Doc:
        while True:
            doc = await self._alarm(owner, namespace, name)
            try:
                await self._store.delete(doc["_id"], doc["_rev"])
                break
            except NotFound:
                raise FeedError(not_found(namespace, name), 404) from None
            except Conflict:
                continue                 # a tick was claimed meanwhile: delete the newer revision
        self._changed()
        return {"status": "success"}

    async def _pause(self, feed: str, owner: Identity, namespace: str, name: str, params: dict[str, Any]) -> Doc:
        def change(doc: Doc, now: int) -> Doc:
            return {**doc, "status": status(False, now, {"kind": "USER", "message": "Paused by the trigger owner"})}

        await self._rewrite(owner, namespace, name, change)
        return {"status": "success"}

    async def _resume(self, feed: str, owner: Identity, namespace: str, name: str, params: dict[str, Any]) -> Doc:
        await self._check_trigger(owner, namespace, name)

        def change(doc: Doc, now: int) -> Doc:
            config = Config.from_json(doc["config"])
            following = config.next_after(now)
            if following is None or config.reached_max(int(doc.get("fired", 0))):
                raise FeedError("the alarm has no scheduled fire left to resume")
            return {**doc, "status": status(True, now), "next": following}

        await self._rewrite(owner, namespace, name, change)
        return {"status": "success"}

    _unpause = _resume

    async def _rewrite(self, owner: Identity, namespace: str, name: str, change: Callable[[Doc, int], Doc]) -> None:
        """Read, change and write back the alarm, again from a fresh read when a tick's claim came in between."""
        while True:
            doc = await self._alarm(owner, namespace, name)
            now = self._now_ms()
            new = change(doc, now)
            new["updated"] = now
            try:
                await self._store.put(new)
                break
            except Conflict:
                continue
        self._changed()
