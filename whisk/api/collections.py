"""One generic handler per verb for the entity collections (actions, triggers, rules, packages), plus the
namespaces, limits and activations routes (docs/openwhisk.md §1.5). Handlers parse the URL and query into entities and
call the controller's services; they hold no per-collection logic."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from whisk.api import activate
from whisk.api.body import read_json, reply, reply_array
from whisk.api.keys import ENTITIES, IDENTITY
from whisk.api.query import epoch_ms, flag, malformed, paging
from whisk.controller.activations import ActivationFilter
from whisk.controller.collection import Collection
from whisk.controller.entitlement import READ, Resource
from whisk.controller.entities import Entities
from whisk.entities.activation import Activation, parse_activation_id
from whisk.entities.errors import Invalid, NotFound
from whisk.entities.identity import Identity
from whisk.entities.names import EntityName, EntityPath


def _context(request: web.Request) -> tuple[Entities, Identity, EntityPath]:
    entities = request.app[ENTITIES]
    identity = request[IDENTITY]
    return entities, identity, entities.namespace(identity, request.match_info["namespace"])


def _address(request: web.Request) -> tuple[Entities, Identity, EntityPath, str]:
    """(service, caller, "ns" or "ns/pkg", name) of an entity route."""
    entities, identity, path = _context(request)
    package = request.match_info.get("package")
    if package is not None:
        path = path.add(EntityName(package).value)
    return entities, identity, path, request.match_info["name"]


def _collection(request: web.Request, entities: Entities) -> Collection:
    return entities.collections[request.match_info["collection"]]


# --- entity collections --------------------------------------------------------------------------------------------

async def list_entities(request: web.Request) -> web.Response:
    entities, identity, namespace = _context(request)
    collection = _collection(request, entities)
    await entities.entitlement.authorize(identity, READ, Resource(namespace, collection.name))
    skip, limit, count = paging(request, collection.name)
    return reply(await collection.list_in(identity, namespace, skip, limit, count))


async def list_package_actions(request: web.Request) -> web.Response:
    entities, identity, namespace = _context(request)
    package = request.match_info["package"]
    EntityName(package)
    return reply(await entities.actions.list_package(identity, namespace, package, lambda: paging(request, "actions")))


async def package_path_other_method(request: web.Request) -> web.Response:
    """PUT/DELETE/POST on .../actions/{pkg}/: OpenWhisk's entity route took the method (which cancels the
    method rejections) and then matched no path, so this is a 404, not a 405 (PackageActionsApiTests)."""
    _context(request)
    EntityName(request.match_info["package"])
    raise web.HTTPNotFound()


async def get_entity(request: web.Request) -> web.Response:
    entities, identity, path, name = _address(request)
    collection = _collection(request, entities)

    def options() -> dict[str, Any]:
        return {"code": flag(request, "code", True)} if collection.name == "actions" else {}

    return reply(await collection.get(identity, path, name, options))


async def put_entity(request: web.Request) -> web.Response:
    entities, identity, path, name = _address(request)
    collection = _collection(request, entities)

    async def read() -> tuple[Any, bool]:
        overwrite = flag(request, "overwrite")          # before the body, as OpenWhisk's `create` reads them
        return await read_json(request), overwrite

    return reply(await collection.put_read(identity, path, name, read))


async def delete_entity(request: web.Request) -> web.Response:
    entities, identity, path, name = _address(request)
    collection = _collection(request, entities)

    def options() -> dict[str, Any]:
        return {"force": flag(request, "force")} if collection.name == "packages" else {}

    return reply(await collection.delete(identity, path, name, options))


async def set_rule_status(request: web.Request) -> web.Response:
    entities, identity, path, name = _address(request)
    await entities.rules.set_status(identity, path, name, lambda: read_json(request))
    return web.Response(text="OK")


# --- namespaces and limits -----------------------------------------------------------------------------------------

async def list_namespaces(request: web.Request) -> web.Response:
    return reply([request[IDENTITY].namespace])


async def get_limits(request: web.Request) -> web.Response:
    return reply(await request.app[ENTITIES].limits(request[IDENTITY], request.match_info["namespace"]))


async def get_limits_entity(request: web.Request) -> web.Response:
    """GET .../limits/{anything}: CTL/Limits.scala validates every entity segment to false."""
    request.app[ENTITIES].namespace(request[IDENTITY], request.match_info["namespace"])
    raise Invalid("Inner entity level routes for limits are not yet implemented.")


# --- activations ---------------------------------------------------------------------------------------------------

def _name_filter(request: web.Request) -> str | None:
    text = request.query.get("name")
    if text is None or not text.strip():
        return None
    try:
        path = EntityPath.parse(text)
    except Invalid:
        path = None
    if path is None or len(path.segments) > 2:
        raise malformed("name", f"Parameter may be a 'simple' name or 'package-name/simple' name: {text}")
    return str(path)


async def list_activations(request: web.Request) -> web.Response:
    entities, identity, namespace = _context(request)
    await entities.entitlement.authorize(identity, READ, Resource(namespace, "activations"))
    skip, limit, count = paging(request, "activations")
    docs = flag(request, "docs")
    name, since, upto = _name_filter(request), epoch_ms(request, "since"), epoch_ms(request, "upto")
    if count and docs:
        raise Invalid("The parameter 'docs' is not permitted with 'count'.")
    f = ActivationFilter(skip=skip, limit=limit, count=count, docs=docs, name=name, since=since, upto=upto)
    listed = await entities.activations.list(identity, namespace, f)
    if docs:
        return await reply_array(listed, Activation.extended_json)
    return reply(listed)


async def activation_other_path(request: web.Request) -> web.Response:
    """GET .../activations/{id}/{anything but result or logs}: OpenWhisk validates the id and authorizes the caller
    before it matches the rest of the path (`AuthorizedRouteProvider.innerRoutes`), so a malformed id is a 400 and
    another namespace a 403 here too; then the path matches nothing, a 404."""
    entities, identity, namespace = _context(request)
    activation_id = parse_activation_id(request.match_info["id"])
    await entities.entitlement.authorize(identity, READ, Resource(namespace, "activations", activation_id))
    raise web.HTTPNotFound()


async def get_activation(request: web.Request) -> web.Response:
    entities, identity, namespace = _context(request)
    activation_id = request.match_info["id"]
    try:
        record = await entities.activations.get(identity, namespace, activation_id)
    except NotFound as missing:
        # A blocking caller may ask before its record is stored: wait for it. Read again either way: the record
        # may have been stored, and its activation closed, while the first read was under way.
        await activate.record_stored(request, identity.namespace, activation_id)
        try:
            record = await entities.activations.get(identity, namespace, activation_id)
        except NotFound:
            # Still running, or never was: 404 either way, as on OpenWhisk, whose clients poll until it is not.
            raise missing from None
    match request.match_info.get("part"):
        case "result":
            return reply(record.result_json())
        case "logs":
            return reply(record.logs_json())
        case _:
            return reply(record.extended_json())
