"""Stored entities whisk cannot read (written by other means than the API): their GET, PUT, DELETE and invoke are
OpenWhisk's 500 "Resource is corrupted and cannot be read." (PackageActionsApiTests, "report proper error when record
is corrupted"), never an unexpected exception; a listing still shows them as stored."""

from __future__ import annotations

import pytest

from whisk.controller.entities import Entities
from whisk.controller.subjects import Subjects
from whisk.entities.errors import Corrupted
from whisk.entities.limits import SystemLimits
from whisk.entities.names import EntityPath
from whisk.runtimes.manifest import load_manifest
from whisk.store.memory import MemoryStore

JS = {"kind": "nodejs:default", "code": "function main(a) { return a }"}


@pytest.mark.parametrize("field, value", [
    ("exec", 7), ("version", 7), ("exec", {"kind": "sequence", "components": 5}),
    ("exec", {"kind": "nodejs:20", "code": 5})])
async def test_a_corrupted_action_is_500_corrupted_and_listed_as_stored(field: str, value: object) -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store)
        owner = await subjects.authenticate(*await subjects.create("owner-ns"))
        entities = Entities(store, SystemLimits(), load_manifest().resolve)
        root = EntityPath.of("owner-ns")
        await entities.actions.put(owner, root, "bad", {"exec": JS}, False)
        await entities.actions.put(owner, root, "good", {"exec": JS}, False)
        doc = await store.get("owner-ns/bad")
        assert doc is not None
        doc[field] = value
        await store.put(doc)

        for attempt in (lambda: entities.actions.get(owner, root, "bad", dict),
                        lambda: entities.actions.put(owner, root, "bad", {"exec": JS}, True),
                        lambda: entities.actions.delete(owner, root, "bad", dict),
                        lambda: entities.resolve_action(owner, "_", None, "bad")):
            with pytest.raises(Corrupted, match="^Resource is corrupted and cannot be read.$"):
                await attempt()
        listed = await entities.actions.list(owner, root, 0, 0, False)
        assert sorted(a["name"] for a in listed) == ["bad", "good"]
