"""Typed entity documents over the Store port: read with the collection checked, write with OpenWhisk's conflict
messages, and follow package bindings (OpenWhisk `WhiskPackage.resolveBinding`, `WhiskAction.resolveAction`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from whisk.controller.cache import EntityCache
from whisk.entities.action import Action
from whisk.entities.errors import CONFORMANCE, Conflict, Corrupted, Invalid, NotFound
from whisk.entities.limits import SystemLimits
from whisk.entities.names import FullyQualifiedEntityName
from whisk.entities.package import Package
from whisk.entities.rule import Rule
from whisk.entities.trigger import Trigger
from whisk.store.base import EntityStore

E = TypeVar("E", Action, Trigger, Rule, Package)

log = structlog.get_logger(__name__)

_ENTITY_CLASSES: tuple[Any, ...] = (Action, Trigger, Rule, Package)
CONCURRENT = "Concurrent modification to resource detected."


class Repository:
    def __init__(self, store: EntityStore, system: SystemLimits) -> None:
        self.store = store
        self.system = system
        self._standard = system.standard_action_limits()
        # With the entity cache, each version of an entity is built once (typed entities are immutable).
        self._cache = store if isinstance(store, EntityCache) else None
        self._builders: dict[type, Callable[[dict[str, Any]], Any]] = {
            cls: functools.partial(self._checked, cls) for cls in _ENTITY_CLASSES}

    def read(self, cls: type[E], doc: dict[str, Any]) -> E:
        """The entity a stored document holds; Corrupted (500) when it cannot hold one, e.g. written by other means
        than the API."""
        reader: Any = cls                       # an action also needs the standard limits, the others not
        try:
            return reader.from_doc(doc, self._standard) if cls is Action else reader.from_doc(doc)
        except (KeyError, TypeError, ValueError, AttributeError, Invalid) as exc:
            log.error("entity.corrupted", id=doc.get("_id"), error=f"{type(exc).__name__}: {exc}")
            raise Corrupted() from None

    async def fetch(self, cls: type[E], doc_id: str) -> E | None:
        """The entity, None if absent; Conflict if a document of another collection has this name."""
        if self._cache is not None:
            built: E | None = await self._cache.get_built(doc_id, self._builders[cls])
            return built
        doc = await self.store.get(doc_id)
        return None if doc is None else self._checked(cls, doc)

    def _checked(self, cls: type[E], doc: dict[str, Any]) -> E:
        if doc.get("entityType") != cls.ENTITY_TYPE:
            raise Conflict(CONFORMANCE)
        return self.read(cls, doc)

    async def need(self, cls: type[E], doc_id: str, missing: str | None = None) -> E:
        entity = await self.fetch(cls, doc_id)
        if entity is None:
            raise NotFound(missing) if missing else NotFound()
        return entity

    async def save(self, entity: E) -> E:
        try:
            rev = await self.store.put(entity.to_doc())
        except Conflict:
            raise Conflict(CONCURRENT) from None
        return dataclasses.replace(entity, rev=rev)

    async def remove(self, entity: E) -> None:
        try:
            await self.store.delete(entity.doc_id, entity.rev or "")
        except Conflict:
            raise Conflict(CONCURRENT) from None

    async def binding_chain(self, doc_id: str) -> list[Package]:
        """The package `doc_id`, then each package its binding leads to, ending with one that is not a binding (a
        binding may lead to a package deleted and recreated as a binding since). NotFound if one is missing; 422
        for a chain that comes back on itself, which OpenWhisk's recursion would follow for ever."""
        chain = [await self.need(Package, doc_id)]
        while (binding := chain[-1].binding) is not None:
            if any(p.doc_id == binding.doc_id for p in chain):
                raise binding.circular()
            chain.append(await self.need(Package, binding.doc_id))
        return chain

    async def resolve_package(self, doc_id: str) -> tuple[Package, Package]:
        """(the package as addressed, the package whose actions it offers): a binding resolves to the end of its
        chain, each binding's parameters over those of what it leads to (OpenWhisk `resolveBinding`)."""
        chain = await self.binding_chain(doc_id)
        if len(chain) == 1:
            return chain[0], chain[0]
        parameters = functools.reduce(lambda under, p: under.merge(p.parameters), reversed(chain[:-1]),
                                      chain[-1].parameters)
        return chain[0], dataclasses.replace(chain[-1], parameters=parameters)

    async def resolve_action_name(self, fqn: FullyQualifiedEntityName) -> FullyQualifiedEntityName:
        """The real location of an action named through a binding ("ns/binding/a" → "other/pkg/a")."""
        if fqn.path.is_default_package:
            return fqn
        chain = await self.binding_chain(str(fqn.path))
        return fqn if len(chain) == 1 else FullyQualifiedEntityName(chain[-1].full_path, fqn.name)

    async def action_with_package(self, fqn: FullyQualifiedEntityName) -> tuple[Action, str | None]:
        """The action with package (and binding) parameters merged under its own, and the binding path when the
        name went through one (OpenWhisk `resolveActionAndMergeParameters`)."""
        if fqn.path.is_default_package:
            return await self.need(Action, fqn.doc_id), None
        addressed, package = await self.resolve_package(str(fqn.path))
        action = await self.need(Action, f"{package.full_path}/{fqn.name}")
        binding = str(addressed.full_path) if addressed.binding is not None else None
        return action.inherit(package.parameters), binding
