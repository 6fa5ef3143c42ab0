"""The CouchDB store (`WHISK_STORE=couchdb://user:pass@host:5984[/prefix]`, `couchdbs://` for TLS).

Three databases, as OpenWhisk keeps them: `<prefix>whisks` (entities), `<prefix>activations` and `<prefix>subjects`
(subjects and "namespace/limits" documents); the prefix defaults to "whisk_". Databases and design documents are
created (or brought up to date) on start. Single documents are written and deleted through aiocouch; reads of
them, views, `_all_docs`, `_bulk_docs` and design documents go through plain HTTP, because aiocouch's `find()` and
`design_doc()` do not work against every CouchDB-API server (docs/testing.md, pouchdb-server) and its `get` costs
three passes over a document on the event loop (`_fetch`). Activations are written in the background
(`couchdb_writer.py`), held meanwhile in `spool`, a file of the server's data folder, when one is given.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from types import SimpleNamespace, TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import structlog
from aiocouch import ConflictError, CouchDB, Document, NotFoundError, PreconditionFailedError
from aiocouch.database import Database

from whisk import logs
from whisk.entities.activation import Activation
from whisk.entities.errors import BackendUnavailable, Conflict, NotFound
from whisk.store.couchdb_writer import ActivationWriter, BatchTooLarge
from whisk.store.base import PRUNE_BATCH, UNAVAILABLE, ActivationQuery, Doc, NamespaceStates, public_package
from whisk.store.couchdb_views import DESIGN_DOCS, stale_designs

log = structlog.get_logger(__name__)
# CouchDB away fails every request that reads or writes: a line each, bounded (logs.Bounded).
_FAILED = logs.Bounded()

_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5)
_BACKEND_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)   # OSError covers aiocouch's 401/403
# What a 404 says when the database itself is missing, not a document: CouchDB 2 and later, CouchDB 1.x and
# pouchdb-server. A database can go while whisk runs: deleted by hand, or a server without storage restarted.
_NO_DATABASE = ("Database does not exist.", "no_db_file")
PUBLIC_SCAN = 500      # view rows read at a time when looking for another namespace's public packages


def server_url(url: str) -> tuple[str, str | None, str | None, str | None]:
    """(http[s]://host:port, user, password, database prefix from the path) from a WHISK_STORE URL."""
    parts = urlsplit(url)
    scheme = {"couchdb": "http", "couchdbs": "https"}.get(parts.scheme, parts.scheme)
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]" if ":" in host else host
    base = f"{scheme}://{netloc}:{parts.port or 5984}"
    prefix = parts.path.strip("/") or None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return base, user, password, prefix


async def _accept_json(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestStartParams) -> None:
    # CouchDB 1.x-style servers answer text/plain unless asked for JSON; aiocouch does not ask.
    params.headers["Accept"] = "application/json"


