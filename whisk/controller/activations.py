"""Reading activation records (docs/openwhisk.md §1.10; OpenWhisk `CTL/Activations.scala`): only the owner of a
namespace reads its activations, looked up by "{namespace}/{activationId}"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from whisk.controller.entitlement import READ, Entitlement, Resource
from whisk.entities.activation import Activation, parse_activation_id
from whisk.entities.errors import NotFound
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath
from whisk.store.base import ActivationQuery, ActivationStore


@dataclass(frozen=True, slots=True)
class ActivationFilter:
    skip: int = 0
    limit: int = 30
    count: bool = False
    docs: bool = False
    name: str | None = None            # "action" or "pkg/action"
    since: int | None = None
    upto: int | None = None


DOCS_BATCH = 5         # whole records read at once for a listing with docs: ~55 MB at most (10 MB logs, 1 MB result)
# Past a record this large, the next are read one at a time: a store answers a batch in one piece (CouchDB's
# _all_docs), parsed in one go on the event loop, ~30 ms for each 10 MB record in it (docs/performance.md).
LARGE_RECORD_BYTES = 1 << 20


class Activations:
    def __init__(self, store: ActivationStore, entitlement: Entitlement) -> None:
        self._store = store
        self._entitlement = entitlement

    async def list(self, identity: Identity, namespace: EntityPath, f: ActivationFilter) -> Any:
        await self._entitlement.authorize(identity, READ, Resource(namespace, "activations"))
        query = ActivationQuery(namespace=str(namespace), name=f.name, since=f.since, upto=f.upto,
                                skip=f.skip, limit=f.limit, docs=f.docs)
        if f.count:
            total = await self._store.count_activations(ActivationQuery(
                namespace=str(namespace), name=f.name, since=f.since, upto=f.upto, skip=0, limit=0))
            return {"activations": max(0, total - f.skip)}
        if f.docs:
            # The page's ids, then its records DOCS_BATCH at a time as the API sends them (reply_array): a page of
            # 200 records with 10 MB of logs each is never held whole.
            return self._records(str(namespace), await self._store.activation_ids(query))
        return [Activation.from_doc(d).summary_json() for d in await self._store.list_activations(query)]

    async def _records(self, namespace: str, ids: Sequence[str]) -> AsyncIterator[Activation]:
        start, batch = 0, DOCS_BATCH
        while start < len(ids):
            docs = await self._store.get_activations(namespace, [*ids[start:start + batch]])
            start += batch
            for doc in docs:
                record = Activation.from_doc(doc)
                if _size(record) > LARGE_RECORD_BYTES:
                    batch = 1
                yield record                        # one gone since the page was listed is left out

    async def get(self, identity: Identity, namespace: EntityPath, activation_id: str) -> Activation:
        parse_activation_id(activation_id)
        await self._entitlement.authorize(identity, READ, Resource(namespace, "activations", activation_id))
        doc = await self._store.get_activation(str(namespace), activation_id)
        if doc is None:
            raise NotFound()
        return Activation.from_doc(doc)


def _size(record: Activation) -> int:
    """About the bytes of a record's logs and result (the result as the invoker measured it)."""
    return (record.response.size or 0) + sum(map(len, record.logs))
