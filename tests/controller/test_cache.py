"""The entity cache (whisk/controller/cache.py) over a real in-memory store and the in-process bus: two caches stand
for two controllers sharing one store and one bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from whisk.controller.cache import EntityCache
from whisk.controller.subjects import Subjects
from whisk.entities.activation import Activation
from whisk.entities.errors import BackendUnavailable, Conflict
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore


class GatedStore(MemoryStore):
    """A MemoryStore whose `get` can be held open, to interleave a read with an invalidation."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def get(self, doc_id: str) -> Any:
        doc = await super().get(doc_id)
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
        return doc


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[GatedStore, EntityCache, EntityCache]]:
    async with GatedStore() as store, MemoryBus() as bus, \
            EntityCache(store, bus, instance_id="controller0") as a, \
            EntityCache(store, bus, instance_id="controller1") as b:
        yield store, a, b


def action(version: int, rev: str | None = None) -> dict[str, Any]:
    doc = {"_id": "guest/hello", "entityType": "action", "namespace": "guest", "name": "hello",
           "exec": {"kind": "python:3", "code": f"v{version}"}}
    if rev is not None:
        doc["_rev"] = rev
    return doc


async def code_seen(cache: EntityCache, code: str, deadline_s: float = 2.0) -> None:
    end = time.monotonic() + deadline_s
    while ((await cache.get("guest/hello")) or {}).get("exec", {}).get("code") != code:
        assert time.monotonic() < end, f"{code} not seen through {cache.instance_id}"
        await asyncio.sleep(0.005)


