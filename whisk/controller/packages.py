"""The packages collection (docs/openwhisk.md §1.9; OpenWhisk `CTL/Packages.scala`): bindings, public packages, the
reserved name `default`, reads that list the package's actions and feeds, and deletes refused while actions remain
unless forced."""

from __future__ import annotations

import dataclasses
from typing import Any

from whisk.controller.collection import Collection
from whisk.controller.entitlement import PUT, READ, Resource
from whisk.entities.action import FEED, Action, web_secret_hidden
from whisk.entities.errors import Conflict, Invalid, NotFound
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.entities.package import RESERVED_NAMES, Binding, Package, PackagePut, package_action

BINDING_MISSING = "Binding references a package that does not exist."
NOT_A_PACKAGE = "Cannot bind to a resource that is not a package."
BINDING_TO_BINDING = "Cannot bind to another package binding."
PACKAGE_TO_BINDING = "Resource is a package and cannot be converted into a binding."


class Packages(Collection):
    name = "packages"
    entity = Package

    # --- list: owners see everything, others only public packages -------------------------------------------------
    async def list_in(self, identity: Identity, namespace: EntityPath, skip: int, limit: int, count: bool) -> Any:
        if identity.owns(namespace.root):
            return await super().list_in(identity, namespace, skip, limit, count)
        if count:
            return {self.name: max(0, await self.store.count_public_packages(str(namespace)) - skip)}
        return [self.summary(d) for d in await self.store.public_packages(str(namespace), skip=skip, limit=limit)]

    # --- get: the package with its actions and feeds; a binding shows its target's --------------------------------
    async def view(self, identity: Identity, entity: Package, options: dict[str, Any]) -> Any:
        if entity.binding is None:
            return await self._with_actions(identity, entity, entity)
        # Through a chain of bindings OpenWhisk shows the last binding before the package, its parameters over the
        # package's, with the package's actions (`mergePackageWithBinding`); one binding is the usual case.
        *_, shown, target = await self.repo.binding_chain(entity.doc_id)
        merged = dataclasses.replace(shown, parameters=target.parameters.merge(shown.parameters))
        return await self._with_actions(identity, merged, target)

    async def _with_actions(self, identity: Identity, shown: Package, source: Package) -> dict[str, Any]:
        docs = await self.store.list_entities("action", str(source.full_path), skip=0, limit=0)
        actions: list[dict[str, Any]] = []
        feeds: list[dict[str, Any]] = []
        for doc in docs:
            if doc.get("namespace") != str(source.full_path):
                continue
            is_feed = any(a.get("key") == FEED for a in doc.get("annotations") or ())
            entry = package_action(doc)
            if not identity.owns(source.full_path.root):
                entry["annotations"] = web_secret_hidden(entry["annotations"])
            (feeds if is_feed else actions).append(entry)
        return {**shown.to_json(), "actions": actions, "feeds": feeds}

    # --- put ------------------------------------------------------------------------------------------------------
    async def addressable(self, identity: Identity, path: EntityPath, name: str, right: str) -> None:
        if right == PUT and name in RESERVED_NAMES:
            raise Invalid(f"Package name '{name}' is reserved.")

    def parse(self, identity: Identity, body: Any) -> PackagePut:
        return PackagePut.from_json(body).resolve(identity.namespace)

    async def validate(self, identity: Identity, request: PackagePut) -> None:
        if request.binding is None:
            return
        target = Resource(EntityPath.of(request.binding.namespace), self.name, request.binding.name)
        try:
            await self.entitlement.check(identity, READ, target)
        except NotFound:
            raise Invalid(BINDING_MISSING) from None
        except Conflict:
            raise Conflict(NOT_A_PACKAGE) from None

    async def _check_binding(self, binding: Binding) -> None:
        try:
            target = await self.repo.fetch(Package, binding.doc_id)
        except Conflict:
            raise Conflict(NOT_A_PACKAGE) from None
        if target is None:
            raise Invalid(BINDING_MISSING)
        if target.binding is not None:
            raise Invalid(BINDING_TO_BINDING)

    async def create(self, identity: Identity, request: PackagePut, path: EntityPath, name: str) -> Package:
        if request.binding is not None:
            await self._check_binding(request.binding)
        return request.create(path, name)

    async def update(self, identity: Identity, request: PackagePut, old: Package) -> Package:
        if request.binding is not None:
            if old.binding is None:
                raise Conflict(PACKAGE_TO_BINDING)
            await self._check_binding(request.binding)
        return request.update(old)

    # --- delete ---------------------------------------------------------------------------------------------------
    async def confirm_delete(self, identity: Identity, entity: Package, options: dict[str, Any]) -> None:
        if entity.binding is not None:
            return
        docs = [d for d in await self.store.list_entities("action", str(entity.full_path), skip=0, limit=0)
                if d.get("namespace") == str(entity.full_path)]
        if not docs:
            return
        if not options.get("force"):
            n = len(docs)
            raise Conflict(f"Package not empty (contains {n} {'entity' if n == 1 else 'entities'}). "
                           "Set force param or delete package contents.")
        for doc in docs:
            action = await self.repo.fetch(Action, doc["_id"])
            if action is not None:
                await self.repo.remove(action)
