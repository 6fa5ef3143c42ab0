"""The invoker's copy of action documents: fetched once per revision, and kept serving while the store is away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from whisk.entities.errors import BackendUnavailable
from whisk.invoker.service import Invoker
from whisk.messages import ActivationMessage
from whisk.store.memory import MemoryStore


class SwitchedStore(MemoryStore):
    """A real memory store whose reads can be cut off, as when CouchDB is unreachable; counts the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.away = False
        self.reads = 0

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        self.reads += 1
        if self.away:
            raise BackendUnavailable("couchdb: Cannot connect")
        return await super().get(doc_id)


def message(revision: str | None) -> ActivationMessage:
    return ActivationMessage(transid=["t", 0], action={"path": "guest", "name": "a"}, revision=revision,
                             user={}, activation_id="0" * 32, root_controller={"asString": "0"}, blocking=True)


async def put(store: SwitchedStore, code: str) -> str:
    current = await store.get("guest/a")
    doc = {"_id": "guest/a", "entityType": "action", "namespace": "guest", "name": "a",
           "exec": {"kind": "python:3", "code": code}}
    if current is not None:
        doc["_rev"] = current["_rev"]
    return await store.put(doc)


@pytest.fixture
async def store() -> AsyncIterator[SwitchedStore]:
    async with SwitchedStore() as opened:
        yield opened


def invoker(store: SwitchedStore) -> Invoker:
    return Invoker(instance=0, bus=None, store=store, pool=None, image_of=lambda _: "", api_host="",  # type: ignore[arg-type]
                   user_memory_mb=1024, max_intake=1)


async def test_one_fetch_per_revision_and_the_newest_for_no_revision(store: SwitchedStore) -> None:
    first = await put(store, "v1")
    inv = invoker(store)
    reads = store.reads
    assert (await inv._action(message(first)))[0]["_rev"] == first
    assert (await inv._action(message(first)))[0]["_rev"] == first
    assert (await inv._action(message(None)))[0]["_rev"] == first       # a health test action: no revision
    assert store.reads == reads + 1


async def test_store_away_a_stale_revision_is_served_from_the_newest_copy(store: SwitchedStore) -> None:
    old = await put(store, "v1")
    new = await put(store, "v2")
    inv = invoker(store)
    await inv._action(message(new))
    store.away = True
    # A controller that has not seen the update yet still names the old revision: the held copy answers.
    assert (await inv._action(message(old)))[0]["exec"]["code"] == "v2"
    assert (await inv._action(message(None)))[0]["exec"]["code"] == "v2"


async def test_store_away_a_newer_revision_than_held_still_fails(store: SwitchedStore) -> None:
    old = await put(store, "v1")
    inv = invoker(store)
    await inv._action(message(old))
    new = await put(store, "v2")
    store.away = True
    with pytest.raises(BackendUnavailable):
        await inv._action(message(new))                               # never older code than asked for


class LargeActions(SwitchedStore):
    """Every id is an action whose code is one shared 16 MB string (held once here; the invoker charges each
    document)."""

    CODE = "#" * (16 * 1024 * 1024)

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        self.reads += 1
        return {"_id": doc_id, "_rev": "1-a", "entityType": "action", "exec": {"kind": "python:3", "code": self.CODE}}


def message_for(name: str) -> ActivationMessage:
    return ActivationMessage(transid=["t", 0], action={"path": "guest", "name": name}, revision="1-a",
                             user={}, activation_id="0" * 32, root_controller={"asString": "0"}, blocking=True)


async def test_large_actions_are_held_within_a_byte_budget() -> None:
    # One tenant running many large actions once each must not make the invoker hold them all: a count of 4,096
    # alone allowed 4,096 x 48 MB.
    async with LargeActions() as store:
        inv = invoker(store)
        for i in range(12):                                   # 192 MB of code, over the 128 MB held at most
            await inv._action(message_for(f"big{i}"))
        assert sum(len(doc["exec"]["code"]) for doc, _ in inv._actions.values()) <= 128 * 1024 * 1024
        assert inv._actions_bytes <= 128 * 1024 * 1024
        reads = store.reads
        await inv._action(message_for("big11"))               # the latest is held
        assert store.reads == reads
