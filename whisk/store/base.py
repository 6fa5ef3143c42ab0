"""The store ports, written from the caller's side: `EntityStore` (actions, triggers, rules, packages),
`ActivationStore` (records) and `SubjectStore` (subjects and namespace limits); `Store` is all three plus `ping`,
what each adapter implements.

Documents are plain JSON-able dicts, as OpenWhisk keeps them in CouchDB (docs/openwhisk.md §2):
* entities (action, trigger, rule, package) have `_id` = "namespace[/package]/name", `entityType`, `namespace`,
  `name`, `updated` (epoch ms) and `_rev` (opaque string, set by the store);
* activations have `_id` = "namespace/activationId", `namespace`, `name`, `activationId`, `start`, `end`, ...;
* subjects have `_id` = the subject name and `namespaces: [{name, uuid, key_hash, key_salt}]`;
* namespace limits have `_id` = "namespace/limits".

Revisions: `put` with `_rev` absent creates (Conflict if the id exists), with `_rev` updates (Conflict unless it
matches). Listing is newest first (`updated` for entities, `start` for activations), with skip and limit.
Every adapter raises only whisk.entities.errors (Conflict, NotFound, BackendUnavailable).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from whisk.entities.activation import Activation
from whisk.entities.exec import is_binary_code
from whisk.retry import while_unavailable

Doc = dict[str, Any]
# What a request gets when the backend fails it; the detail (where the database is, what it said) goes to the log.
UNAVAILABLE = "The database is unavailable."
# `prune_activations` deletes at most this many records at a time (a transaction, a bulk request), so that a running
# server's own writes wait for one batch at most.
PRUNE_BATCH = 2000


@dataclass(frozen=True, slots=True)
class ActivationQuery:
    """A list of a namespace's activations (docs/openwhisk.md §1.10). `name` matches "action" or "pkg/action" exactly
    against `activation_list_name(record)`; since/upto are inclusive epoch ms bounds on start; limit 0 = all.
    `docs` False asks for what a list entry shows (`Activation.summary_json`): the records without `logs` and
    without `response.result`, up to 10 MB and 1 MB of each that a listing need not read (`summary_of`)."""

    namespace: str
    name: str | None = None
    since: int | None = None
    upto: int | None = None
    skip: int = 0
    limit: int = 30
    docs: bool = True


def summary_of(doc: Doc) -> Doc:
    """A stored record as a listing without docs reads it: without `logs` and `response.result`."""
    out = {k: v for k, v in doc.items() if k != "logs"}
    response = out.get("response")
    if isinstance(response, dict) and "result" in response:
        out["response"] = {k: v for k, v in response.items() if k != "result"}
    return out


class EntityStore(Protocol):
    """Actions, triggers, rules and packages (the `whisks` database)."""

    async def get(self, doc_id: str) -> Doc | None:
        """The entity document with its `_rev`, or None."""

    async def put(self, doc: Doc) -> str:
        """Create (no `_rev`) or update (matching `_rev`) an entity; returns the new revision."""

    async def delete(self, doc_id: str, rev: str) -> None:
        """Delete an entity at revision `rev` (Conflict on mismatch, NotFound when absent)."""

    async def list_entities(self, entity_type: str, namespace: str, *, skip: int = 0,
                            limit: int = 30) -> list[Doc]:
        """Entities of one type, newest `updated` first, as `listed(doc)`: without an action's code. A root
        namespace ("guest") matches documents whose namespace is "guest" or "guest/<package>"; a package path
        ("guest/pkg") matches exactly. limit 0 = all."""

    async def count(self, entity_type: str, namespace: str) -> int:
        """How many documents `list_entities` would return without skip and limit."""

    async def public_packages(self, namespace: str, *, skip: int = 0, limit: int = 30) -> list[Doc]:
        """The packages of `namespace` that `public_package` lets another namespace list, ordered and shown as
        `list_entities` gives them (OpenWhisk's public packages view), read without ever holding the namespace's
        other packages: a listing of another tenant's packages is as bounded as one of one's own. limit 0 = all."""

    async def count_public_packages(self, namespace: str) -> int:
        """How many packages `public_packages` would return without skip and limit."""


class ActivationStore(Protocol):
    """Activation records (the `activations` database)."""

    async def put_activation(self, activation: Activation) -> None:
        """Store (or overwrite) one activation record, in its stored form (`Activation.to_doc`)."""

    async def get_activation(self, namespace: str, activation_id: str) -> Doc | None:
        """The record (without `_rev`) as soon as `put_activation` has returned, or None."""

    async def get_activations(self, namespace: str, activation_ids: list[str]) -> list[Doc]:
        """The records of these ids in one read, in the order given; an id without a record is left out."""

    async def list_activations(self, query: ActivationQuery) -> list[Doc]:
        """Newest `start` first."""

    async def activation_ids(self, query: ActivationQuery) -> list[str]:
        """The activation ids `list_activations` would list, in its order, without reading a record."""

    async def count_activations(self, query: ActivationQuery) -> int: ...

    async def prune_activations(self, before: int, progress: Callable[[int], None] | None = None) -> int:
        """Delete the records of every namespace that started before `before` (epoch ms); returns how many went.
        OpenWhisk keeps records until the operator deletes them (its `tools/db/cleanUpActivations.py`); this is
        `whisk admin activations prune`. Safe beside a running server: it deletes in small transactions, and calls
        `progress` with how many went so far after each."""

    def loop_idle(self) -> None:
        """The event loop has nothing to run (it waits for a container's answer, or a lone job has just ended): a
        store that holds records back to write them together may write them now (the container pool calls this;
        stores that write at once do nothing)."""


@dataclass(frozen=True, slots=True)
class NamespaceStates:
    """What an invoker checks each activation against (whisk/invoker/blocklist.py): `uuids`, the uuid of every
    namespace in the store, and `blocked`, OpenWhisk's `blockedNamespaces` view (docs/openwhisk.md §2.8): every
    namespace of a blocked subject and every namespace whose limits set invocations per minute or concurrent
    invocations to 0."""

    uuids: frozenset[str]
    blocked: frozenset[str]


def namespace_states(subjects: Iterable[Doc], limits: Iterable[tuple[str, Doc]]) -> NamespaceStates:
    """`NamespaceStates` from the subject documents and the (namespace, limits document) pairs, as the view reads
    them: a subject's `blocked` must be `true` and a limit a number equal to 0 (`false` is not 0 here)."""
    uuids: set[str] = set()
    blocked: set[str] = set()
    for doc in subjects:
        if not isinstance(doc, dict) or not isinstance(doc.get("namespaces"), list):
            continue
        for entry in doc["namespaces"]:
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("uuid"), str):
                uuids.add(entry["uuid"])
            if doc.get("blocked") is True and isinstance(entry.get("name"), str):
                blocked.add(entry["name"])
    for namespace, doc in limits:
        if not isinstance(doc, dict):
            continue
        if _zero(doc.get("invocationsPerMinute")) or _zero(doc.get("concurrentInvocations")):
            blocked.add(namespace)
    return NamespaceStates(frozenset(uuids), frozenset(blocked))


def _zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


class SubjectStore(Protocol):
    """Subjects with their namespaces and keys, and namespace limits (the `subjects` database)."""

    async def get_subject(self, subject: str) -> Doc | None: ...

    async def put_subject(self, doc: Doc) -> None:
        """Create or replace a subject document (last write wins; admin operations are rare)."""

    async def delete_subject(self, subject: str) -> bool: ...

    async def list_subjects(self) -> list[Doc]: ...

    async def find_namespace(self, uuid: str) -> tuple[Doc, Doc] | None:
        """(subject doc, namespace entry) whose namespace entry has this uuid, or None."""

    async def find_namespace_by_name(self, namespace: str) -> tuple[Doc, Doc] | None:
        """(subject doc, namespace entry) owning the namespace, or None (web actions resolve owners this way)."""

    async def get_limits(self, namespace: str) -> Doc | None:
        """The limits fields last put for the namespace (no `_id`/`_rev`), or None."""

    async def put_limits(self, namespace: str, limits: Doc) -> None:
        """Replace the namespace's limits document ("namespace/limits"; last write wins)."""

    async def delete_limits(self, namespace: str) -> bool:
        """Remove the namespace's limits document (system defaults apply again); False when there was none."""

    async def namespace_states(self) -> NamespaceStates:
        """Every namespace's uuid and the blocked namespaces, in one read of the subjects (an invoker's timer reads
        it; nothing on the invoke path does)."""

    async def purge_namespace(self, namespace: str) -> dict[str, int]:
        """Remove everything a root namespace holds: its entities (packages' contents too), its activation
        records and its limits. Returns how many entities and activations went ({"entities": n,
        "activations": m}). For a deleted namespace, so that a new one of the same name starts empty."""


class Store(EntityStore, ActivationStore, SubjectStore, Protocol):
    """One backend holding all three, as every adapter does; services ask for the narrowest port they use."""

    async def ping(self) -> None:
        """Raise BackendUnavailable when the backend does not answer."""


def listed(doc: Doc) -> Doc:
    """An entity document as `list_entities` gives it: all of it but an action's code, which no listing shows, so that
    one tenant's megabytes of code never slow another's listings. `exec.binary` stays (worked out from the code
    when the document lacks it), as the list summary shows it."""
    exec_ = doc.get("exec")
    if not isinstance(exec_, dict) or "code" not in exec_:
        return doc
    slim = {k: v for k, v in exec_.items() if k != "code"}
    if "binary" not in slim:       # not setdefault: that would test the whole code each time, to no purpose
        code = exec_["code"]
        slim["binary"] = is_binary_code(code) if isinstance(code, str) else False
    return {**doc, "exec": slim}


def public_package(doc: Doc) -> bool:
    """A package another namespace may list (docs/openwhisk.md §1.2): published, and no binding."""
    return bool(doc.get("publish")) and not doc.get("binding")


def activation_list_name(record: Doc) -> str:
    """The name an activation is listed under for `?name=` (docs/openwhisk.md §1.10): "[package/]name", the package
    taken from the `binding` annotation when the action ran through a binding, else from the `path` annotation."""
    annotations = {a.get("key"): a.get("value") for a in record.get("annotations") or ()}
    name = record.get("name", "")
    binding = annotations.get("binding")
    if isinstance(binding, str) and binding:
        return f"{binding.split('/', 1)[-1]}/{name}"
    path = annotations.get("path")
    if isinstance(path, str) and path.count("/") >= 2:
        return f"{path.split('/')[1]}/{name}"
    return name


# --- storing a record through a store that fails for a while --------------------------------------------------------
#
# Every accepted activation must end with a stored record (docs/architecture.md). Giving up at the first failure (the
# SQLite file locked by another process past its busy timeout, a full disk, a database briefly unreachable) and then
# acknowledging the activation closes its journal line, so neither this run nor a restart would ever store it: a
# blocking caller could hold a result whose record never appears. So the write is tried again, with backoff, for up
# to RECORD_RETRY_S; the activation keeps its slot meanwhile (how fast records are stored is how fast work is taken).
# A crash during the retries leaves the journal line open, and the restart stores a record.

RECORD_RETRY_S = 60.0


async def put_activation_retrying(store: ActivationStore, record: Activation, *,
                                  retry_s: float = RECORD_RETRY_S) -> None:
    """`store.put_activation(record)`, tried again while the store is unavailable, until `retry_s` has passed;
    then the last BackendUnavailable is raised. Other errors (a conflict: the record is already there, an
    unencodable record) are raised at once."""
    await while_unavailable(lambda: store.put_activation(record), within_s=retry_s, event="store.record",
                            activation_id=record.activation_id)
