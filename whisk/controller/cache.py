"""The controller's entity cache (OpenWhisk's MultipleReadersSingleWriterCache with RemoteCacheInvalidation,
docs/openwhisk.md §5.1): a Store that keeps the entity documents it has read (`get(doc_id)`) and forgets one when it is
written or deleted, here or through any other controller, told over the `cacheInvalidation` topic as
`{"key": {"mainId": doc_id}, "instanceId": "controller0"}`.

Correctness: a write through this cache drops the key and announces it before the write returns, so a caller that
saw the write answered sees the new version through every controller as soon as their feeds deliver the message.
A read that raced an invalidation (it began before the invalidation and ends after) does not fill the cache. Absent
documents are not cached (a create elsewhere must be seen at once), entries expire after `ttl_s` in case an
invalidation is lost, and a Conflict on write drops the key (the cached revision was stale). An invalidation the
bus refuses (the broker away) is sent again every `resend_s` in the background until the bus takes it, so the
others are stale as long as the broker is away, not for their entries' five minutes. Everything else
passes through to the store untouched.

Namespaces deleted or made again by `whisk admin` (another process, writing to the store alone, with no message on
the topic): before the cache serves or keeps a document, the owner (uuid and key hash) of its root namespace has
been looked up in the last `owner_check_s` (30 s, as long as the servers' authentication cache holds a key); a
different owner, or none where there was one, drops everything held of that namespace. Without it a deleted
namespace's published packages, bindings into them and the actions a rule of another namespace runs stayed
readable and ran, old code, for the entries' five minutes.

Size: at most `max_entries` documents and `max_bytes` of them (`json_value.held_size`), least recently used first
out; a document larger than `max_bytes` is not kept. The count alone let one tenant hold the platform's memory: an
action's code may be 48 MB, so reading a few hundred large actions once each kept gigabytes for the entries' five
minutes (OpenWhisk's cache holds its values softly, so the JVM drops them under memory pressure).

The invoker does not use this cache: its action fetch is keyed by the revision in the activation message, which is
exact without any invalidation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from whisk.entities.errors import Conflict, WhiskError
from whisk.entities.json_value import copy_of, held_size
from whisk.messages import CACHE_INVALIDATION_TOPIC
from whisk.messaging.base import Bus, encoded
from whisk.store.base import Doc, Store

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_BYTES = 128 * 1024 * 1024       # what the cached documents may hold together (module docstring)
OWNER_CHECK_S = 30.0                # how long a namespace's owner, once looked up, is trusted (module docstring)
UNKNOWN_OWNER = "?"                 # the store could not say (no uuid has this form)


class EntityCache:
    def __init__(self, store: Store, bus: Bus, *, instance_id: str, max_entries: int = 10_000,
                 max_bytes: int = MAX_BYTES, ttl_s: float = 300.0, owner_check_s: float = OWNER_CHECK_S,
                 resend_s: float = 1.0) -> None:
        self._store = store
        self._bus = bus
        self.instance_id = instance_id
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.held_bytes = 0                       # held_size of the documents in `_entries`
        self._ttl_s = ttl_s
        # doc id -> (expiry, doc, what `get_built` made of this version of it, by builder, the doc's held_size)
        self._entries: OrderedDict[str, tuple[float, Doc, dict[object, Any], int]] = OrderedDict()
        self._generation = 0                      # bumped by every invalidation, to spot racing reads
        self._invalidated_at: dict[str, int] = {}  # doc id -> generation of its last invalidation
        self._floor = 0                           # reads begun before this generation never fill the cache
        self._owner_check_s = owner_check_s
        # root namespace -> (when to look its owner up again, the owner's "uuid:key hash" or None: no such namespace)
        self._owners: dict[str, tuple[float, str | None]] = {}
        self._checks: dict[str, asyncio.Task[None]] = {}   # owner look-ups under way beside a hit
        self._unsent: dict[str, float] = {}       # doc id -> until when to send its invalidation again
        self._resending: asyncio.Task[None] | None = None
        self._resend_s = resend_s
        self._feed: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0

    async def __aenter__(self) -> EntityCache:
        await self._bus.ensure_topic(CACHE_INVALIDATION_TOPIC)
        self._feed = asyncio.create_task(self._listen(), name="entity-cache-invalidation")
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [*self._checks.values(), *(t for t in (self._feed, self._resending) if t is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._entries.clear()
        self.held_bytes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)         # activations, subjects, listing: not cached

    # -- cached reads, announced writes ------------------------------------------------------------------------

    async def get(self, doc_id: str) -> Doc | None:
        now = time.monotonic()
        root = doc_id.partition("/")[0]
        owner = self._owners.get(root)
        entry = self._entries.get(doc_id)
        if entry is not None and entry[0] > now:
            if owner is None or owner[0] <= now:
                self._check_owner_soon(root)
            self._entries.move_to_end(doc_id)
            self.hits += 1
            return copy_of(entry[1])
        if owner is None or owner[0] <= now:
            await self._check_owner(root)         # a miss reads the store anyway
        self.misses += 1
        generation = self._generation
        doc = await self._store.get(doc_id)
        if doc is not None and generation >= self._floor and self._invalidated_at.get(doc_id, -1) <= generation:
            self._keep(doc_id, doc)
        return doc

    def _keep(self, doc_id: str, doc: Doc) -> None:
        size = held_size(doc)
        self._drop(doc_id)
        if size > self._max_bytes:
            return
        self._entries[doc_id] = (time.monotonic() + self._ttl_s, copy_of(doc), {}, size)
        self.held_bytes += size
        while len(self._entries) > self._max_entries or self.held_bytes > self._max_bytes:
            self.held_bytes -= self._entries.popitem(last=False)[1][3]

    def _drop(self, doc_id: str) -> None:
        entry = self._entries.pop(doc_id, None)
        if entry is not None:
            self.held_bytes -= entry[3]

    async def get_built(self, doc_id: str, build: Callable[[Doc], T]) -> T | None:
        """`build(doc)` (a typed entity, immutable), kept beside the cached copy: each version of a document is
        built once by each builder, not on every read (for an invoke, the copy and the build were 6 % of the
        loop's time). None when the document is absent; what `build` raises is raised every time."""
        now = time.monotonic()
        entry = self._entries.get(doc_id)
        if entry is not None and entry[0] > now:
            root = doc_id.partition("/")[0]
            owner = self._owners.get(root)
            if owner is None or owner[0] <= now:
                self._check_owner_soon(root)
            self._entries.move_to_end(doc_id)
            self.hits += 1
            built = entry[2].get(build)
            if built is None:
                built = entry[2][build] = build(copy_of(entry[1]))
            return built
        doc = await self.get(doc_id)
        return None if doc is None else build(doc)

    async def put(self, doc: Doc) -> str:
        doc_id = doc["_id"]
        try:
            return await self._store.put(doc)
        except Conflict:
            self.invalidate(doc_id)               # what we hold is older than the store's
            raise
        finally:
            await self._announce(doc_id)

    async def delete(self, doc_id: str, rev: str) -> None:
        try:
            await self._store.delete(doc_id, rev)
        finally:
            await self._announce(doc_id)

    def invalidate(self, doc_id: str) -> None:
        self._generation += 1
        if len(self._invalidated_at) >= 4 * self._max_entries:
            self._invalidated_at.clear()          # forget the marks, and with them every read begun until now
            self._floor = self._generation
        self._invalidated_at[doc_id] = self._generation
        self._drop(doc_id)

    def _check_owner_soon(self, namespace: str) -> None:
        """`_check_owner` beside a hit, which is served meanwhile: a store that is away (or a link that is cut)
        must not hold up what the cache can serve."""
        if namespace not in self._checks:
            task = asyncio.create_task(self._check_owner(namespace), name="entity-cache-owner-check")
            self._checks[namespace] = task
            task.add_done_callback(lambda _: self._checks.pop(namespace, None))

    async def _check_owner(self, namespace: str) -> None:
        """Look the owner of a root namespace up; a change since the last look forgets what is held of it. While
        the store cannot say, what is held is served, and it is asked again after `owner_check_s`; what is kept
        meanwhile goes at the next answer."""
        before = self._owners.get(namespace)
        try:
            found = await self._store.find_namespace_by_name(namespace)
            # The key's hash too: a namespace made again with the uuid it had (`--api-key`) has a new salt.
            uuid = f"{found[1].get('uuid')}:{found[1].get('key_hash')}" if found is not None else None
        except WhiskError as exc:
            log.warning("cache.owner_check.failed", namespace=namespace, error=str(exc))
            uuid = UNKNOWN_OWNER
        if before is not None and uuid == UNKNOWN_OWNER:
            uuid = before[1]
        elif before is not None and before[1] != uuid:
            self.forget_namespace(namespace)
        if len(self._owners) >= 4 * self._max_entries and namespace not in self._owners:
            # The owners are forgotten only with everything kept under them, and every read under way.
            self._owners.clear()
            self._entries.clear()
            self.held_bytes = 0
            self._generation += 1
            self._floor = self._generation
        self._owners[namespace] = (time.monotonic() + self._owner_check_s, uuid)

    def forget_namespace(self, namespace: str) -> None:
        """Drop everything held of a root namespace, and let no read under way fill the cache: its owner changed
        (deleted and made again elsewhere), so nothing of the old owner's may be served."""
        prefix = namespace + "/"
        for doc_id in [k for k in self._entries if k.startswith(prefix)]:
            self._drop(doc_id)
        self._generation += 1
        self._floor = self._generation
        log.info("cache.namespace_forgotten", namespace=namespace)

    # -- the topic ---------------------------------------------------------------------------------------------

    async def _announce(self, doc_id: str) -> None:
        self.invalidate(doc_id)
        try:
            await self._send(doc_id)
        except WhiskError as exc:
            # The others keep the old version until the bus takes the message: sent again in the background (the
            # write is answered), rather than left to their entries' five minutes.
            log.warning("cache.invalidation.not_sent", doc_id=doc_id, error=str(exc))
            self._unsent.pop(doc_id, None)
            self._unsent[doc_id] = time.monotonic() + self._ttl_s    # past it, what the others held has expired
            while len(self._unsent) > self._max_entries:
                self._unsent.pop(next(iter(self._unsent)))
            if self._resending is None or self._resending.done():
                self._resending = asyncio.create_task(self._resend(), name="entity-cache-invalidation-resend")

    async def _send(self, doc_id: str) -> None:
        message = json.dumps({"key": {"mainId": doc_id}, "instanceId": self.instance_id}).encode()
        await self._bus.send(CACHE_INVALIDATION_TOPIC, message)

    async def _resend(self) -> None:
        """Send the invalidations the bus refused, oldest first, until it takes them (invalidations are idempotent,
        so one sent twice or late does no harm)."""
        while self._unsent:
            await asyncio.sleep(self._resend_s)
            for doc_id, deadline in list(self._unsent.items()):
                if deadline > time.monotonic():
                    try:
                        await self._send(doc_id)
                    except WhiskError:
                        break                     # still away: the rest wait for the next round
                    log.info("cache.invalidation.sent_late", doc_id=doc_id)
                if self._unsent.get(doc_id) == deadline:
                    del self._unsent[doc_id]

    async def _listen(self) -> None:
        group = f"{CACHE_INVALIDATION_TOPIC}-{self.instance_id}"
        async for data in self._bus.consume(CACHE_INVALIDATION_TOPIC, group):
            try:
                message = json.loads(encoded(data))
                key = message["key"]
                doc_id = key["mainId"] if isinstance(key, dict) else str(key)
                if not isinstance(doc_id, str):
                    raise TypeError(f"mainId is {type(doc_id).__name__}")
            except (ValueError, KeyError, TypeError, RecursionError) as exc:     # nested too deep: RecursionError
                log.error("cache.invalidation.malformed", error=str(exc))
                continue
            if message.get("instanceId") != self.instance_id:
                self.invalidate(doc_id)
