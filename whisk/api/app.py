"""The controller's HTTP application: middlewares and the route table (docs/openwhisk.md §1.5 and §1.14).

The services behind the routes are built elsewhere (`whisk.controller.services`, opened by roles.py once the store
and the bus are) and handed in by `provide`. Activation routes (invoke, fire) are `whisk.api.activate`'s, web
actions `whisk.api.web`'s.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from whisk.api import activate, apigw, collections as c, info, playground
from whisk.api.auth import basic_auth
from whisk.api.auth_failures import AuthFailures
from whisk.api.cors import cors
from whisk.api.errors import openwhisk_errors, transaction_ids
from whisk.api.keys import AUTH_FAILURES, ENTITIES, MANIFEST, SERVICES, SETTINGS, SUBJECTS, grace_left
from whisk.api.web import web_action
from whisk.config import Settings
from whisk.controller.services import ControllerServices
from whisk.runtimes.manifest import Manifest

NS = "/api/v1/namespaces/{namespace}"
ENTITY_COLLECTIONS = ("actions", "triggers", "rules", "packages")
WEB_METHODS = ("GET", "DELETE", "POST", "PUT", "HEAD", "OPTIONS", "PATCH")
BODY_MARGIN = 1024 * 1024
PEKKO_MAX_BODY = 50 * 1024 * 1024


def provide(app: web.Application, services: ControllerServices) -> None:
    """Hand the controller's services, once built (roles.py), to the routes."""
    app[SERVICES] = services
    app[ENTITIES] = services.entities
    app[SUBJECTS] = services.subjects


async def _stop_work(app: web.Application) -> None:
    """When the server begins its shutdown (before in-flight requests are awaited): no new alarm fires, and the
    launcher's compositions and trigger records end or are cancelled within what is left of the grace."""
    services = app.get(SERVICES)
    if services is not None:
        await services.stop_work(grace_left(app, services.shutdown_grace_s))


def make_app(settings: Settings, manifest: Manifest | None = None) -> web.Application:
    """The whole controller REST API; its services arrive through `provide` once they are built."""
    max_body = max(PEKKO_MAX_BODY, settings.max_exec_size + 2 * settings.max_parameter_size + BODY_MARGIN)
    app = web.Application(middlewares=[transaction_ids, cors, openwhisk_errors, basic_auth], client_max_size=max_body)
    app[SETTINGS] = settings
    app[AUTH_FAILURES] = AuthFailures.from_settings(settings)
    if manifest is not None:
        app[MANIFEST] = manifest
    app.on_shutdown.append(_stop_work)
    add_routes(app.router)
    if settings.serves_playground:
        playground.add_redirects(app)
    return app


def add_routes(router: web.UrlDispatcher) -> None:
    # No HEAD for GET routes: the controller runs with Pekko's transparent-head-requests = off, so a HEAD there is
    # 405 (web actions accept HEAD themselves).
    # docs/openwhisk.md §1.14: no authentication.
    router.add_get("/", info.controller_info, allow_head=False)
    router.add_get("/ping", info.ping, allow_head=False)
    for path in ("/api/v1", "/api/v1/"):
        router.add_get(path, info.api_info, allow_head=False)
    for path in ("", "/"):                     # the swagger documents: Pekko's pathEndOrSingleSlash
        router.add_get(f"/api-docs{path}", info.info_docs, allow_head=False)
        router.add_get(f"/api/v1/api-docs{path}", info.api_docs, allow_head=False)
    for path in (info.DOCS_UI, info.DOCS_UI + "/"):
        router.add_get(path, info.docs_redirect, allow_head=False)
    router.add_get(info.DOCS_PAGE, info.docs_page, allow_head=False)
    # Web actions: every method, credentials optional (docs/openwhisk.md §1.12); the API gateway's management calls
    # first, with the verbs of the web route they are upstream (any other falls through to it: 405).
    manage = router.add_resource(apigw.MANAGE)
    for method in WEB_METHODS:
        manage.add_route(method, apigw.manage)
    # The verbs OpenWhisk's web route allows (`allowedOperations`); any other is 405, as there.
    web_resource = router.add_resource("/api/v1/web/{tail:.*}")
    for method in WEB_METHODS:
        web_resource.add_route(method, web_action)
    # The four entity collections, first under /api/v1/namespaces: aiohttp tries the resources under one prefix in
    # the order they were added, and an invoke was trying fifteen before its own. No path matches two of them, so
    # the order decides nothing else.
    for collection in ENTITY_COLLECTIONS:
        for path in (f"{NS}/{{collection:{collection}}}", f"{NS}/{{collection:{collection}}}/"):
            router.add_get(path, c.list_entities, allow_head=False)
        _entity_routes(router.add_resource(f"{NS}/{{collection:{collection}}}/{{name}}"), collection)
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
    router.add_get(f"{NS}/activations/{{id}}/{{tail:.+}}", c.activation_other_path, allow_head=False)   # 400/403/404
    # Actions inside packages: GET .../actions/{pkg}/ lists them; the rest address one action.
    package_list = router.add_resource(f"{NS}/{{collection:actions}}/{{package}}/")
    package_list.add_route("GET", c.list_package_actions)
    for method in ("PUT", "DELETE", "POST"):
        package_list.add_route(method, c.package_path_other_method)
    packaged = router.add_resource(f"{NS}/{{collection:actions}}/{{package}}/{{name}}")
    _entity_routes(packaged, "actions")
    # Routes made by `wsk api create` (docs/openwhisk.md §1.13), under /api/<tenant uuid>/: last, so /api/v1 always
    # wins.
    router.add_route("*", apigw.ROUTE, apigw.serve_route)


def _entity_routes(resource: web.Resource, collection: str) -> None:
    """GET, PUT and DELETE on /{collection}/{name}, and POST where it means something (invoke, fire, enable or
    disable: not on a package); aiohttp answers any other method 405."""
    handlers: dict[str, Handler] = {"GET": c.get_entity, "PUT": c.put_entity, "DELETE": c.delete_entity}
    post = {"actions": activate.invoke_action, "triggers": activate.fire_trigger, "rules": c.set_rule_status}
    if collection in post:
        handlers["POST"] = post[collection]
    for method, handler in handlers.items():
        resource.add_route(method, handler)
