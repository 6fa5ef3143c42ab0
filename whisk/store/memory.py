"""The in-memory store (`WHISK_STORE=memory://`): dicts in one process, lost on exit; for tests and throwaway runs.

Documents are copied in and out (through JSON, which also proves they are JSON-able), so a caller that mutates a
returned dict never changes what is stored.
"""

from __future__ import annotations

import json
import uuid
from types import TracebackType
from collections.abc import Callable
from typing import Any

from whisk.entities.activation import Activation
from whisk.entities.errors import Conflict, NotFound
from whisk.store.base import (ActivationQuery, Doc, NamespaceStates, activation_list_name, listed, namespace_states,
                              public_package, summary_of)


def _copy(doc: Doc) -> Doc:
    return json.loads(json.dumps(doc))


def next_revision(rev: str | None) -> str:
    """CouchDB-shaped revision: "<generation>-<32 hex>"."""
    generation = int(rev.split("-", 1)[0]) + 1 if rev else 1
    return f"{generation}-{uuid.uuid4().hex}"


def in_namespace(doc_namespace: str, namespace: str) -> bool:
    """The port's listing rule: a root namespace also covers its packages; a package path matches exactly."""
    if "/" in namespace:
        return doc_namespace == namespace
    return doc_namespace == namespace or doc_namespace.startswith(namespace + "/")


def page(docs: list[Doc], skip: int, limit: int) -> list[Doc]:
    return docs[skip:skip + limit] if limit > 0 else docs[skip:]


