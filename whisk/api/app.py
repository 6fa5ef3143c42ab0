"""The controller's HTTP application: middlewares, the route table of spec §1.5 and §1.14, and the services behind it.

`make_app(settings, store)` may get the store later (roles.py opens it in a cleanup context and sets app[STORE]);
the entity service and the subjects are then built on startup, after every cleanup context has entered.
Activation routes (invoke, fire, web) are `whisk.api.activate`'s.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from whisk.api import activate, apigw, collections as c, info, playground
from whisk.api.auth import basic_auth
from whisk.api.cors import cors
from whisk.api.errors import openwhisk_errors, transaction_ids
from whisk.api.keys import ENTITIES, MANIFEST, SETTINGS, STORE, SUBJECTS
from whisk.config import Settings
from whisk.controller.entities import Entities
from whisk.controller.limits import system_limits
from whisk.controller.subjects import Subjects
from whisk.entities.errors import Invalid
from whisk.store.base import Store

log = structlog.get_logger(__name__)

NS = "/api/v1/namespaces/{namespace}"
# Methods each entity collection answers on /{collection}/{name}; anything else is 405.
ENTITY_METHODS = {
    "actions": ("GET", "PUT", "DELETE", "POST"),
    "triggers": ("GET", "PUT", "DELETE", "POST"),
    "rules": ("GET", "PUT", "DELETE", "POST"),
    "packages": ("GET", "PUT", "DELETE"),
}
WEB_METHODS = ("GET", "DELETE", "POST", "PUT", "HEAD", "OPTIONS", "PATCH")
BODY_MARGIN = 1024 * 1024
PEKKO_MAX_BODY = 50 * 1024 * 1024


def _activation_handler(name: str) -> Any:
    """The activation routes as `whisk.api.activate` provides them; 503 (`not_yet`) until it does."""
    return getattr(activate, name, activate.not_yet)


def _load_manifest() -> Any:
    try:
        from whisk.runtimes.manifest import load_manifest
        return load_manifest()
    except (ImportError, ValueError) as exc:
        log.warning("api.no_runtime_manifest", error=str(exc))
        return None


def _unknown_kind(kind: str) -> str:
    raise Invalid(f"The specified runtime '{kind}' is not supported by this platform. Valid values are: "
                  "'blackbox', 'sequence'.")


def _build_services(app: web.Application) -> None:
    settings, store, manifest = app[SETTINGS], app[STORE], app[MANIFEST]
    system = system_limits(settings)
    resolve_kind = manifest.resolve if manifest is not None else _unknown_kind
    app[ENTITIES] = Entities(store, system, resolve_kind)
    app[SUBJECTS] = Subjects(store, system)


async def _services_on_startup(app: web.Application) -> None:
    if ENTITIES not in app:
        _build_services(app)


def make_app(settings: Settings, store: Store | None, *, manifest: Any = None) -> web.Application:
    """The whole controller REST API. `manifest` (whisk.runtimes.manifest.Manifest) defaults to the packaged one."""
    max_body = max(PEKKO_MAX_BODY, settings.max_exec_size + 2 * settings.max_parameter_size + BODY_MARGIN)
    app = web.Application(middlewares=[transaction_ids, cors, openwhisk_errors, basic_auth], client_max_size=max_body)
    app[SETTINGS] = settings
    app[MANIFEST] = manifest if manifest is not None else _load_manifest()
    if store is not None:
        app[STORE] = store
        _build_services(app)
    app.on_startup.append(_services_on_startup)
    app.on_startup.append(activate.start_services)    # after the entity service: launcher, firing, web, APIs
    app.on_shutdown.append(activate.stop_services)
    add_routes(app.router)
    if settings.serves_playground:
        playground.add_routes(app.router)
    return app


def add_routes(router: web.UrlDispatcher) -> None:
    # No HEAD for GET routes: the controller runs with Pekko's transparent-head-requests = off, so a HEAD there is
    # 405 (web actions accept HEAD themselves).
    # §1.14: no authentication.
    router.add_get("/", info.controller_info, allow_head=False)
    router.add_get("/ping", info.ping, allow_head=False)
    router.add_get("/api-docs", info.info_docs, allow_head=False)
    for path in ("/api/v1", "/api/v1/"):
        router.add_get(path, info.api_info, allow_head=False)
    router.add_get("/api/v1/api-docs", info.api_docs, allow_head=False)
    for path in (info.DOCS_UI, info.DOCS_UI + "/"):
        router.add_get(path, info.docs_redirect, allow_head=False)
    router.add_get(info.DOCS_PAGE, info.docs_page, allow_head=False)
    # Web actions: every method, credentials optional (spec §1.12); the API gateway's management calls first.
    router.add_route("*", apigw.MANAGE, apigw.manage)
    # The verbs OpenWhisk's web route allows (`allowedOperations`); any other is 405, as there.
    web_resource = router.add_resource("/api/v1/web/{tail:.*}")
    for method in WEB_METHODS:
        web_resource.add_route(method, _activation_handler("web_action"))
    # Namespaces and limits.
    for path in ("/api/v1/namespaces", "/api/v1/namespaces/"):
        router.add_get(path, c.list_namespaces, allow_head=False)
    for path in (f"{NS}/limits", f"{NS}/limits/"):      # Pekko pathEndOrSingleSlash
        router.add_get(path, c.get_limits, allow_head=False)
    router.add_get(f"{NS}/limits/{{entity:.+}}", c.get_limits_entity, allow_head=False)   # 400; other verbs 405
    # Activations.
    for path in (f"{NS}/activations", f"{NS}/activations/"):
        router.add_get(path, c.list_activations, allow_head=False)
    for path in (f"{NS}/activations/{{id}}", f"{NS}/activations/{{id}}/",
                 f"{NS}/activations/{{id}}/{{part:result|logs}}"):
        router.add_get(path, c.get_activation, allow_head=False)
    # Actions inside packages: GET .../actions/{pkg}/ lists them; the rest address one action.
    package_list = router.add_resource(f"{NS}/{{collection:actions}}/{{package}}/")
    package_list.add_route("GET", c.list_package_actions)
    for method in ("PUT", "DELETE", "POST"):
        package_list.add_route(method, c.package_path_other_method)
    packaged = router.add_resource(f"{NS}/{{collection:actions}}/{{package}}/{{name}}")
    _entity_routes(packaged, "actions")
    # The four entity collections.
    for collection, methods in ENTITY_METHODS.items():
        for path in (f"{NS}/{{collection:{collection}}}", f"{NS}/{{collection:{collection}}}/"):
            router.add_get(path, c.list_entities, allow_head=False)
        _entity_routes(router.add_resource(f"{NS}/{{collection:{collection}}}/{{name}}"), collection)
    # Routes made by `wsk api create` (APIGW.md), under /api/<tenant uuid>/: last, so /api/v1 always wins.
    router.add_route("*", apigw.ROUTE, apigw.serve_route)


def _entity_routes(resource: web.Resource, collection: str) -> None:
    handlers = {"GET": c.get_entity, "PUT": c.put_entity, "DELETE": c.delete_entity}
    post = {"actions": _activation_handler("invoke_action"), "triggers": _activation_handler("fire_trigger"),
            "rules": c.set_rule_status}
    if collection in post:
        handlers["POST"] = post[collection]
    for method, handler in handlers.items():
        resource.add_route(method, handler)
