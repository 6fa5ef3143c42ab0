"""The generic collection service (OpenWhisk `CTL/ApiUtils.scala`: one getEntity/putEntity/deleteEntity for all
collections). A `Collection` holds the steps every collection shares; each collection subclass (actions,
triggers, rules, packages) overrides only its hooks: how a PUT body parses, what create and update make, what a
read shows, what a delete must confirm or undo.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from whisk.controller.entitlement import DELETE, PUT, READ, Entitlement, Resource
from whisk.controller.repository import Repository
from whisk.entities.errors import MALFORMED, Conflict, Corrupted, Invalid, NotFound, TooLarge
from whisk.entities.exec import KindResolver
from whisk.entities.identity import Identity
from whisk.entities.names import EntityName, EntityPath
from whisk.store.base import EntityStore



# A request's query options (`code`, `force`), read only once the caller is authorized: OpenWhisk's collection
# handlers read their `parameter(...)`s after the route's entitlement check, so another namespace's malformed one
# is 403, not 400.
Options = Callable[[], dict[str, Any]]


def malformed(exc: Invalid) -> Invalid:
    return Invalid(f"{MALFORMED}{exc}")


def as_stored(doc: dict[str, Any]) -> dict[str, Any]:
    """A listed entity whisk cannot read, as its document holds it: OpenWhisk lists a view's rows without reading
    them, so one corrupted entity does not fail the listing (its GET is 500)."""
    return {k: doc[k] for k in ("namespace", "name", "version", "publish", "annotations", "updated") if k in doc}


class Collection:
    """One REST collection over one entity class."""

    name: ClassVar[str]          # "actions"
    entity: ClassVar[type[Any]]  # Action

    def __init__(self, repo: Repository, entitlement: Entitlement, resolve_kind: KindResolver) -> None:
        self.repo = repo
        self.entitlement = entitlement
        self.resolve_kind = resolve_kind

    @property
    def store(self) -> EntityStore:
        return self.repo.store

    # --- list -----------------------------------------------------------------------------------------------------
    async def list(self, identity: Identity, namespace: EntityPath, skip: int, limit: int, count: bool) -> Any:
        await self.entitlement.authorize(identity, READ, Resource(namespace, self.name))
        return await self.list_in(identity, namespace, skip, limit, count)

    async def list_in(self, identity: Identity, namespace: EntityPath, skip: int, limit: int, count: bool) -> Any:
        """Newest first; summaries, or `{collection: n}` (skip applies to the count too)."""
        entity_type = self.entity.ENTITY_TYPE
        if count:
            total = await self.store.count(entity_type, str(namespace))
            return {self.name: max(0, total - skip)}
        docs = await self.store.list_entities(entity_type, str(namespace), skip=skip, limit=limit)
        return [self.summary(doc) for doc in docs]

    def summary(self, doc: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.repo.read(self.entity, doc).summary()
        except Corrupted:
            return as_stored(doc)

    # --- get ------------------------------------------------------------------------------------------------------
    async def get(self, identity: Identity, path: EntityPath, name: str, options: Options) -> Any:
        EntityName(name)                 # 400 before anything, as OpenWhisk's route reads the name segment
        await self.entitlement.authorize(identity, READ, Resource(path, self.name, name))
        read = options()
        entity = await self.repo.need(self.entity, f"{path}/{name}")
        return await self.view(identity, entity, read)

    async def view(self, identity: Identity, entity: Any, options: dict[str, Any]) -> Any:
        return entity.to_json()

    # --- put ------------------------------------------------------------------------------------------------------
    async def put(self, identity: Identity, path: EntityPath, name: str, body: Any, overwrite: bool) -> Any:
        async def given() -> tuple[Any, bool]:
            return body, overwrite
        return await self.put_read(identity, path, name, given)

    async def put_read(self, identity: Identity, path: EntityPath, name: str,
                       read: Callable[[], Awaitable[tuple[Any, bool]]]) -> Any:
        """OpenWhisk's putEntity: authorize, check the address, read the body and `overwrite` (`read`: OpenWhisk
        reads them only once the caller is authorized, so another namespace's malformed PUT is 403, not 400), parse,
        size-check, validate, then create, update (overwrite=true) or refuse (409), write, answer."""
        EntityName(name)
        await self.entitlement.authorize(identity, PUT, Resource(path, self.name, name))
        await self.addressable(identity, path, name, PUT)
        body, overwrite = await read()
        try:
            request = self.parse(identity, body)
        except Invalid as exc:
            raise malformed(exc) from None
        self.check_sizes(identity, request)
        await self.validate(identity, request)
        old = await self.repo.fetch(self.entity, f"{path}/{name}")
        if old is not None and not overwrite:
            raise Conflict("resource already exists")
        if old is None:
            new = await self.create(identity, request, path, name)
        else:
            new = await self.update(identity, request, old)
        saved = await self.write(identity, new, old)
        return await self.put_response(identity, saved)

    async def addressable(self, identity: Identity, path: EntityPath, name: str, right: str) -> None:
        """Refuse addresses this collection cannot write (a reserved name, an action inside a binding)."""

    def parse(self, identity: Identity, body: Any) -> Any:
        raise NotImplementedError

    def check_sizes(self, identity: Identity, request: Any) -> None:
        """413 for exec, parameters or annotations over their limits (OpenWhisk `LimitedWhiskEntityPut`)."""
        limits = identity.limits
        for field, size in request_sizes(request):
            allowed = limits.max_exec_size if field == "exec" else limits.max_parameter_size
            if size is not None and size > allowed:
                raise TooLarge(f"{field} larger than allowed: {size} > {allowed} bytes.")

    async def validate(self, identity: Identity, request: Any) -> None:
        """Checks that need the store or the identity (referenced entities, limits), before create or update."""

    async def create(self, identity: Identity, request: Any, path: EntityPath, name: str) -> Any:
        return request.create(path, name)

    async def update(self, identity: Identity, request: Any, old: Any) -> Any:
        return request.update(old)

    async def write(self, identity: Identity, new: Any, old: Any | None) -> Any:
        return await self.repo.save(new)

    async def put_response(self, identity: Identity, saved: Any) -> Any:
        return saved.to_json()

    # --- delete ---------------------------------------------------------------------------------------------------
    async def delete(self, identity: Identity, path: EntityPath, name: str, options: Options) -> Any:
        EntityName(name)
        await self.entitlement.authorize(identity, DELETE, Resource(path, self.name, name))
        await self.addressable(identity, path, name, DELETE)
        read = options()
        entity = await self.repo.need(self.entity, f"{path}/{name}")
        await self.confirm_delete(identity, entity, read)
        try:
            await self.repo.remove(entity)
        except NotFound:
            raise NotFound() from None
        return await self.delete_response(identity, entity)

    async def confirm_delete(self, identity: Identity, entity: Any, options: dict[str, Any]) -> None:
        """Refuse or prepare a delete (a non-empty package, a rule's trigger link)."""

    async def delete_response(self, identity: Identity, entity: Any) -> Any:
        return entity.to_json()


def request_sizes(request: Any) -> list[tuple[str, int | None]]:
    sizes = getattr(request, "sizes", None)
    if sizes is not None:
        return list(sizes)
    out: list[tuple[str, int | None]] = []
    for field in ("parameters", "annotations"):
        value = getattr(request, field, None)
        out.append((field, value.size if value is not None else None))
    return out
