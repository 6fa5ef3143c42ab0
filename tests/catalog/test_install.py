"""Installing the catalog on start: nothing is rewritten on a restart, a changed catalog (another whisk version) is
brought up to date with stale actions removed, two controllers starting at once on one store both come up, and a
missing whisk.system namespace is created with a key nobody was told."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from tests.support.processes import whisk_server
from whisk.catalog.installer import HASH_ANNOTATION, install, load
from whisk.controller.entities import Entities
from whisk.controller.subjects import Subjects
from whisk.entities.identity import SYSTEM_KEY, SYSTEM_NAMESPACE, key_matches
from whisk.entities.limits import SystemLimits
from whisk.runtimes.manifest import Manifest, load_manifest
from whisk.store.memory import MemoryStore
from whisk.store.sqlite import SqliteStore

CATALOG = load()


def env_for(db: str, **extra: str) -> dict[str, str]:
    return {"WHISK_STORE": f"sqlite://{db}", "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-catalog-"),
            "WHISK_POOL_PREWARM": "false", **extra}


async def catalog_docs(db: str) -> dict[str, dict[str, Any]]:
    """Every whisk.system package and action document by id."""
    async with SqliteStore(db) as store:
        docs = [*await store.list_entities("package", SYSTEM_NAMESPACE, limit=0),
                *await store.list_entities("action", SYSTEM_NAMESPACE, limit=0)]
    return {d["_id"]: d for d in docs}


def expected_ids() -> set[str]:
    ids = {f"{SYSTEM_NAMESPACE}/{name}" for name in CATALOG["packages"]}
    ids |= {f"{SYSTEM_NAMESPACE}/{p}/{a}" for p, package in CATALOG["packages"].items() for a in package["actions"]}
    return ids


async def test_a_restart_rewrites_nothing_and_a_changed_catalog_is_brought_up_to_date() -> None:
    db = os.path.join(tempfile.mkdtemp(prefix="whisk-catalog-"), "whisk.db")
    async with whisk_server(env_for(db)):
        pass
    first = await catalog_docs(db)
    assert set(first) == expected_ids()
    utils = first[f"{SYSTEM_NAMESPACE}/utils"]
    assert {"key": HASH_ANNOTATION, "value": CATALOG["packages"]["utils"]["hash"]} in utils["annotations"]

    async with whisk_server(env_for(db)):
        pass
    assert {i: d["_rev"] for i, d in (await catalog_docs(db)).items()} == {i: d["_rev"] for i, d in first.items()}

    # What an older whisk left: another hash on utils, an action it had that this one has not, one action missing.
    async with SqliteStore(db) as store:
        old = await store.get(f"{SYSTEM_NAMESPACE}/utils")
        old["annotations"] = [a for a in old["annotations"] if a["key"] != HASH_ANNOTATION] + [
            {"key": HASH_ANNOTATION, "value": "an-older-catalog"}]
        await store.put(old)
        stale = dict(first[f"{SYSTEM_NAMESPACE}/utils/echo"], _id=f"{SYSTEM_NAMESPACE}/utils/retired", name="retired")
        del stale["_rev"]
        await store.put(stale)
        sort = await store.get(f"{SYSTEM_NAMESPACE}/utils/sort")
        await store.delete(sort["_id"], sort["_rev"])
    async with whisk_server(env_for(db)):
        pass
    after = await catalog_docs(db)
    assert set(after) == expected_ids()
    assert {"key": HASH_ANNOTATION, "value": CATALOG["packages"]["utils"]["hash"]} in \
        after[f"{SYSTEM_NAMESPACE}/utils"]["annotations"]
    # Only utils was written again; samples and alarms kept their revisions.
    unchanged = {i for i in first if not i.startswith(f"{SYSTEM_NAMESPACE}/utils")}
    assert {i: after[i]["_rev"] for i in unchanged} == {i: first[i]["_rev"] for i in unchanged}


async def test_two_controllers_starting_at_once_on_one_store_both_come_up() -> None:
    db = os.path.join(tempfile.mkdtemp(prefix="whisk-catalog-"), "whisk.db")
    async with AsyncExitStack() as stack:
        urls = await asyncio.gather(*(stack.enter_async_context(whisk_server(env_for(db), deadline_s=60))
                                      for _ in range(2)))
        assert len(urls) == 2
    docs = await catalog_docs(db)
    assert set(docs) == expected_ids()


async def test_a_missing_whisk_system_is_created_with_a_key_nobody_was_told() -> None:
    db = os.path.join(tempfile.mkdtemp(prefix="whisk-catalog-"), "whisk.db")
    async with whisk_server(env_for(db, WHISK_BOOTSTRAP_USERS="false")):
        pass
    async with SqliteStore(db) as store:
        found = await store.find_namespace_by_name(SYSTEM_NAMESPACE)
        assert found is not None
        _, entry = found
        assert not key_matches(SYSTEM_KEY, entry["key_hash"], entry["key_salt"])
        assert await store.find_namespace_by_name("guest") is None
    assert set(await catalog_docs(db)) == expected_ids()


async def test_the_catalog_can_be_left_out() -> None:
    db = os.path.join(tempfile.mkdtemp(prefix="whisk-catalog-"), "whisk.db")
    async with whisk_server(env_for(db, WHISK_CATALOG="false")):
        pass
    assert await catalog_docs(db) == {}


async def test_catalog_actions_of_a_kind_deprecated_since_are_written_again_onto_the_current_one(
        tmp_path: Path) -> None:
    """The catalog's actions are stored with the kind `nodejs:default` resolved to when they were written, and a
    package whose catalog did not change is not written again: once the manifest deprecated that kind (as it says
    to, rather than remove it), `/whisk.system/utils/echo` and the rest were refused at every invoke ("The
    'nodejs:18' runtime is no longer supported."), for good. A start writes such a package again, onto the
    current default; a start after that rewrites nothing."""
    def manifest(deprecated: bool) -> Manifest:
        path = tmp_path / f"runtimes-{deprecated}.json"
        path.write_text(json.dumps({"runtimes": {"nodejs": [
            {"kind": "nodejs:18", "default": not deprecated, "deprecated": deprecated,
             "image": {"prefix": "openwhisk", "name": "action-nodejs-v18"}},
            {"kind": "nodejs:20", "default": deprecated,
             "image": {"prefix": "openwhisk", "name": "action-nodejs-v20"}}]}}))
        return load_manifest(str(path))

    async with MemoryStore() as store:
        subjects = Subjects(store)
        assert "utils" in await install(Entities(store, SystemLimits(), manifest(False).resolve), subjects)
        echo = await store.get(f"{SYSTEM_NAMESPACE}/utils/echo")
        assert echo is not None and echo["exec"]["kind"] == "nodejs:18"
        entities = Entities(store, SystemLimits(), manifest(True).resolve)
        assert "utils" in await install(entities, subjects)
        echo = await store.get(f"{SYSTEM_NAMESPACE}/utils/echo")
        assert echo is not None and echo["exec"]["kind"] == "nodejs:20"
        assert await install(entities, subjects) == []
