"""API routes (docs/openwhisk.md §1.13): the `whisk.system/apimgmt` createApi/getApi/deleteApi contract served natively,
and the routes themselves. An API is one Swagger document per namespace and base path, stored through the Store port as
a document of its own type (`entityType: "api"`), so it lives as long as the namespace's other entities.

Unlike upstream every management call needs the caller's credentials and works on the caller's namespace only. The
routes are served at `<api host>/api/<namespace uuid>/<base path><relative path>` (the gateway's URL form, with the
key's uuid as the tenant): `route` finds the operation and the web action URL it forwards to.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from whisk.controller.apidoc import (CREATE_FAILURE, DELETE_FAILURE, REQUEST_PATH, ApiFailure, Endpoint, add_endpoint,
                                     backend_method, base_swagger, check_swagger, cors_setting, falsy, normalise,
                                     operation, parse_create, remove_endpoint, target_of, with_namespace)
from whisk.controller.apishape import answerable, check_answerable, check_shape
from whisk.controller.urlpath import rendered
from whisk.controller.web import WEB_PREFIX
from whisk.entities.document import now_ms
from whisk.entities.errors import Conflict, NotFound
from whisk.entities.identity import Identity
from whisk.entities.json_value import copy_of
from whisk.store.base import Store

ENTITY_TYPE = "api"
NOT_USED = "Not Used"
RETRIES = 5
NO_KEY = "A valid auth key is required."
INVALID_AUTH = "Invalid authentication."


class RouteMiss(Exception):
    """A request to a route that cannot be served: answered with the gateway's `{"status", "message"}` body."""

    def __init__(self, status: int, message: str, cors: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # The API's `cors.enabled` once its resource is found: the gateway's header filter sets the CORS headers on
        # its own error answers too, so a page of another origin can read them.
        self.cors = cors


NOT_FOUND = (404, "Error: Not found.")
VERB_NOT_SUPPORTED = (404, "Error: Whoops. Verb not supported.")


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a route request goes: the web action tail (after /api/v1/web/) and what the gateway adds."""

    tail: str = ""
    secure_key: str | None = None
    # The API's `cors.enabled` (`cors.lua`): True, the gateway sets the CORS headers; False, it takes the action's
    # off; None, not said, the action's own go through.
    cors: bool | None = None
    preflight: bool = False
    method: str = ""               # what the action is called with (the invoke step's verb)


def gw_api_url(api_host: str, tenant: str, base_path: str) -> str:
    trimmed = str(base_path).strip("/")
    return f"{api_host}/api/{tenant}" + (f"/{trimmed}" if trimmed else "")


def api_value(api_host: str, tenant: str, swagger: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": NOT_USED, "gwApiActivated": True, "tenantId": NOT_USED,
            "gwApiUrl": gw_api_url(api_host, tenant, swagger.get("basePath", "/")), "apidoc": swagger}


def _title(doc: dict[str, Any]) -> Any:
    info = doc["swagger"].get("info")
    return info.get("title") if isinstance(info, dict) else None


def _number(value: Any) -> int | None:
    if value is None or value in ("", "undefined"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):    # 1e400 in a JSON body is read as infinity
        return None


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts))


class Apis:
    def __init__(self, store: Store) -> None:
        self._store = store

    # --- storage --------------------------------------------------------------------------------------------------
    @staticmethod
    def _doc_id(namespace: str, base_path: str) -> str:
        return f"{namespace}/api:{normalise(base_path)}"   # ':' is no entity name character: no clash possible

    async def _all(self, namespace: str) -> list[dict[str, Any]]:
        docs = await self._store.list_entities(ENTITY_TYPE, namespace, skip=0, limit=0)
        docs = [d for d in docs if d.get("namespace") == namespace and isinstance(d.get("swagger"), dict)]
        return sorted(docs, key=lambda d: d.get("name", ""))

    async def _find(self, namespace: str, base_path: str) -> dict[str, Any] | None:
        """The API for a base path (leading /) or the first one with that title."""
        if base_path.startswith("/"):
            return await self._store.get(self._doc_id(namespace, base_path))
        return next((d for d in await self._all(namespace) if _title(d) == base_path), None)

    async def _save(self, namespace: str, existing: dict[str, Any] | None, swagger: dict[str, Any]) -> None:
        doc = {"_id": existing["_id"] if existing else self._doc_id(namespace, swagger["basePath"]),
               "entityType": ENTITY_TYPE, "namespace": namespace, "name": normalise(swagger["basePath"]),
               "swagger": swagger, "updated": now_ms()}
        if existing:
            doc["_rev"] = existing["_rev"]
        await self._store.put(doc)

    # --- createApi ------------------------------------------------------------------------------------------------
    async def create(self, identity: Identity | None, params: dict[str, Any], api_host: str) -> dict[str, Any]:
        if identity is None:
            raise ApiFailure(NO_KEY)
        request = parse_create(params)
        response_type = params.get("responsetype")
        response_type = response_type if isinstance(response_type, str) and response_type else "json"
        for attempt in range(RETRIES):
            try:
                if isinstance(request, dict):
                    swagger = await self._replace(identity.namespace, request)
                else:
                    swagger = await self._add(identity.namespace, with_namespace(request, identity.namespace),
                                              response_type)
                return api_value(api_host, identity.uuid, swagger)
            except Conflict:
                if attempt == RETRIES - 1:
                    raise ApiFailure(f"{CREATE_FAILURE}the API changed while it was updated; try again.") from None
        raise AssertionError("unreachable")

    async def _replace(self, namespace: str, swagger: dict[str, Any]) -> dict[str, Any]:
        """Form B: the document replaces the API of its base path (stored as given)."""
        swagger = copy_of(swagger)
        check_shape(swagger)                    # stored only if every reader can walk it
        check_swagger(copy_of(swagger))
        check_answerable(swagger)
        await self._save(namespace, await self._store.get(self._doc_id(namespace, swagger["basePath"])), swagger)
        return swagger

    async def _add(self, namespace: str, endpoint: Endpoint, response_type: str) -> dict[str, Any]:
        """Form A: the operation joins the API of its base path (made on first use) or of the API so titled."""
        existing = await self._find(namespace, endpoint.base_path)
        if existing is None and not endpoint.base_path.startswith("/"):
            raise ApiFailure(f"{CREATE_FAILURE}API '{endpoint.base_path}' does not exist; an API is made with a base "
                             "path that begins with '/'.")
        if existing is not None:
            swagger = copy_of(existing["swagger"])
            try:
                check_shape(swagger)            # stored before createApi checked shapes: not merged into blindly
            except ApiFailure as failure:
                raise ApiFailure(f"{CREATE_FAILURE}The API '{endpoint.base_path}' cannot take an operation: "
                                 f"{str(failure).removeprefix(CREATE_FAILURE)} Replace it with a swagger document, or "
                                 "delete it.") from None
            endpoint = dataclasses.replace(endpoint, base_path=str(swagger.get("basePath", endpoint.base_path)))
        else:
            swagger = base_swagger(endpoint.base_path, endpoint.api_name)
        add_endpoint(swagger, endpoint, response_type)
        check_answerable(swagger)
        await self._save(namespace, existing, swagger)
        return swagger

    # --- getApi ---------------------------------------------------------------------------------------------------
    async def get(self, identity: Identity | None, params: dict[str, Any], api_host: str) -> dict[str, Any]:
        if identity is None:
            raise ApiFailure(INVALID_AUTH)
        docs = await self._all(identity.namespace)
        base_path = params.get("basepath")
        if isinstance(base_path, str) and base_path:
            if base_path.startswith("/"):
                docs = [d for d in docs if d.get("name") == normalise(base_path)]
            else:
                docs = [d for d in docs if _title(d) == base_path]
        # A document stored before createApi refused them may hold NaN or a lone surrogate, which no answer can carry:
        # it is left out (deleteApi still removes it) rather than failing every list.
        docs = [d for d in docs if answerable(d["swagger"])]
        skip, limit = _number(params.get("skip")), _number(params.get("limit"))
        docs = docs[max(0, skip or 0):]
        if limit is not None:
            docs = docs[:limit] if limit >= 1 else []
        return {"apis": [{"id": NOT_USED, "key": NOT_USED, "value": api_value(api_host, identity.uuid, d["swagger"])}
                         for d in docs]}

    # --- deleteApi ------------------------------------------------------------------------------------------------
    async def delete(self, identity: Identity | None, params: dict[str, Any]) -> dict[str, Any]:
        if identity is None:
            raise ApiFailure(INVALID_AUTH)
        base_path = params.get("basepath")
        if falsy(base_path):
            raise ApiFailure("basepath is required.")
        rel_path = params.get("relpath") if not falsy(params.get("relpath")) else None
        verb = str(params["operation"]).lower() if not falsy(params.get("operation")) else None
        if verb is not None and rel_path is None:
            raise ApiFailure("When specifying an operation, the path is required.")
        for attempt in range(RETRIES):
            existing = await self._find(identity.namespace, str(base_path))
            if existing is None:
                raise ApiFailure(f"{DELETE_FAILURE}API '{base_path}' does not exist.")
            try:
                if rel_path is None:
                    await self._store.delete(existing["_id"], existing["_rev"])
                    return {}
                swagger = copy_of(existing["swagger"])
                if remove_endpoint(swagger, str(rel_path), verb):
                    await self._store.delete(existing["_id"], existing["_rev"])
                else:
                    await self._save(identity.namespace, existing, swagger)
                return {}
            except (Conflict, NotFound):
                if attempt == RETRIES - 1:
                    raise ApiFailure(f"{DELETE_FAILURE}the API changed while it was updated; try again.") from None
        raise AssertionError("unreachable")

    # --- serving a route ------------------------------------------------------------------------------------------
    async def route(self, tenant: str, rest: str, method: str) -> Routed:
        """Where `<method> /api/<tenant>/<rest>` goes (the gateway's lookup: exact resource path or that path with a
        trailing "/", then a template with {x} as one segment, then ever shorter prefixes). `rest` is percent-encoded
        as sent; routes and request are compared in one rendering (`urlpath`), and the web action gets the rest of
        the path still encoded. RouteMiss when nothing matches."""
        found = await self._store.find_namespace(tenant)
        if found is None:
            raise RouteMiss(*NOT_FOUND)
        resources: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for doc in await self._all(found[1]["name"]):
            swagger = doc["swagger"]
            base = normalise(str(swagger.get("basePath", "/")))
            paths = swagger.get("paths")
            for path, item in paths.items() if isinstance(paths, dict) else ():
                if isinstance(path, str) and isinstance(item, dict):
                    resources[rendered(("" if base == "/" else base) + path, templates=True)] = (swagger, item)
        full = "/" + rendered(rest)
        match = self._match(resources, full)
        if match is None:
            raise RouteMiss(*NOT_FOUND)
        (swagger, item), unmatched = match
        cors = cors_setting(swagger)
        if method == "OPTIONS" and cors:
            return Routed(cors=True, preflight=True)
        op = operation(item, method)
        target = target_of(swagger, op) if op is not None else None
        if target is None:
            raise RouteMiss(*VERB_NOT_SUPPORTED, cors=cors)
        url = target.url
        url = url[:-len(REQUEST_PATH)] + full if url.endswith(REQUEST_PATH) else url + unmatched
        _, sep, tail = url.partition(WEB_PREFIX)
        if not sep:
            raise RouteMiss(502, "Error: The operation's target is not a web action of this deployment.", cors=cors)
        return Routed(tail.split("?", 1)[0], target.secure_key, cors, method=backend_method(target.verb, method))

    @staticmethod
    def _match(resources: dict[str, tuple[dict[str, Any], dict[str, Any]]], full: str
               ) -> tuple[tuple[dict[str, Any], dict[str, Any]], str] | None:
        candidate = full
        while True:
            if candidate in resources:
                return resources[candidate], full[len(candidate):]
            # A resource ending in "/" (`wsk api create /shop / get ...`: the API's own root) is also the path without
            # that slash and its prefix, as the gateway's lookup takes `key == path .. "/"`.
            if not candidate.endswith("/") and candidate + "/" in resources:
                return resources[candidate + "/"], full[len(candidate):]
            for path, resource in resources.items():
                if "{" in path and _template(path).fullmatch(candidate):
                    return resource, full[len(candidate):]
            if candidate in ("", "/"):
                return None
            candidate = candidate.rsplit("/", 1)[0] or "/"
