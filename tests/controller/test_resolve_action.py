"""`Entities.resolve_action`, the invoke path's door, over a real in-memory store: parameters merge package <
binding < action (docs/openwhisk.md §3.1), bindings report their path, and entitlement answers 403 before 404
(docs/openwhisk.md §1.2)."""

from __future__ import annotations

import pytest

from whisk.controller.entities import Entities
from whisk.controller.events import UserEvents
from whisk.controller.subjects import Subjects
from whisk.controller.throttle import InvocationThrottle
from whisk.controller.web import WebActions, WebRequest
from whisk.entities.errors import Forbidden, Invalid, NotFound, Unprocessable
from whisk.entities.limits import SystemLimits
from whisk.entities.names import EntityPath, FullyQualifiedEntityName
from whisk.runtimes.manifest import load_manifest
from whisk.store.memory import MemoryStore

JS = {"kind": "nodejs:default", "code": "function main(a) { return a }"}


def params(**values):
    return [{"key": k, "value": v} for k, v in values.items()]


async def test_merge_order_bindings_and_entitlement() -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store)
        owner = await subjects.authenticate(*await subjects.create("owner-ns"))
        other = await subjects.authenticate(*await subjects.create("other-ns"))
        entities = Entities(store, SystemLimits(), load_manifest().resolve)
        root = EntityPath.of("owner-ns")
        await entities.packages.put(owner, root, "pub", {"publish": True, "parameters": params(a="pkg", b="pkg",
                                                                                                  c="pkg")}, False)
        await entities.packages.put(owner, root, "priv", {}, False)
        await entities.actions.put(owner, root.add("pub"), "act", {"exec": JS, "parameters": params(c="action")},
                                   False)
        await entities.actions.put(owner, root.add("priv"), "act", {"exec": JS}, False)
        await entities.actions.put(owner, root, "plain", {"exec": JS}, False)
        await entities.packages.put(other, EntityPath.of("other-ns"), "bind", {
            "binding": {"namespace": "owner-ns", "name": "pub"}, "parameters": params(b="binding")}, False)

        direct = await entities.resolve_action(owner, "_", "pub", "act")
        assert direct.path == "owner-ns/pub/act" and direct.binding is None and direct.revision
        assert direct.action.parameters.to_dict() == {"a": "pkg", "b": "pkg", "c": "action"}

        bound = await entities.resolve_action(other, "other-ns", "bind", "act")
        assert bound.path == "owner-ns/pub/act" and bound.binding == "other-ns/bind"
        assert bound.action.parameters.to_dict() == {"a": "pkg", "b": "binding", "c": "action"}
        assert (await entities.resolve_action(other, "owner-ns", "pub", "act")).path == "owner-ns/pub/act"

        assert (await entities.resolve_action(owner, "owner-ns", None, "plain")).path == "owner-ns/plain"
        with pytest.raises(Forbidden, match="'owner-ns/plain'"):
            await entities.resolve_action(other, "owner-ns", None, "plain")
        with pytest.raises(Forbidden, match="'owner-ns/priv'"):
            await entities.resolve_action(other, "owner-ns", "priv", "act")
        with pytest.raises(Forbidden):
            await entities.resolve_action(other, "owner-ns", "nothing", "act")     # no leak
        with pytest.raises(NotFound):
            await entities.resolve_action(owner, "owner-ns", None, "nothing")
        with pytest.raises(NotFound):
            await entities.resolve_action(owner, "owner-ns", "nothing", "act")
        with pytest.raises(NotFound):
            await entities.resolve_action(other, "other-ns", "bind", "nothing")
        with pytest.raises(Invalid):
            await entities.resolve_action(owner, "owner-ns", None, "bad name ")

        trigger_owner = await entities.triggers.put(owner, root, "t", {}, False)
        assert (await entities.trigger_to_fire(owner, "_", "t")).name == trigger_owner["name"]
        with pytest.raises(Forbidden):
            await entities.trigger_to_fire(other, "owner-ns", "t")


async def test_a_chain_of_bindings_that_comes_back_on_itself_is_422_not_followed_for_ever() -> None:
    # The API cannot make one (a binding must name a package that is not a binding), a store written by other
    # means can: each place that follows bindings stops where the chain meets itself.
    async with MemoryStore() as store:
        subjects = Subjects(store)
        owner = await subjects.authenticate(*await subjects.create("owner-ns"))
        entities = Entities(store, SystemLimits(), load_manifest().resolve)
        root = EntityPath.of("owner-ns")
        for name in ("a", "b"):
            await entities.packages.put(owner, root, name, {}, False)
        await entities.actions.put(owner, root.add("a"), "act", {"exec": JS}, False)
        for name, target in (("a", "b"), ("b", "a")):
            doc = await store.get(f"owner-ns/{name}")
            assert doc is not None
            doc["binding"] = {"namespace": "owner-ns", "name": target}
            await store.put(doc)
        for attempt in (entities.resolve_action(owner, "_", "a", "act"),
                        entities.repo.resolve_action_name(FullyQualifiedEntityName(root.add("b"), "act")),
                        entities.packages.get(owner, root, "a", dict)):
            with pytest.raises(Unprocessable, match="contains a circular reference"):
                await attempt


async def test_a_web_sequence_runs_no_component_its_owner_may_no_longer_activate() -> None:
    """A web-exported sequence is checked as a REST invoke of it is (`entitle_components`): a component reached
    through a binding to another namespace's package that was made private since is 403, and nothing runs (it ran,
    with the other namespace's package parameters, before)."""
    class Launcher:
        started: list[str] = []

        async def start(self, identity, resolved, payload, **kwargs):
            self.started.append(resolved.path)
            raise AssertionError("nothing may run")

    async with MemoryStore() as store:
        subjects = Subjects(store)
        owner = await subjects.authenticate(*await subjects.create("owner-ns"))
        other = await subjects.authenticate(*await subjects.create("other-ns"))
        entities = Entities(store, SystemLimits(), load_manifest().resolve)
        root, mine = EntityPath.of("owner-ns"), EntityPath.of("other-ns")
        await entities.packages.put(owner, root, "pub", {"publish": True, "parameters": params(s="secret")}, False)
        await entities.actions.put(owner, root.add("pub"), "act", {"exec": JS}, False)
        await entities.packages.put(other, mine, "bind", {"binding": {"namespace": "owner-ns", "name": "pub"}},
                                    False)
        web = [{"key": "web-export", "value": True}]
        for name, component in (("via-binding", "/other-ns/bind/act"), ("direct", "/owner-ns/pub/act")):
            await entities.actions.put(other, mine, name, {
                "exec": {"kind": "sequence", "components": [component]}, "annotations": web}, False)
        await entities.packages.put(owner, root, "pub", {"publish": False}, True)     # private from now on

        launcher = Launcher()
        actions = WebActions(launcher, entities, subjects,  # type: ignore[arg-type]
                             InvocationThrottle(lambda _: 0, UserEvents(None, controller=0)), 1000)
        for name in ("via-binding", "direct"):
            request = WebRequest("GET", f"other-ns/default/{name}.json", (), (), "", b"", None)
            with pytest.raises(Forbidden):
                await actions.serve(request, "tid")
        assert launcher.started == []
