"""Implicit rights (docs/openwhisk.md §1.2; OpenWhisk `ENT/Collection.scala`, `ENT/PackageCollection.scala`,
`ENT/ActionCollection.scala`, `ENT/Entitlement.scala`).

A subject owns exactly its namespace: there it may read, put, delete and activate anything and list any
collection. Anyone may list any namespace's packages (only public ones are shown), read a published package, and
read or activate the actions inside it (also through their own binding to it). Everything else is 403, and a
missing resource of one's own is 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from whisk.entities.errors import CONFORMANCE, Conflict, Forbidden, NotFound
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.entities.package import Binding
from whisk.store.base import EntityStore

READ, PUT, DELETE, ACTIVATE = "READ", "PUT", "DELETE", "ACTIVATE"
ALL = frozenset({READ, PUT, DELETE, ACTIVATE})
# What an owner may do to one entity of each collection; collections themselves may only be read.
ENTITY_RIGHTS = {
    "actions": ALL, "triggers": ALL, "rules": ALL,
    "packages": frozenset({READ, PUT, DELETE}),
    "activations": frozenset({READ}),
}


def forbidden(*fqnames: str) -> Forbidden:
    names = ", ".join(sorted(set(fqnames)))
    return Forbidden(f"The supplied authentication is not authorized to access '{names}'.")


@dataclass(frozen=True, slots=True)
class Resource:
    namespace: EntityPath          # "ns" or "ns/pkg" (already resolved from "_")
    collection: str                # "actions", "packages", ...
    entity: str | None = None

    @property
    def fqname(self) -> str:
        return f"{self.namespace}/{self.entity}" if self.entity is not None else str(self.namespace)


class Entitlement:
    def __init__(self, store: EntityStore) -> None:
        self._store = store

    async def check(self, identity: Identity, right: str, resource: Resource) -> None:
        """Raise Forbidden (or NotFound/Conflict/Unprocessable while resolving a package) unless permitted."""
        if not await self._implicit(identity, right, resource):
            raise forbidden(resource.fqname)

    async def authorize(self, identity: Identity, right: str, resource: Resource) -> None:
        """`check` for the resource a route addresses: a missing package of one's own names the resource."""
        try:
            await self.check(identity, right, resource)
        except NotFound:
            raise NotFound(f"The requested resource '{resource.fqname}' does not exist.") from None

    async def check_all(self, identity: Identity, right: str, resources: list[Resource]) -> None:
        """Every resource (e.g. a rule's trigger and action); one 403 names all refused ones."""
        refused = [r for r in resources if not await self._implicit(identity, right, r)]
        if refused:
            raise forbidden(*(r.fqname for r in refused))

    async def _implicit(self, identity: Identity, right: str, resource: Resource) -> bool:
        owner = identity.owns(resource.namespace.root)
        if resource.entity is None:
            # Anyone may list packages; the handler shows non-owners only public ones.
            return right == READ and (owner or resource.collection == "packages")
        if resource.collection == "packages" and right == READ:
            return await self._package_readable(identity, owner, f"{resource.namespace.root}/{resource.entity}")
        if resource.collection == "actions" and right in (READ, ACTIVATE) \
                and not resource.namespace.is_default_package:
            package = Resource(EntityPath.of(resource.namespace.root), "packages", resource.namespace.package)
            await self.check(identity, READ, package)
            return True
        return owner and right in ENTITY_RIGHTS.get(resource.collection, frozenset())

    async def _package_readable(self, identity: Identity, owner: bool, doc_id: str,
                                seen: frozenset[str] = frozenset()) -> bool:
        doc = await self._store.get(doc_id)
        if doc is None:
            if owner:
                raise NotFound()
            return False                       # no information leaks about other namespaces
        if doc.get("entityType") != "package":
            if owner:
                raise Conflict(CONFORMANCE)
            return False
        binding = doc.get("binding") or {}
        if not binding:
            return bool(doc.get("publish")) or owner
        if not owner:
            return False
        target = Binding(binding.get("namespace", ""), binding.get("name", ""))
        seen |= {doc_id}
        if target.doc_id in seen:                  # OpenWhisk catches only a binding to itself, then recurses
            raise target.circular()
        return await self._package_readable(identity, identity.owns(target.namespace), target.doc_id, seen)