class MemoryStore:
    def __init__(self) -> None:
        self._entities: dict[str, Doc] = {}
        self._listed: dict[str, Doc] = {}           # each entity as `list` gives it (no code), made at put time
        self._activations: dict[str, Doc] = {}
        self._subjects: dict[str, Doc] = {}
        self._limits: dict[str, Doc] = {}

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    # --- entities -----------------------------------------------------------------------------------------------
    async def get(self, doc_id: str) -> Doc | None:
        doc = self._entities.get(doc_id)
        return _copy(doc) if doc is not None else None

    async def put(self, doc: Doc) -> str:
        doc_id = doc["_id"]
        current = self._entities.get(doc_id)
        rev = doc.get("_rev")
        if rev is None and current is not None:
            raise Conflict("Document update conflict.")
        if rev is not None and (current is None or current["_rev"] != rev):
            raise Conflict("Document update conflict.")
        stored = _copy(doc)
        stored["_rev"] = next_revision(rev)
        self._entities[doc_id] = stored
        self._listed[doc_id] = _copy(listed(stored))
        return stored["_rev"]

    async def delete(self, doc_id: str, rev: str) -> None:
        current = self._entities.get(doc_id)
        if current is None:
            raise NotFound()
        if current["_rev"] != rev:
            raise Conflict("Document update conflict.")
        del self._entities[doc_id]
        del self._listed[doc_id]

    def _matching(self, entity_type: str, namespace: str) -> list[Doc]:
        docs = [d for d in self._listed.values()
                if d.get("entityType") == entity_type and in_namespace(d.get("namespace", ""), namespace)]
        docs.sort(key=lambda d: (d.get("updated", 0), d["_id"]), reverse=True)
        return docs

    async def list_entities(self, entity_type: str, namespace: str, *, skip: int = 0,
                            limit: int = 30) -> list[Doc]:
        return [_copy(d) for d in page(self._matching(entity_type, namespace), skip, limit)]

    async def count(self, entity_type: str, namespace: str) -> int:
        return len(self._matching(entity_type, namespace))

    def _public(self, namespace: str) -> list[Doc]:
        return [d for d in self._matching("package", namespace) if public_package(d)]

    async def public_packages(self, namespace: str, *, skip: int = 0, limit: int = 30) -> list[Doc]:
        return [_copy(d) for d in page(self._public(namespace), skip, limit)]

    async def count_public_packages(self, namespace: str) -> int:
        return len(self._public(namespace))

    # --- activations --------------------------------------------------------------------------------------------
    async def put_activation(self, activation: Activation) -> None:
        self._activations[activation.doc_id] = activation.to_doc()

    def loop_idle(self) -> None:
        """Nothing held back to write (base.ActivationStore.loop_idle)."""

    async def get_activation(self, namespace: str, activation_id: str) -> Doc | None:
        doc = self._activations.get(f"{namespace}/{activation_id}")
        return _copy(doc) if doc is not None else None

    async def activation_ids(self, query: ActivationQuery) -> list[str]:
        return [d["activationId"] for d in page(self._selected(query), query.skip, query.limit)]

    async def get_activations(self, namespace: str, activation_ids: list[str]) -> list[Doc]:
        found = (self._activations.get(f"{namespace}/{activation_id}") for activation_id in activation_ids)
        return [_copy(doc) for doc in found if doc is not None]

    def _selected(self, query: ActivationQuery) -> list[Doc]:
        def wanted(d: Doc) -> bool:
            start = d.get("start", 0)
            return (d.get("namespace") == query.namespace
                    and (query.name is None or activation_list_name(d) == query.name)
                    and (query.since is None or start >= query.since)
                    and (query.upto is None or start <= query.upto))

        docs = [d for d in self._activations.values() if wanted(d)]
        docs.sort(key=lambda d: (d.get("start", 0), d["_id"]), reverse=True)
        return docs

    async def list_activations(self, query: ActivationQuery) -> list[Doc]:
        listed = page(self._selected(query), query.skip, query.limit)
        return [_copy(d if query.docs else summary_of(d)) for d in listed]

    async def count_activations(self, query: ActivationQuery) -> int:
        return len(self._selected(query))

    async def prune_activations(self, before: int, progress: Callable[[int], None] | None = None) -> int:
        gone = [doc_id for doc_id, d in self._activations.items() if d.get("start", 0) < before]
        for doc_id in gone:
            del self._activations[doc_id]
        if progress is not None and gone:
            progress(len(gone))
        return len(gone)

    # --- subjects and namespace limits --------------------------------------------------------------------------
    async def get_subject(self, subject: str) -> Doc | None:
        doc = self._subjects.get(subject)
        return _copy(doc) if doc is not None else None

    async def put_subject(self, doc: Doc) -> None:
        stored = _copy(doc)
        stored.pop("_rev", None)
        self._subjects[stored["_id"]] = stored

    async def delete_subject(self, subject: str) -> bool:
        return self._subjects.pop(subject, None) is not None

    async def list_subjects(self) -> list[Doc]:
        return [_copy(d) for _, d in sorted(self._subjects.items())]

    def _find(self, key: str, value: str) -> tuple[Doc, Doc] | None:
        for _, doc in sorted(self._subjects.items()):
            for entry in doc.get("namespaces") or ():
                if entry.get(key) == value:
                    return _copy(doc), _copy(entry)
        return None

    async def find_namespace(self, uuid: str) -> tuple[Doc, Doc] | None:
        return self._find("uuid", uuid)

    async def find_namespace_by_name(self, namespace: str) -> tuple[Doc, Doc] | None:
        return self._find("name", namespace)

    async def get_limits(self, namespace: str) -> Doc | None:
        doc = self._limits.get(namespace)
        return _copy(doc) if doc is not None else None

    async def put_limits(self, namespace: str, limits: Doc) -> None:
        stored: dict[str, Any] = {k: v for k, v in _copy(limits).items() if k not in ("_id", "_rev")}
        self._limits[namespace] = stored

    async def delete_limits(self, namespace: str) -> bool:
        return self._limits.pop(namespace, None) is not None

    async def namespace_states(self) -> NamespaceStates:
        return namespace_states(self._subjects.values(), self._limits.items())

    async def purge_namespace(self, namespace: str) -> dict[str, int]:
        entities = [k for k, d in self._entities.items() if in_namespace(d.get("namespace", ""), namespace)]
        activations = [k for k, d in self._activations.items() if d.get("namespace") == namespace]
        for key in entities:
            del self._entities[key], self._listed[key]
        for key in activations:
            del self._activations[key]
        self._limits.pop(namespace, None)
        return {"entities": len(entities), "activations": len(activations)}

    # --- health -------------------------------------------------------------------------------------------------
    async def ping(self) -> None:
        return None