def _params(**params: Any) -> dict[str, str]:
    """View query parameters: keys as JSON, booleans as true/false."""
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        if key in ("key", "startkey", "endkey"):
            out[key] = json.dumps(value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _public(doc: Doc, *drop: str) -> Doc:
    return {k: v for k, v in doc.items() if k not in drop}


class CouchStore:
    def __init__(self, url: str, *, prefix: str | None = None, spool: str | None = None) -> None:
        self._base, self._user, self._password, url_prefix = server_url(url)
        prefix = prefix if prefix is not None else url_prefix or "whisk_"
        self._names = {"whisks": f"{prefix}whisks", "activations": f"{prefix}activations",
                       "subjects": f"{prefix}subjects"}
        self._couch: CouchDB | None = None
        self._http: aiohttp.ClientSession | None = None
        self._dbs: dict[str, Database] = {}
        self._writer = ActivationWriter(self._bulk_docs, self._current_revs, spool)
        self._recreating = asyncio.Lock()
        # Other whisk versions' design documents found at start, by database (what `_report_stale` logs).
        self.stale_designs: dict[str, list[str]] = {}
        self.created = False        # this opening made the subjects database: a new store (`whisk admin` says so)

    async def __aenter__(self) -> CouchStore:
        headers = {"Accept": "application/json"}
        if self._user:
            token = base64.b64encode(f"{self._user}:{self._password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._http = aiohttp.ClientSession(timeout=_TIMEOUT, headers=headers)
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(_accept_json)
        self._couch = CouchDB(self._base, user=self._user, password=self._password, timeout=_TIMEOUT,
                              trace_configs=[trace])
        try:
            await self._create_databases()
            for key, name in self._names.items():
                if stale := await self._report_stale(name, key):
                    self.stale_designs[name] = stale
            await self._writer.start()
        except BaseException:
            await self._close_sessions()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._writer.close()
        finally:
            await self._close_sessions()

    async def _create_databases(self) -> None:
        """Create the databases and their design documents where missing (each start, and when one has gone)."""
        assert self._couch is not None
        for key, name in self._names.items():
            try:
                self._dbs[key] = await self._couch.create(name)
                self.created = self.created or key == "subjects"
            except PreconditionFailedError:                 # it exists
                self._dbs[key] = Database(self._couch, name)
            except _BACKEND_ERRORS as exc:
                raise BackendUnavailable(f"couchdb {self._base}: cannot create {name}: {exc}") from exc
            await self._install_design(name, DESIGN_DOCS[key])

    async def _database_gone(self, detail: str) -> BackendUnavailable:
        """A database went while whisk ran: create it again, as a start would, so that what is accepted from now on
        (records the writer still holds among them) is stored; the request that found it missing is refused."""
        if not self._recreating.locked():
            async with self._recreating:
                log.warning("store.couchdb.recreated", detail=detail)
                try:
                    await self._create_databases()
                except BackendUnavailable as exc:
                    log.warning("store.couchdb.failed", detail=str(exc))
        return _unavailable(detail)

    async def _close_sessions(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._couch is not None:
            await self._couch.close()

    # --- plain HTTP -----------------------------------------------------------------------------------------
    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: Any = None) -> tuple[int, Any]:
        assert self._http is not None
        try:
            async with self._http.request(method, self._base + path, params=params, json=body) as resp:
                return resp.status, await resp.json(content_type=None)
        except (*_BACKEND_ERRORS, ValueError) as exc:
            raise _unavailable(f"couchdb {self._base}: {method} {path}: {exc!r}") from exc

    async def _ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self._call(method, path, **kwargs)
        return await self._answered(method, path, status, body)

    async def _answered(self, method: str, path: str, status: int, body: Any) -> Any:
        """The body of a 2xx answer; the database gone (made again) or any other status is BackendUnavailable."""
        if status == 404 and isinstance(body, dict) and body.get("reason") in _NO_DATABASE:
            raise await self._database_gone(f"couchdb {self._base}: {method} {path}: {status} {body}")
        if status >= 300:
            raise _unavailable(f"couchdb {self._base}: {method} {path}: {status} {body}")
        return body

    async def _install_design(self, db: str, design: Doc) -> None:
        """Create the design document, or replace it when its views differ (an upgraded whisk)."""
        path = f"/{db}/{design['_id']}"
        for _ in range(5):
            status, current = await self._call("GET", path)
            if status == 200 and _public(current, "_rev") == design:
                return
            body = design if status != 200 else {**design, "_rev": current["_rev"]}
            status, answer = await self._call("PUT", path, body=body)
            if status < 300:
                return
            if status != 409:   # 409: another whisk installed it at the same time; look again
                raise BackendUnavailable(f"couchdb {self._base}: PUT {path}: {status} {answer}")
        raise BackendUnavailable(f"couchdb {self._base}: {path} keeps changing")

    async def _report_stale(self, db: str, key: str) -> list[str]:
        """Design documents of another whisk version are left in place (one may still run on this database), but
        CouchDB may keep their indexes up to date, on disk and CPU, until they are deleted: say so (at info: not to
        every `whisk admin` command's stderr)."""
        body = await self._ok("GET", f"/{db}/_all_docs", params=_params(startkey="_design/", endkey="_design0"))
        stale = stale_designs(key, [row["id"] for row in body["rows"]])
        if stale:
            log.info("store.couchdb.stale_design_documents", database=db, stale=stale,
                     current=DESIGN_DOCS[key]["_id"], hint="delete them once no whisk of another version uses "
                     "this database, then POST /<database>/_view_cleanup (docs/operations.md, Upgrades)")
        return stale

    async def _view(self, db: str, view: str, **params: Any) -> Any:
        ddoc = DESIGN_DOCS[db]["_id"]
        return await self._ok("GET", f"/{self._names[db]}/{ddoc}/_view/{view}", params=_params(**params))

    async def _count(self, db: str, view: str, **params: Any) -> int:
        rows = (await self._view(db, view, reduce=True, **params))["rows"]
        return int(rows[0]["value"]) if rows else 0

    async def _bulk_docs(self, docs: list[Doc]) -> list[Doc]:
        path = f"/{self._names['activations']}/_bulk_docs"
        status, body = await self._call("POST", path, body={"docs": docs})
        if status == 413:   # a record past CouchDB's max_document_size: not a database that is away
            raise BatchTooLarge(f"{status} {body}")
        return await self._answered("POST", path, status, body)

    async def _current_revs(self, ids: list[str]) -> dict[str, str]:
        body = await self._ok("POST", f"/{self._names['activations']}/_all_docs", body={"keys": ids})
        return {row["id"]: row["value"]["rev"] for row in body["rows"] if "value" in row}

    # --- single documents through aiocouch ----------------------------------------------------------------------
    async def _fetch(self, db: str, doc_id: str) -> Doc | None:
        """One document, or None. Read by plain HTTP, not aiocouch: its `get` parsed the answer twice and then
        wrote it out again, sorted, to hash it, all on the event loop (an activation record with 10 MB of logs held
        the loop ~0.3 s, docs/performance.md)."""
        path = f"/{self._names[db]}/{quote(doc_id, safe='')}"
        status, body = await self._call("GET", path)
        if status == 404:
            if isinstance(body, dict) and body.get("reason") in _NO_DATABASE:
                raise await self._database_gone(f"couchdb {self._base}: GET {path}: {status} {body}")
            return None
        if status >= 300 or not isinstance(body, dict):
            raise _unavailable(f"couchdb {self._base}: GET {path}: {status} {body}")
        return body

    async def _save(self, db: str, body: Doc) -> str:
        """PUT one document (create without `_rev`, update with it); Conflict on a revision mismatch."""
        doc = Document(self._dbs[db], body["_id"], data=dict(body))
        try:
            await doc.save()
        except ConflictError as exc:
            raise Conflict("Document update conflict.") from exc
        except NotFoundError as exc:   # a PUT finds no document missing: its database is
            raise await self._database_gone(f"couchdb {self._base}: put {body['_id']}: {exc}") from exc
        except _BACKEND_ERRORS as exc:
            raise _unavailable(f"couchdb {self._base}: put {body['_id']}: {exc}") from exc
        assert doc.rev is not None
        return doc.rev

    async def _delete(self, db: str, doc_id: str, rev: str) -> None:
        doc = Document(self._dbs[db], doc_id, data={"_rev": rev})
        try:
            await doc.delete(discard_changes=True)
        except (ConflictError, NotFoundError) as exc:
            if _no_database(exc):
                raise await self._database_gone(f"couchdb {self._base}: delete {doc_id}: {exc}") from exc
            # Which of the two a stale revision or a deleted document gets differs between CouchDB-API servers.
            if await self._fetch(db, doc_id) is not None:
                raise Conflict("Document update conflict.") from None
            raise NotFound() from None
        except _BACKEND_ERRORS as exc:
            raise _unavailable(f"couchdb {self._base}: delete {doc_id}: {exc}") from exc

    async def _replace(self, db: str, body: Doc) -> None:
        """Last write wins: retry with the current revision until no one else wrote in between."""
        for _ in range(10):
            current = await self._fetch(db, body["_id"])
            data = _public(body, "_rev") | ({"_rev": current["_rev"]} if current else {})
            try:
                await self._save(db, data)
                return
            except Conflict:
                continue
        raise Conflict(f"Document {body['_id']} keeps changing.")

    # --- entities -----------------------------------------------------------------------------------------------
    async def get(self, doc_id: str) -> Doc | None:
        return await self._fetch("whisks", doc_id)

    async def put(self, doc: Doc) -> str:
        return await self._save("whisks", doc)

    async def delete(self, doc_id: str, rev: str) -> None:
        await self._delete("whisks", doc_id, rev)

    async def list_entities(self, entity_type: str, namespace: str, *, skip: int = 0,
                            limit: int = 30) -> list[Doc]:
        body = await self._view("whisks", "entities", reduce=False, descending=True,
                                startkey=[entity_type, namespace, {}], endkey=[entity_type, namespace],
                                skip=skip or None, limit=limit or None)
        return [row["value"] for row in body["rows"] if isinstance(row.get("value"), dict)]

    async def count(self, entity_type: str, namespace: str) -> int:
        return await self._count("whisks", "entities", startkey=[entity_type, namespace],
                                 endkey=[entity_type, namespace, {}])

    async def public_packages(self, namespace: str, *, skip: int = 0, limit: int = 30) -> list[Doc]:
        return (await self._public_scan(namespace, skip, limit, keep=True))[1]

    async def count_public_packages(self, namespace: str) -> int:
        return (await self._public_scan(namespace, 0, 0, keep=False))[0]

    async def _public_scan(self, namespace: str, skip: int, limit: int, *, keep: bool) -> tuple[int, list[Doc]]:
        """(how many of the namespace's packages are public, the page of them when `keep`), reading the entities
        view PUBLIC_SCAN rows at a time from where the last read ended (its last key, skipping the rows of that key
        already read): only a chunk and the page are held, never every package of the namespace."""
        start: list[Any] = ["package", namespace, {}]
        read_at_start = 0                      # rows of key `start` already read
        found, page = 0, []
        while True:
            rows = (await self._view("whisks", "entities", reduce=False, descending=True, startkey=start,
                                     endkey=["package", namespace], skip=read_at_start or None,
                                     limit=PUBLIC_SCAN))["rows"]
            for row in rows:
                value = row.get("value")
                if not isinstance(value, dict) or not public_package(value):
                    continue
                found += 1
                if keep and found > skip:
                    page.append(value)
                    if len(page) == limit:
                        return found, page
            if len(rows) < PUBLIC_SCAN:
                return found, page
            last = rows[-1]["key"]
            read_at_start = sum(1 for row in rows if row["key"] == last) + (read_at_start if last == start else 0)
            start = last

    # --- activations --------------------------------------------------------------------------------------------
    async def put_activation(self, activation: Activation) -> None:
        self._writer.put(activation.to_doc())

    def loop_idle(self) -> None:
        """Nothing to do: records are queued for the writer and readable at once, so its batches hold no answer
        back (base.ActivationStore.loop_idle)."""

    async def get_activation(self, namespace: str, activation_id: str) -> Doc | None:
        doc_id = f"{namespace}/{activation_id}"
        queued = self._writer.get(doc_id)
        if queued is not None:
            return queued
        doc = await self._fetch("activations", doc_id)
        return _public(doc, "_rev") if doc is not None else None

    async def activation_ids(self, query: ActivationQuery) -> list[str]:
        if _empty(query):
            return []
        await self._writer.drained()
        view, low, high = self._range(query)
        body = await self._view("activations", view, reduce=False, descending=True, startkey=high, endkey=low,
                                skip=query.skip or None, limit=query.limit or None)
        prefix = len(query.namespace) + 1                  # a document's id is "<namespace>/<activation id>"
        return [row["id"][prefix:] for row in body["rows"]]

    async def get_activations(self, namespace: str, activation_ids: list[str]) -> list[Doc]:
        ids = [f"{namespace}/{activation_id}" for activation_id in activation_ids]
        found: dict[str, Doc] = {}
        for doc_id in ids:
            queued = self._writer.get(doc_id)
            if queued is not None:
                found[doc_id] = queued
        wanted = [doc_id for doc_id in ids if doc_id not in found]
        if wanted:
            body = await self._ok("POST", f"/{self._names['activations']}/_all_docs",
                                  params=_params(include_docs=True), body={"keys": wanted})
            for row in body["rows"]:
                if isinstance(row.get("doc"), dict):
                    found[row["id"]] = _public(row["doc"], "_rev")
        return [found[doc_id] for doc_id in ids if doc_id in found]

    def _range(self, query: ActivationQuery) -> tuple[str, list[Any], list[Any]]:
        """(view, low key, high key) for the query; both bounds inclusive."""
        head: list[Any] = [query.namespace] if query.name is None else [query.namespace, query.name]
        low = head + ([query.since] if query.since is not None else [])
        high = head + [query.upto if query.upto is not None else {}]
        return ("byStart" if query.name is None else "byName"), low, high

    async def list_activations(self, query: ActivationQuery) -> list[Doc]:
        if _empty(query):              # CouchDB refuses a reversed key range (400): the answer is known anyway
            return []
        await self._writer.drained()   # read your writes: what was put before this call is listed
        view, low, high = self._range(query)
        body = await self._view("activations", view, reduce=False, include_docs=query.docs, descending=True,
                                startkey=high, endkey=low, skip=query.skip or None, limit=query.limit or None)
        if not query.docs:              # the view's value: the record without its logs and result
            return [row["value"] for row in body["rows"] if isinstance(row.get("value"), dict)]
        return [_public(row["doc"], "_rev") for row in body["rows"] if row.get("doc")]

    async def count_activations(self, query: ActivationQuery) -> int:
        if _empty(query):
            return 0
        await self._writer.drained()
        view, low, high = self._range(query)
        return await self._count("activations", view, startkey=low, endkey=high)

    async def prune_activations(self, before: int, progress: Callable[[int], None] | None = None) -> int:
        """Through the byStart view: its counts grouped by namespace name the namespaces, then each one's records
        before `before`, PRUNE_BATCH at a time, are deleted in bulk."""
        await self._writer.drained()
        grouped = await self._view("activations", "byStart", reduce=True, group_level=1)
        pruned = 0
        for namespace in [row["key"][0] for row in grouped["rows"]]:
            while True:
                rows = (await self._view("activations", "byStart", reduce=False, startkey=[namespace],
                                         endkey=[namespace, before], inclusive_end=False, limit=PRUNE_BATCH))["rows"]
                revs = await self._current_revs([row["id"] for row in rows]) if rows else {}
                if revs:
                    await self._bulk_docs([{"_id": i, "_rev": rev, "_deleted": True} for i, rev in revs.items()])
                pruned += len(revs)
                if progress is not None and revs:
                    progress(pruned)
                if len(rows) < PRUNE_BATCH:
                    break
        return pruned

    # --- subjects and namespace limits --------------------------------------------------------------------------
    async def get_subject(self, subject: str) -> Doc | None:
        doc = await self._fetch("subjects", subject)
        return _public(doc, "_rev") if doc is not None and "namespaces" in doc else None

    async def put_subject(self, doc: Doc) -> None:
        await self._replace("subjects", doc)

    async def delete_subject(self, subject: str) -> bool:
        for _ in range(10):
            doc = await self._fetch("subjects", subject)
            if doc is None or "namespaces" not in doc:
                return False
            try:
                await self._delete("subjects", subject, doc["_rev"])
                return True
            except NotFound:
                return False
            except Conflict:
                continue
        raise Conflict(f"Subject {subject} keeps changing.")

    async def list_subjects(self) -> list[Doc]:
        body = await self._ok("GET", f"/{self._names['subjects']}/_all_docs", params=_params(include_docs=True))
        return [_public(row["doc"], "_rev") for row in body["rows"]
                if row.get("doc") and "namespaces" in row["doc"] and not row["id"].startswith("_design/")]

    async def _find(self, view: str, key: str) -> tuple[Doc, Doc] | None:
        body = await self._view("subjects", view, key=key, include_docs=True, limit=1)
        for row in body["rows"]:
            doc = _public(row["doc"], "_rev")
            return doc, doc["namespaces"][row["value"]]
        return None

    async def find_namespace(self, uuid: str) -> tuple[Doc, Doc] | None:
        return await self._find("byUuid", uuid)

    async def find_namespace_by_name(self, namespace: str) -> tuple[Doc, Doc] | None:
        return await self._find("byName", namespace)

    async def get_limits(self, namespace: str) -> Doc | None:
        doc = await self._fetch("subjects", f"{namespace}/limits")
        return _public(doc, "_id", "_rev") if doc is not None else None

    async def put_limits(self, namespace: str, limits: Doc) -> None:
        await self._replace("subjects", {**_public(limits, "_id", "_rev"), "_id": f"{namespace}/limits"})

    async def delete_limits(self, namespace: str) -> bool:
        limits = await self._fetch("subjects", f"{namespace}/limits")
        if limits is None:
            return False
        try:
            await self._delete("subjects", f"{namespace}/limits", limits["_rev"])
        except NotFound:
            return False
        return True

    async def namespace_states(self) -> NamespaceStates:
        """The `states` view alone (no document read): a namespace's uuid, or its name when it is blocked."""
        uuids: set[str] = set()
        blocked: set[str] = set()
        for row in (await self._view("subjects", "states"))["rows"]:
            value = row.get("value") or {}
            if isinstance(value.get("uuid"), str):
                uuids.add(value["uuid"])
            if value.get("blocked") is True:
                blocked.add(row["key"])
        return NamespaceStates(frozenset(uuids), frozenset(blocked))

    async def purge_namespace(self, namespace: str) -> dict[str, int]:
        """Every document whose id starts with "<namespace>/" (entities: "ns[/pkg]/name"; activations:
        "ns/id"), deleted in bulk, then the limits document."""
        counts = {}
        for db, what in (("whisks", "entities"), ("activations", "activations")):
            if db == "activations":
                await self._writer.drained()          # records still queued for writing go too
            body = await self._ok("GET", f"/{self._names[db]}/_all_docs",
                                  params=_params(startkey=f"{namespace}/", endkey=f"{namespace}/\ufff0"))
            gone = [{"_id": row["id"], "_rev": row["value"]["rev"], "_deleted": True} for row in body["rows"]]
            if gone:
                await self._ok("POST", f"/{self._names[db]}/_bulk_docs", body={"docs": gone})
            counts[what] = len(gone)
        limits = await self._fetch("subjects", f"{namespace}/limits")
        if limits is not None:
            try:
                await self._delete("subjects", f"{namespace}/limits", limits["_rev"])
            except NotFound:
                pass
        return counts

    # --- health -------------------------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._ok("GET", "/")


def _empty(query: ActivationQuery) -> bool:
    """A time range with nothing in it: `since` after `upto`."""
    return query.since is not None and query.upto is not None and query.since > query.upto


def _no_database(exc: BaseException) -> bool:
    """An aiocouch 404 that says the database is missing (aiocouch keeps the server's reason on its cause)."""
    return getattr(exc.__cause__, "reason", None) in _NO_DATABASE


def _unavailable(detail: str) -> BackendUnavailable:
    """What a request gets when CouchDB fails it: the detail (the database's address, its databases, its answer)
    goes to the log, not to the caller."""
    bound = _FAILED.fields()
    if bound is not None:
        log.warning("store.couchdb.failed", detail=detail, **bound)
    return BackendUnavailable(UNAVAILABLE)
