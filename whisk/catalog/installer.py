"""Installs the `whisk.system` catalog (`catalog.json` and the sources beside it) when a controller starts.

Each package carries a `catalog` annotation with the hash of its manifest entry and sources. A package whose stored
hash matches is left alone, so a restart writes nothing; a changed hash (a new whisk with other catalog code)
rewrites the package's actions, removes those no longer listed, then writes the package with the new hash last, so
an install cut short is finished by the next start. Everything goes through the entity service as `whisk.system`,
as `wsk package update` / `wsk action update` would. Two controllers starting at once both write the same
documents: a write that meets the other's newer revision (Conflict) reads again and retries.

`whisk.system` itself is created when missing (a cluster without `WHISK_BOOTSTRAP_USERS`), with a random key that
is printed nowhere; `whisk admin user delete whisk.system` and `create` give the operator one of their own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import structlog

from whisk.controller.entities import Entities
from whisk.controller.subjects import Subjects
from whisk.entities.errors import Conflict, Invalid, NotFound, WhiskError
from whisk.entities.exec import RuntimeDeprecated
from whisk.entities.identity import SYSTEM_NAMESPACE, Identity
from whisk.entities.names import EntityPath

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "catalog.json"
HASH_ANNOTATION = "catalog"
RETRIES = 5


class CatalogError(WhiskError):
    """The catalog could not be installed (the store refused every retry, or the manifest is broken)."""


def load(path: Path = MANIFEST) -> dict[str, Any]:
    """The manifest with each action's source read in (`code`) and each package's hash (`hash`)."""
    manifest = json.loads(path.read_text())
    for name, package in manifest["packages"].items():
        digest = hashlib.sha256(json.dumps([name, package], sort_keys=True).encode())
        for action in package["actions"].values():
            action["code"] = (path.parent / action["file"]).read_text()
            digest.update(action["code"].encode())
        package["hash"] = digest.hexdigest()[:32]
    return manifest


async def system_identity(subjects: Subjects) -> Identity:
    identity = await subjects.identity_of(SYSTEM_NAMESPACE)
    if identity is None:
        try:
            await subjects.create(SYSTEM_NAMESPACE)       # a generated key, told to nobody
            log.info("catalog.namespace_created", namespace=SYSTEM_NAMESPACE)
        except Conflict:
            pass                                          # another controller created it first
        identity = await subjects.identity_of(SYSTEM_NAMESPACE)
    if identity is None:
        raise CatalogError(f"the namespace {SYSTEM_NAMESPACE} cannot be found or created")
    return identity


def _hash_of(doc: dict[str, Any]) -> Any:
    return next((a.get("value") for a in doc.get("annotations") or () if a.get("key") == HASH_ANNOTATION), None)


async def install(entities: Entities, subjects: Subjects, manifest: dict[str, Any] | None = None) -> list[str]:
    """Bring every catalog package up to date; the names of the packages written (empty when all were current)."""
    manifest = manifest or load()
    identity = await system_identity(subjects)
    root = EntityPath.of(SYSTEM_NAMESPACE)
    written = []
    for name, package in manifest["packages"].items():
        current = await entities.store.get(f"{SYSTEM_NAMESPACE}/{name}")
        if current is not None and _hash_of(current) == package["hash"] and \
                not await _deprecated_since(entities, root.add(name)):
            continue
        package_body = {"publish": True, "parameters": package.get("parameters", []),
                        "annotations": [*package.get("annotations", []),
                                        {"key": HASH_ANNOTATION, "value": package["hash"]}]}
        if current is None:           # the actions need their package; the hash comes last, with the actions in
            await _put(entities, "packages", identity, root, name,
                       {**package_body, "annotations": package_body["annotations"][:-1]})
        for action_name, action in package["actions"].items():
            body = {"exec": {"kind": action["kind"], "code": action["code"]},
                    "annotations": action.get("annotations", []), "parameters": action.get("parameters", [])}
            await _put(entities, "actions", identity, root.add(name), action_name, body)
        await _remove_unlisted(entities, identity, root.add(name), set(package["actions"]))
        await _put(entities, "packages", identity, root, name, package_body)
        written.append(name)
    log.info("catalog.installed", written=written, packages=len(manifest["packages"]))
    return written


async def _deprecated_since(entities: Entities, package: EntityPath) -> bool:
    """Whether an action of the package has a kind the manifest deprecated since it was written (`nodejs:default` as
    resolved then): invokes refuse it, so the package is written again, onto the current default."""
    for doc in await entities.store.list_entities("action", str(package), skip=0, limit=0):
        try:
            entities.actions.resolve_kind(str((doc.get("exec") or {}).get("kind", "")))
        except RuntimeDeprecated:
            return True
        except Invalid:
            pass                      # a sequence, or a kind this platform lacks: writing it again would not help
    return False


async def _put(entities: Entities, collection: str, identity: Identity, path: EntityPath, name: str,
               body: dict[str, Any]) -> None:
    for _ in range(RETRIES):
        try:
            await entities.collections[collection].put(identity, path, name, body, True)
            return
        except Conflict:
            continue                  # another controller wrote it between our read and write: read again
    raise CatalogError(f"{collection} {path}/{name}: still in conflict after {RETRIES} writes")


async def _remove_unlisted(entities: Entities, identity: Identity, package: EntityPath, keep: set[str]) -> None:
    for doc in await entities.store.list_entities("action", str(package), skip=0, limit=0):
        if doc.get("name") not in keep:
            try:
                await entities.collections["actions"].delete(identity, package, doc["name"], dict)
            except NotFound:
                pass                  # the other controller removed it first
            log.info("catalog.action_removed", action=f"{package}/{doc['name']}")
