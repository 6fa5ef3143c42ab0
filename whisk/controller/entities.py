"""The controller's entity service: one object the API (and the invoke path) talks to, over the Store port.

Each REST collection is a `Collection` in a per-kind table (`collections`), so the HTTP edge has one generic
handler per verb. `resolve_action` is the invoke path's door: entitlement, binding resolution and parameter merge
(package < binding < action, docs/openwhisk.md §3.1) in one call; `resolve_request`, for a request or a rule, also
checks a sequence's components before it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whisk.controller.actions import Actions, entitle_activation
from whisk.controller.activations import Activations
from whisk.controller.collection import Collection
from whisk.controller.entitlement import ACTIVATE, READ, Entitlement, Resource
from whisk.controller.packages import Packages
from whisk.controller.repository import Repository
from whisk.controller.rules import Rules
from whisk.controller.triggers import Triggers
from whisk.entities.action import Action
from whisk.entities.exec import KindResolver, SequenceExec
from whisk.entities.identity import Identity
from whisk.entities.limits import SystemLimits
from whisk.entities.names import DEFAULT_NAMESPACE, EntityName, EntityPath, FullyQualifiedEntityName, namespace_segment
from whisk.entities.trigger import Trigger
from whisk.store.base import Store


@dataclass(frozen=True, slots=True)
class ResolvedAction:
    action: Action             # with package and binding parameters merged under its own
    path: str                  # "ns[/pkg]/name" of the real action
    binding: str | None        # "ns/bindingpkg" when reached through a binding
    revision: str


class Entities:
    def __init__(self, store: Store, system: SystemLimits, resolve_kind: KindResolver) -> None:
        self.store = store
        self.system = system
        self.repo = Repository(store, system)
        self.entitlement = Entitlement(store)
        self.actions = Actions(self.repo, self.entitlement, resolve_kind)
        self.triggers = Triggers(self.repo, self.entitlement, resolve_kind)
        self.rules = Rules(self.repo, self.entitlement, resolve_kind)
        self.packages = Packages(self.repo, self.entitlement, resolve_kind)
        self.collections: dict[str, Collection] = {
            c.name: c for c in (self.actions, self.triggers, self.rules, self.packages)}
        self.activations = Activations(store, self.entitlement)

    @staticmethod
    def namespace(identity: Identity, segment: str) -> EntityPath:
        """A URL's namespace segment, `_` meaning the caller's (OpenWhisk's namespace directive)."""
        namespace_segment(segment)
        return EntityPath.of(identity.namespace if segment == DEFAULT_NAMESPACE else segment)

    async def resolve_action(self, identity: Identity, namespace: str, package: str | None,
                             name: str) -> ResolvedAction:
        """The action to run for POST .../actions/[pkg/]name: 403 when the caller may not activate it, 404 when
        it (or its package, or a binding's target) does not exist."""
        path = await self.entitle_action(identity, namespace, package, name)
        return await self._located(path, name)

    async def entitle_action(self, identity: Identity, namespace: str, package: str | None,
                             name: str) -> EntityPath:
        """The first step of `resolve_action`, alone: the caller's right to activate (403), or the owner's missing
        package (404). An invoke reads its body only after it, as OpenWhisk's route unmarshals it once authorized."""
        path = self._action_path(identity, namespace, package, name)
        await entitle_activation(self.actions, identity, path, name)
        return path

    async def request_at(self, identity: Identity, path: EntityPath, name: str) -> ResolvedAction:
        """`resolve_request` once `entitle_action` gave the path."""
        resolved = await self._located(path, name)
        await self.entitle_components(identity, resolved)
        return resolved

    async def locate_action(self, identity: Identity, namespace: str, package: str | None,
                            name: str) -> ResolvedAction:
        """The action at [pkg/]name, through a binding too, before any right is checked: a web action's export is
        looked at first (404), then `entitle_located` (OpenWhisk `verifyWebAction`)."""
        return await self._located(self._action_path(identity, namespace, package, name), name)

    async def entitle_located(self, identity: Identity, resolved: ResolvedAction) -> None:
        """ACTIVATE on a located action where it lives: 403 when its package, reached through a binding, is
        another namespace's and no longer public."""
        path, _, name = resolved.path.rpartition("/")
        await self.entitlement.check(identity, ACTIVATE, Resource(EntityPath.parse(path), "actions", name))

    def _action_path(self, identity: Identity, namespace: str, package: str | None, name: str) -> EntityPath:
        path = self.namespace(identity, namespace)
        if package is not None:
            path = path.add(EntityName(package).value)
        EntityName(name)
        return path

    async def _located(self, path: EntityPath, name: str) -> ResolvedAction:
        action, binding = await self.repo.action_with_package(FullyQualifiedEntityName(path, name))
        return ResolvedAction(action, action.doc_id, binding, action.rev or "")

    async def resolve_request(self, identity: Identity, namespace: str, package: str | None,
                              name: str) -> ResolvedAction:
        """`resolve_action` for a request to run an action (a REST invoke, a rule's fire): a sequence's components
        must each be activatable by the caller before any of them runs, as OpenWhisk's invoke route checks them
        (`entitleReferencedEntitiesMetaData`); one 403 names those refused. Nothing is checked while it runs, a
        nested sequence's components included: they are only located (`composition.locate`)."""
        return await self.request_at(identity, await self.entitle_action(identity, namespace, package, name), name)

    async def entitle_components(self, identity: Identity, resolved: ResolvedAction) -> None:
        """A sequence's components must each be activatable by `identity` before any of them runs: one 403 names
        those refused. Every door that starts a sequence (a REST invoke, a rule, a web action, an API route) asks,
        so that a component another namespace made private since no longer runs for this one."""
        exec_ = resolved.action.exec
        if isinstance(exec_, SequenceExec):
            await self.entitlement.check_all(identity, ACTIVATE, [
                Resource(c.path, "actions", c.name) for c in exec_.components])

    async def trigger_to_fire(self, identity: Identity, namespace: str, name: str) -> Trigger:
        """The trigger for POST .../triggers/name (owner only; 404 when absent)."""
        path = await self.entitle_fire(identity, namespace, name)
        return await self.repo.need(Trigger, f"{path}/{name}")

    async def entitle_fire(self, identity: Identity, namespace: str, name: str) -> EntityPath:
        """The caller's right to fire (403), which a fire's route checks before it reads the body, as OpenWhisk's
        does; only the owner's, so without a read of the store."""
        path = self.namespace(identity, namespace)
        EntityName(name)
        await self.entitlement.authorize(identity, ACTIVATE, Resource(path, "triggers", name))
        return path

    async def limits(self, identity: Identity, namespace: str) -> dict[str, Any]:
        """GET /namespaces/{ns}/limits: the effective limits (docs/openwhisk.md §1.11), owner only."""
        path = self.namespace(identity, namespace)
        await self.entitlement.authorize(identity, READ, Resource(path, "limits"))
        return identity.limits.to_json()