async def test_reads_come_from_the_cache(pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    store, a, b = pair
    rev = await a.put(action(1))
    assert (await b.get("guest/hello"))["exec"]["code"] == "v1"
    # Written behind the caches' backs (no invalidation): b keeps answering from its cache.
    await store.put(action(2, rev))
    misses = b.misses
    assert (await b.get("guest/hello"))["exec"]["code"] == "v1"
    assert b.misses == misses and b.hits >= 1


async def test_a_write_through_one_is_seen_through_the_other(pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    _, a, b = pair
    rev = await a.put(action(1))
    assert (await b.get("guest/hello"))["exec"]["code"] == "v1"
    rev = await a.put(action(2, rev))
    await code_seen(b, "v2")
    await b.put(action(3, (await b.get("guest/hello"))["_rev"]))
    await code_seen(a, "v3")
    await a.delete("guest/hello", (await a.get("guest/hello"))["_rev"])
    end = time.monotonic() + 2
    while await b.get("guest/hello") is not None:
        assert time.monotonic() < end, "the delete not seen through b"
        await asyncio.sleep(0.005)


async def test_callers_cannot_change_what_is_cached(pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    _, a, _ = pair
    await a.put(action(1))
    (await a.get("guest/hello"))["exec"]["code"] = "mutated"
    assert (await a.get("guest/hello"))["exec"]["code"] == "v1"


async def test_a_read_racing_an_invalidation_does_not_fill(pair: tuple[GatedStore, EntityCache,
                                                                        EntityCache]) -> None:
    store, a, b = pair
    await a.put(action(1))
    store.gate, store.entered = asyncio.Event(), asyncio.Event()
    read = asyncio.create_task(b.get("guest/hello"))
    await store.entered.wait()                   # b has read v1 from the store and not yet returned
    b.invalidate("guest/hello")                  # ... when a write elsewhere is announced
    store.gate.set()
    assert (await read)["exec"]["code"] == "v1"
    store.gate = None
    misses = b.misses
    await b.get("guest/hello")
    assert b.misses == misses + 1                # the racing read left nothing behind


async def test_a_conflict_drops_the_stale_entry(pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    store, _, b = pair
    rev = await store.put(action(1))
    stale = await b.get("guest/hello")
    await store.put(action(2, rev))              # not announced: b's entry is stale
    with pytest.raises(Conflict):
        await b.put(action(3, stale["_rev"]))
    assert (await b.get("guest/hello"))["exec"]["code"] == "v2"


async def test_absent_documents_are_not_cached(pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    store, _, b = pair
    assert await b.get("guest/hello") is None
    await store.put(action(1))                   # created without an announcement
    assert (await b.get("guest/hello"))["exec"]["code"] == "v1"


async def test_everything_else_passes_through(pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    store, a, _ = pair
    await a.put_activation(Activation("guest", "hello", "guest", "abc", 1, 2))
    assert (await store.get_activation("guest", "abc"))["activationId"] == "abc"


async def test_a_built_entity_is_made_once_per_version_and_never_from_what_a_caller_changed(
        pair: tuple[GatedStore, EntityCache, EntityCache]) -> None:
    _, a, b = pair
    builds: list[str] = []

    def build(doc: dict[str, Any]) -> tuple[str, str]:
        if doc["entityType"] != "action":
            raise Conflict("not an action")
        builds.append(doc["_rev"])
        return ("built", doc["exec"]["code"])

    rev = await a.put(action(1))
    assert await b.get_built("guest/hello", build) == ("built", "v1")   # the miss fills the cache
    first = await b.get_built("guest/hello", build)
    assert first is await b.get_built("guest/hello", build) and len(builds) == 2    # then one build, kept
    (await b.get("guest/hello"))["exec"]["code"] = "mutated"            # a caller's copy, not the cached one
    assert await b.get_built("guest/hello", lambda doc: doc["exec"]["code"]) == "v1"
    await a.put(action(2, rev))                                         # a new version: built again
    end = time.monotonic() + 2
    while await b.get_built("guest/hello", build) != ("built", "v2"):
        assert time.monotonic() < end, "the update not seen through b"
        await asyncio.sleep(0.005)
    await a.put({**action(3), "_id": "guest/t", "entityType": "trigger"})
    for _ in range(2):                                                  # a refusal is not kept
        with pytest.raises(Conflict):
            await a.get_built("guest/t", build)
    assert await a.get_built("guest/absent", build) is None


class LargeActions(MemoryStore):
    """Every id is an action whose code is one shared 16 MB string (the test holds it once; a cache charges each
    copy), and reads are counted."""

    CODE = "#" * (16 * 1024 * 1024)

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, doc_id: str) -> Any:
        self.reads += 1
        return {"_id": doc_id, "entityType": "action", "exec": {"kind": "python:3", "code": self.CODE}}


async def test_large_documents_are_held_within_a_byte_budget() -> None:
    # One tenant reading many large actions once each must not make the controller hold them all for the entries'
    # five minutes: the count bound (10,000) alone allowed 10,000 x 48 MB.
    async with LargeActions() as store, MemoryBus() as bus, EntityCache(store, bus, instance_id="c0") as cache:
        names = [f"guest/big{i}" for i in range(12)]        # 192 MB of code, over the default 128 MB
        for name in names:
            await cache.get(name)
        assert cache.held_bytes <= 128 * 1024 * 1024
        reads = store.reads
        await cache.get(names[-1])                          # the most recently used is still held
        assert store.reads == reads
        await cache.get(names[0])                           # the least recently used went first
        assert store.reads == reads + 1
    async with LargeActions() as store, MemoryBus() as bus, \
            EntityCache(store, bus, instance_id="c0", max_bytes=8 * 1024 * 1024) as small:
        await small.get("guest/big")                        # larger than the whole budget: never kept
        await small.get("guest/big")
        assert store.reads == 2 and small.held_bytes == 0


async def test_a_namespace_deleted_behind_the_caches_back_is_forgotten() -> None:
    # `whisk admin user delete` writes to the store alone: no message on the topic. A published package's action,
    # cached by a controller for another tenant's invokes, must not stay readable (and run) for the entries' five
    # minutes; the owner is looked up again after `owner_check_s` (30 s in the servers).
    async with GatedStore() as store, MemoryBus() as bus, \
            EntityCache(store, bus, instance_id="controller0", owner_check_s=0.05) as cache:
        admin = Subjects(store)                  # the admin command's own, over the plain store
        await admin.create("tenant")
        shared = {"_id": "tenant/pkg/act", "entityType": "action", "namespace": "tenant/pkg", "name": "act",
                  "exec": {"kind": "python:3", "code": "old"}}
        await cache.put(shared)
        assert (await cache.get("tenant/pkg/act"))["exec"]["code"] == "old"
        assert (await cache.get_built("tenant/pkg/act", dict))["exec"]["code"] == "old"
        await admin.delete("tenant")
        end = time.monotonic() + 2
        while await cache.get("tenant/pkg/act") is not None or await cache.get_built("tenant/pkg/act", dict):
            assert time.monotonic() < end, "the deleted namespace's action is still served"
            await asyncio.sleep(0.01)

        # Made again with the uuid it had (`whisk admin user create --api-key`) between two looks: a new key.
        uuid, _ = await admin.create("tenant")
        await store.put({**shared, "exec": {"kind": "python:3", "code": "older"}})
        assert (await cache.get("tenant/pkg/act"))["exec"]["code"] == "older"
        await asyncio.sleep(0.06)
        await cache.get("tenant/pkg/act")                    # the look is due: made beside this hit
        await asyncio.sleep(0.01)
        assert (await cache.get("tenant/pkg/act"))["exec"]["code"] == "older"    # held, under the new owner
        await admin.delete("tenant")
        await admin.create("tenant", uuid=uuid)
        end = time.monotonic() + 2
        while await cache.get("tenant/pkg/act") is not None:
            assert time.monotonic() < end, "the old owner's action is served to the namespace made again"
            await asyncio.sleep(0.01)


class SubjectsAway(GatedStore):
    async def find_namespace_by_name(self, namespace: str) -> Any:
        raise BackendUnavailable("The database is unavailable.")


async def test_what_is_held_is_served_while_the_owner_cannot_be_looked_up() -> None:
    async with SubjectsAway() as store, MemoryBus() as bus, \
            EntityCache(store, bus, instance_id="controller0", owner_check_s=0.01) as cache:
        await cache.put(action(1))
        assert (await cache.get("guest/hello"))["exec"]["code"] == "v1"
        misses = cache.misses
        for _ in range(3):
            await asyncio.sleep(0.02)
            assert (await cache.get("guest/hello"))["exec"]["code"] == "v1"
        assert cache.misses == misses


class BrokerAway(MemoryBus):
    """The in-process bus, refusing every message while `away` (a send past Kafka's request timeout)."""

    away = False

    async def send(self, topic: str, message: Any) -> None:
        if self.away:
            raise BackendUnavailable("kafka: cannot send to cacheInvalidation: KafkaTimeoutError")
        await super().send(topic, message)


async def test_an_invalidation_the_bus_refused_is_sent_once_it_is_back() -> None:
    # Written through a while the broker was away: b must not keep v1 for its entries' five minutes once the
    # broker is back.
    async with GatedStore() as store, BrokerAway() as bus, \
            EntityCache(store, bus, instance_id="controller0", resend_s=0.02) as a, \
            EntityCache(store, bus, instance_id="controller1") as b:
        rev = await a.put(action(1))
        assert (await b.get("guest/hello"))["exec"]["code"] == "v1"
        bus.away = True
        await a.put(action(2, rev))              # stored; its announcement refused
        await asyncio.sleep(0.1)
        assert (await b.get("guest/hello"))["exec"]["code"] == "v1"
        bus.away = False
        await code_seen(b, "v2")
