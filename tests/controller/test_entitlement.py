"""Implicit rights on packages reached through bindings (controller/entitlement.py, OpenWhisk's
`PackageCollection.scala`), on their own."""

from __future__ import annotations

import pytest

from whisk.controller.entitlement import READ, Entitlement, Resource
from whisk.entities.errors import Conflict, Forbidden, Unprocessable
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.store.memory import MemoryStore

ALICE = Identity(subject="alice-subject", namespace="alice", uuid="11111111-2222-3333-4444-555555555555")
BOB = Identity(subject="bob-subject", namespace="bob", uuid="66666666-2222-3333-4444-555555555555")


def binding(name: str, to: str) -> dict:
    return {"_id": f"alice/{name}", "entityType": "package", "namespace": "alice", "name": name, "version": "0.0.1",
            "publish": False, "binding": {"namespace": "alice", "name": to}, "parameters": [], "annotations": []}


@pytest.mark.parametrize("docs", [[binding("a", "a")], [binding("a", "b"), binding("b", "a")],
                                  [binding("a", "b"), binding("b", "c"), binding("c", "b")]])
async def test_a_binding_that_leads_back_is_refused_not_followed_forever(docs: list[dict]) -> None:
    """Bindings the store holds in a loop (the API makes none, a store edited by hand can) are OpenWhisk's
    `packageBindingCircularReference`, 422, wherever the loop closes."""
    async with MemoryStore() as store:
        for doc in docs:
            await store.put(doc)
        with pytest.raises(Unprocessable, match=r"^Package binding 'alice/\w' contains a circular reference\.$"):
            await Entitlement(store).check(ALICE, READ, Resource(EntityPath.of("alice"), "packages", "a"))


@pytest.mark.parametrize("doc", [None, {"_id": "alice/a", "entityType": "action", "namespace": "alice", "name": "a",
                                        "publish": True}])
async def test_another_namespaces_package_that_is_no_package_is_403_as_a_private_one(doc: dict | None) -> None:
    """Another namespace's missing package, or an entity there of the name that is no package (even a published
    action), is refused as a private package is: no answer tells what another namespace holds."""
    async with MemoryStore() as store:
        if doc is not None:
            await store.put(doc)
        with pytest.raises(Forbidden, match=r"^The supplied authentication is not authorized to access 'alice/a'\.$"):
            await Entitlement(store).check(BOB, READ, Resource(EntityPath.of("alice"), "packages", "a"))


async def test_another_namespaces_binding_is_private_even_to_a_public_package() -> None:
    """A binding is its owner's alone (OpenWhisk's `PackageCollection`: bindings are never shared), whatever it binds:
    another namespace may read the public package itself, not the binding."""
    async with MemoryStore() as store:
        await store.put({"_id": "carol/pub", "entityType": "package", "namespace": "carol", "name": "pub",
                         "publish": True, "parameters": [], "annotations": []})
        await store.put(binding("a", "pub") | {"binding": {"namespace": "carol", "name": "pub"}})
        entitlement = Entitlement(store)
        await entitlement.check(BOB, READ, Resource(EntityPath.of("carol"), "packages", "pub"))
        await entitlement.check(ALICE, READ, Resource(EntityPath.of("alice"), "packages", "a"))
        with pytest.raises(Forbidden, match=r"'alice/a'"):
            await entitlement.check(BOB, READ, Resource(EntityPath.of("alice"), "packages", "a"))


async def test_ones_own_entity_of_a_packages_name_that_is_no_package_is_a_conflict() -> None:
    """In one's own namespace the name is taken by something else: OpenWhisk's 409 "Resource by this name exists but
    is not in this collection.", where another namespace gets 403."""
    async with MemoryStore() as store:
        await store.put({"_id": "alice/a", "entityType": "action", "namespace": "alice", "name": "a"})
        with pytest.raises(Conflict, match=r"^Resource by this name exists but is not in this collection\.$"):
            await Entitlement(store).check(ALICE, READ, Resource(EntityPath.of("alice"), "packages", "a"))
