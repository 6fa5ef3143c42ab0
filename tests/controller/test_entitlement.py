"""Implicit rights on packages reached through bindings (controller/entitlement.py, OpenWhisk's
`PackageCollection.scala`), on their own."""

from __future__ import annotations

import pytest

from whisk.controller.entitlement import READ, Entitlement, Resource
from whisk.entities.errors import Unprocessable
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.store.memory import MemoryStore

ALICE = Identity(subject="alice-subject", namespace="alice", uuid="11111111-2222-3333-4444-555555555555")


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
