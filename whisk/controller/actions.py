"""The actions collection (docs/openwhisk.md §1.6; OpenWhisk `CTL/Actions.scala`): actions may live in a package, are
read with their package's (and binding's) parameters merged in, and sequences are checked against the store on PUT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from whisk.controller.collection import Collection, Options
from whisk.controller.entitlement import ACTIVATE, READ, Resource
from whisk.entities.action import Action, ActionPut, web_secret_hidden
from whisk.entities.archive import check_unpacked_size
from whisk.entities.errors import Conflict, Forbidden, Invalid, NotFound
from whisk.entities.exec import (SEQUENCE_COMPONENT_MISSING, SEQUENCE_TOO_LONG, CodeExec, Exec, RuntimeDeprecated,
                                 SequenceExec)
from whisk.entities.identity import Identity
from whisk.entities.names import EntityName, EntityPath, FullyQualifiedEntityName
from whisk.entities.package import Package

NOT_ON_BINDING = "Operation not permitted on package binding."
NO_COMPONENT = "No component specified for the sequence."
CYCLIC = "Sequence may not refer to itself."
INLINE_ZIP_CHARS = 256 * 1024          # smaller zips are read on the event loop (well under a millisecond)


class Actions(Collection):
    name = "actions"
    entity = Action

    # --- addressing inside packages -------------------------------------------------------------------------------
    async def _package_of(self, identity: Identity, path: EntityPath, right: str, name: str) -> Package | None:
        """For "ns/pkg/name": the entitlement on the packaged resource, then the package itself (404 if absent)."""
        if path.is_default_package:
            return None
        await self.entitlement.check(identity, right, Resource(path, self.name, name))
        return await self.repo.need(Package, str(path))

    async def addressable(self, identity: Identity, path: EntityPath, name: str, right: str) -> None:
        package = await self._package_of(identity, path, right, name)
        if package is not None and package.binding is not None:
            raise Invalid(NOT_ON_BINDING)

    # --- get ------------------------------------------------------------------------------------------------------
    async def get(self, identity: Identity, path: EntityPath, name: str, options: Options) -> Any:
        EntityName(name)
        if path.is_default_package:
            await self.entitlement.authorize(identity, READ, Resource(path, self.name, name))
        else:
            await self._package_of(identity, path, READ, name)
        code = options().get("code", True)
        action, binding = await self.repo.action_with_package(FullyQualifiedEntityName(path, name))
        out = action.to_json(code=code)
        if not identity.owns(action.namespace.root):
            out["annotations"] = web_secret_hidden(out["annotations"])
        if binding is not None and not code:
            # Read through a binding, the metadata (code=false, WhiskActionMetaData) names it; the whole action
            # (WhiskAction, the default) has no such field.
            out["binding"] = binding
        return out

    async def list_package(self, identity: Identity, namespace: EntityPath, package: str,
                           paging: Callable[[], tuple[int, int, bool]]) -> Any:
        """GET .../actions/{pkg}/: the actions of a package, or of the package a binding names; `paging` (skip,
        limit, count) is read once the caller may read the package, as OpenWhisk's `listPackageActions` reads it."""
        EntityName(package)
        await self.entitlement.check(identity, READ, Resource(namespace, "packages", package))
        skip, limit, count = paging()
        _, target = await self.repo.resolve_package(f"{namespace}/{package}")
        listed = await self.list_in(identity, target.full_path, skip, limit, count)
        if isinstance(listed, list) and not identity.owns(target.full_path.root):
            listed = [{**a, "annotations": web_secret_hidden(a.get("annotations") or [])} for a in listed]
        return listed

    # --- put ------------------------------------------------------------------------------------------------------
    def parse(self, identity: Identity, body: Any) -> ActionPut:
        return ActionPut.from_json(body, self.resolve_kind).resolve(identity.namespace)

    async def validate(self, identity: Identity, request: ActionPut) -> None:
        if request.limits is not None:
            request.limits.check(identity.limits)
        if isinstance(request.exec, SequenceExec):
            await self.entitlement.check_all(identity, READ, [
                Resource(c.path, self.name, c.name) for c in request.exec.components])
        if request.exec is not None and not identity.limits.kind_allowed(request.exec.kind,
                                                                         canonical=self._stored_kind):
            raise Forbidden(f"The supplied authentication is not authorized to access actions of kind "
                            f"'{request.exec.kind}'.")
        code = getattr(request.exec, "code", None)
        if getattr(request.exec, "binary", False) and code:
            cap = self.repo.system.max_code_unpacked
            if len(code) < INLINE_ZIP_CHARS:
                check_unpacked_size(code, cap)
            else:                   # decoding tens of MB would hold up every other request on the loop
                await asyncio.to_thread(check_unpacked_size, code, cap)

    def _stored_kind(self, kind: str) -> str:
        """The kind an action given `kind` is stored with (an alias, `nodejs:default` resolved); an unknown or
        deprecated one as it is."""
        try:
            return self.resolve_kind(kind).kind
        except Invalid:
            return kind

    async def create(self, identity: Identity, request: ActionPut, path: EntityPath, name: str) -> Action:
        if request.exec is not None:
            self.refuse_deprecated(request.exec)
        if isinstance(request.exec, SequenceExec):
            await self._check_sequence(FullyQualifiedEntityName(path, name), request.exec)
        return request.create(path, name, self.repo.system.standard_action_limits())

    async def update(self, identity: Identity, request: ActionPut, old: Action) -> Action:
        self.refuse_deprecated(request.exec or old.exec)        # an update that leaves the exec keeps the old one
        if isinstance(request.exec, SequenceExec):
            await self._check_sequence(old.fqn, request.exec)
        return request.update(old)

    def refuse_deprecated(self, exec_: Exec) -> None:
        """OpenWhisk's make, update and invoke: an action of a deprecated kind may be read and deleted, not made,
        nor updated unless to a current kind (400, after the 409 of an existing name), nor invoked (400)."""
        if isinstance(exec_, CodeExec):
            try:
                self.resolve_kind(exec_.kind)
            except RuntimeDeprecated as exc:
                raise Invalid(str(exc)) from None
            except Invalid:
                pass                # a kind the manifest no longer lists at all: not this rule's to refuse

    async def _check_sequence(self, sequence: FullyQualifiedEntityName, exec_: SequenceExec) -> None:
        """Bounded length, at least one component, every component exists, no cycle back to this action."""
        limit = self.repo.system.sequence_length
        if len(exec_.components) > limit:
            raise Invalid(SEQUENCE_TOO_LONG)
        if not exec_.components:
            raise Invalid(NO_COMPONENT)
        itself = await self.repo.resolve_action_name(sequence)
        if await self._count(itself, exec_.components, limit, depth=0) > limit:
            raise Invalid(SEQUENCE_TOO_LONG)

    async def _count(self, itself: FullyQualifiedEntityName, components: tuple[FullyQualifiedEntityName, ...],
                     limit: int, depth: int) -> int:
        if len(components) > limit or depth > limit:
            raise Invalid(SEQUENCE_TOO_LONG)
        total = 0
        for component in components:
            try:
                real = await self.repo.resolve_action_name(component)
                if real == itself:
                    raise Invalid(CYCLIC)
                action = await self.repo.fetch(Action, real.doc_id)
            except (NotFound, Conflict):
                raise Invalid(SEQUENCE_COMPONENT_MISSING) from None
            if action is None:
                raise Invalid(SEQUENCE_COMPONENT_MISSING)
            if isinstance(action.exec, SequenceExec):
                total += await self._count(itself, action.exec.components, limit, depth + 1)
            else:
                total += 1
            if total > limit:
                raise Invalid(SEQUENCE_TOO_LONG)
        return total

    async def put_response(self, identity: Identity, saved: Action) -> Any:
        return saved.to_json()


async def entitle_activation(actions: Actions, identity: Identity, path: EntityPath, name: str) -> None:
    """ACTIVATE on an action: owner, or READ on the (public) package it is addressed through."""
    resource = Resource(path, "actions", name)
    if path.is_default_package:
        await actions.entitlement.authorize(identity, ACTIVATE, resource)
    else:
        await actions.entitlement.check(identity, ACTIVATE, resource)

