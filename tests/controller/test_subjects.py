"""Subjects over a real in-memory store: create/delete/list, hashed keys, authentication and its cache, bootstrap."""

from __future__ import annotations

import pytest

from whisk.controller.subjects import GUEST_KEY, GUEST_UUID, Subjects
from whisk.entities.errors import Conflict, Invalid
from whisk.store.memory import MemoryStore


async def test_create_authenticate_list_delete() -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store)
        uuid, key = await subjects.create("team1")
        assert len(key) == 64
        identity = await subjects.authenticate(uuid, key)
        assert identity is not None and identity.namespace == "team1" and identity.subject == "team1"
        assert identity.api_key == f"{uuid}:{key}" and identity.limits.invocations_per_minute == 60
        assert await subjects.authenticate(uuid, key[:-1] + ("a" if key[-1] != "a" else "b")) is None
        assert await subjects.authenticate(uuid, "short") is None
        doc = await store.get_subject("team1")
        assert key not in str(doc) and doc["namespaces"][0]["key_hash"]
        assert await subjects.list() == [{"subject": "team1", "namespace": "team1", "uuid": uuid, "blocked": False}]
        with pytest.raises(Conflict):
            await subjects.create("team1")
        with pytest.raises(Conflict):
            await subjects.create("team2", uuid=uuid)
        assert await subjects.delete("team1") == {"entities": 0, "activations": 0}
        assert await subjects.authenticate(uuid, key) is None          # this process dropped its cache entry
        assert await subjects.delete("team1") is None
        assert await store.get_subject("team1") is None


async def test_one_subject_many_namespaces_and_given_keys() -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store)
        key = "k" * 64
        u1, k1 = await subjects.create("ns-a", subject="alice", key=key)
        u2, k2 = await subjects.create("ns-b", subject="alice")
        assert k1 == key
        assert {r["namespace"] for r in await subjects.list()} == {"ns-a", "ns-b"}
        await subjects.delete("ns-a")
        assert await subjects.authenticate(u1, k1) is None
        assert (await subjects.authenticate(u2, k2)).namespace == "ns-b"
        assert (await store.get_subject("alice"))["namespaces"][0]["name"] == "ns-b"
        for bad in ({"namespace": "bad name!"}, {"namespace": "ok", "subject": "abc"},
                    {"namespace": "ok", "key": "short"}, {"namespace": "ok", "uuid": "not-a-uuid"}):
            with pytest.raises(Invalid):
                await subjects.create(**bad)


async def test_bootstrap_is_idempotent_and_limits_apply() -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store)
        await subjects.bootstrap()
        await subjects.bootstrap()
        assert [r["namespace"] for r in await subjects.list()] == ["guest", "whisk.system"]
        await store.put_limits("guest", {"invocationsPerMinute": 7, "maxActionMemory": 4096})
        guest = await subjects.authenticate(GUEST_UUID, GUEST_KEY)
        assert guest is not None and guest.limits.invocations_per_minute == 7 and guest.limits.max_memory == 512
        owner = await subjects.identity_of("guest")
        assert owner is not None and owner.key is None and owner.uuid == GUEST_UUID
        assert await subjects.identity_of("nobody") is None


async def test_blocked_subjects_do_not_authenticate() -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store, cache_ttl_s=0)
        uuid, key = await subjects.create("blocked-ns")
        doc = await store.get_subject("blocked-ns")
        await store.put_subject({**doc, "blocked": True})
        assert await subjects.authenticate(uuid, key) is None


async def test_no_new_namespace_for_a_blocked_subject() -> None:
    """wskadmin refuses to add a namespace to a blocked subject ("The subject you want to edit is blocked"): the key
    it printed would open nothing, and unblocking the subject later would make it work unnoticed."""
    async with MemoryStore() as store:
        subjects = Subjects(store)
        await subjects.create("ns-a", subject="alice")
        await subjects.set_blocked("alice", True)
        with pytest.raises(Conflict, match="The subject you want to edit is blocked"):
            await subjects.create("ns-b", subject="alice")
        assert [r["namespace"] for r in await subjects.list()] == ["ns-a"]
        await subjects.set_blocked("alice", False)
        await subjects.create("ns-b", subject="alice")


async def test_a_given_uuid_is_stored_in_its_one_spelling() -> None:
    """A uuid is one value whatever its spelling (upper case, braces, no hyphens): stored as given, a second spelling
    of a uuid in use passed the "already in use" check, and the namespace's uuid was not the one clients and the
    stores' views compare. It is kept in the canonical form, as wskadmin does."""
    async with MemoryStore() as store:
        subjects = Subjects(store)
        key = "k" * 64
        uuid, _ = await subjects.create("ns-a", uuid="{11111111-2222-3333-4444-55555555555A}", key=key)
        assert uuid == "11111111-2222-3333-4444-55555555555a"
        assert (await subjects.authenticate(uuid, key)).namespace == "ns-a"
        with pytest.raises(Conflict, match="already in use"):
            await subjects.create("ns-b", uuid="1111111122223333444455555555555a", key=key)
