"""Actions of a kind the runtime manifest marks deprecated (OpenWhisk `CTL/Actions.scala` make and update,
`Messages.runtimeDeprecated`): they may be read and deleted, but not created, updated to or updated while they have
it, and the refusal is a plain 400, not a malformed body, answered after the 409 of an existing name. Nor invoked
(`CTL/actions/PostActionActivation.scala` invokeAction): the same 400, before any activation is made."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.controller.support import guest_controller, serve_in_controller
from whisk.config import Settings
from whisk.controller.entities import Entities, ResolvedAction
from whisk.controller.services import ControllerServices
from whisk.controller.subjects import Subjects
from whisk.entities.errors import Conflict, Invalid
from whisk.entities.identity import Identity
from whisk.entities.limits import SystemLimits
from whisk.entities.names import EntityPath
from whisk.runtimes.manifest import Manifest, load_manifest
from whisk.store.base import ActivationQuery
from whisk.store.memory import MemoryStore

DEPRECATED = ("The 'nodejs:18' runtime is no longer supported. "
              "You may read and delete but not update or invoke this action.")


def manifest(tmp_path: Path, deprecated: bool) -> Manifest:
    path = tmp_path / f"runtimes-{deprecated}.json"
    path.write_text(json.dumps({"runtimes": {"nodejs": [
        {"kind": "nodejs:18", "deprecated": deprecated, "image": {"prefix": "openwhisk", "name": "action-nodejs-v18"}},
        {"kind": "nodejs:20", "default": True, "image": {"prefix": "openwhisk", "name": "action-nodejs-v20"}}]}}))
    return load_manifest(str(path))


async def test_a_deprecated_kind_is_read_and_deleted_but_not_written(tmp_path: Path) -> None:
    async with MemoryStore() as store:
        subjects = Subjects(store)
        owner = await subjects.authenticate(*await subjects.create("owner-ns"))
        root = EntityPath.of("owner-ns")
        before = Entities(store, SystemLimits(), manifest(tmp_path, deprecated=False).resolve)
        for name in ("old", "gone"):
            await before.actions.put(owner, root, name, {"exec": {"kind": "nodejs:18", "code": "x"}}, False)
        entities = Entities(store, SystemLimits(), manifest(tmp_path, deprecated=True).resolve)

        for body in ({"annotations": [{"key": "a", "value": 1}]},         # no exec: the stored one is deprecated
                     {"exec": {"kind": "nodejs:18", "code": "y"}}):
            with pytest.raises(Invalid) as caught:
                await entities.actions.put(owner, root, "old", body, True)
            assert str(caught.value) == DEPRECATED
        with pytest.raises(Invalid) as caught:
            await entities.actions.put(owner, root, "new", {"exec": {"kind": "nodejs:18", "code": "y"}}, False)
        assert str(caught.value) == DEPRECATED
        with pytest.raises(Conflict):              # the name is taken: 409 first, as OpenWhisk's putEntity
            await entities.actions.put(owner, root, "old", {"exec": {"kind": "nodejs:18", "code": "y"}}, False)

        got = await entities.actions.get(owner, root, "old", dict)
        assert (got["version"], got["exec"]["kind"], got["exec"]["code"]) == ("0.0.1", "nodejs:18", "x")
        moved = await entities.actions.put(owner, root, "old", {"exec": {"kind": "nodejs:default", "code": "z"}}, True)
        assert (moved["version"], moved["exec"]["kind"]) == ("0.0.2", "nodejs:20")     # onto a current kind: fine
        assert (await entities.actions.delete(owner, root, "gone", dict))["exec"]["kind"] == "nodejs:18"


@asynccontextmanager
async def deprecated_since_made(tmp_path: Path, store: MemoryStore, name: str,
                                ) -> AsyncIterator[tuple[ControllerServices, Identity, ResolvedAction]]:
    """The guest's action `name` made of kind nodejs:18 while it ran, then a controller whose manifest deprecates
    that kind: its services, the guest, and the action resolved."""
    settings = dataclasses.replace(Settings(), data_dir=str(tmp_path), catalog=False, alarms_refresh_s=3600)
    async with guest_controller(settings, store, manifest(tmp_path, deprecated=False)) as (services, guest):
        await services.entities.actions.put(guest, EntityPath.of("guest"), name,
                                            {"exec": {"kind": "nodejs:18", "code": "x"}}, False)
    async with guest_controller(settings, store, manifest(tmp_path, deprecated=True)) as (services, guest):
        yield services, guest, await services.entities.resolve_action(guest, "_", None, name)


async def test_an_action_of_a_deprecated_kind_is_not_invoked(tmp_path: Path) -> None:
    """Made while its kind ran, invoked after the manifest deprecated it: OpenWhisk answers 400 with the same text
    and makes no activation; whisk sent it to an invoker, whose record said "Failed to pull container image"."""
    async with MemoryStore() as store:
        async with deprecated_since_made(tmp_path, store, "old") as (services, guest, resolved):
            with pytest.raises(Invalid) as caught:
                await services.launcher.start(guest, resolved, {}, blocking=False, wait_ms=0, tid="t")
            assert str(caught.value) == DEPRECATED
        # Nothing was sent: an activation in flight at the controller's stop would have a record by now.
        assert await store.list_activations(ActivationQuery("guest")) == []



async def test_an_action_the_controller_serves_is_not_refused_for_its_kind(tmp_path: Path) -> None:
    """The alarms feeds are actions the controller serves itself (`Launcher.natives`): no container runs them, so a
    kind deprecated since they were installed (the catalog's actions keep the kind `nodejs:default` resolved to
    then, and are written again only when the catalog changes) must not refuse them, as it did every `wsk trigger
    create --feed` once the manifest deprecated that kind; a sequence's step was served meanwhile."""
    async with MemoryStore() as store:
        async with deprecated_since_made(tmp_path, store, "feed") as (services, guest, resolved):
            serve_in_controller(services, resolved, {"served": True})
            outcome = await services.launcher.start(guest, resolved, {}, blocking=True, wait_ms=60_000, tid="t")
            assert outcome.record is not None and outcome.record.response.result == {"served": True}
