"""The API gateway's HTTP edge (docs/openwhisk.md §1.13): the management calls the `wsk` CLI and the openwhisk npm
client make to `/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}[.http]`, and the routes they create,
served at `/api/{tenant}/{base path}{relative path}` by forwarding to the route's web action in process.

Management answers are 200 JSON, refusals 502 `{"error": ...}` (what both clients read as the reason); route misses
are the gateway's `{"status", "message"}` bodies.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from whisk.api import headers as header_values
from whisk.api.auth import credentials, identify
from whisk.api.body import parse_body, read_body, reply
from whisk.api.errors import error_response
from whisk.api.keys import IDENTITY, SERVICES, SETTINGS
from whisk.api.web import raw_rest, respond
from whisk.controller.apidoc import ApiFailure
from whisk.controller.apigw import RouteMiss
from whisk.controller.web import WebRequest, cors_allowing
from whisk.entities.action import RESERVED
from whisk.entities.errors import BackendUnavailable, Invalid, WhiskError, http_status

# Routes (mounted by whisk/api/app.py): the management calls with any extension or none, the web route's verbs; the
# routes under a tenant, which is never "v1" (that is the REST API's).
MANAGE = ("/api/v1/web/whisk.system/apimgmt/{op:(?:createApi|getApi|deleteApi)}"
          "{ext:(?:\\.(?:http|json|html|text|svg))?}{rest:(?:/.*)?}")
ROUTE = "/api/{tenant:(?!v1/)[A-Za-z0-9-]+}/{rest:.*}"
# Parameters upstream binds to the apimgmt package (`final`): a request may not set them.
BOUND = frozenset({"gwUrl", "gwUrlV2", "gwUser", "gwPwd"})
CORS_METHODS = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
# What the gateway takes off an answer when the API disables CORS (`cors.lua` replaceHeaders).
NO_CORS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
           "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers", "Access-Control-Max-Age")


def api_host(request: web.Request) -> str:
    """Where clients reach this server: WHISK_API_HOST, else the request's own scheme and host."""
    configured = request.app[SETTINGS].api_host
    if configured:
        return configured.rstrip("/")
    scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
    return f"{scheme}://{request.host}"


async def _params(request: web.Request) -> dict[str, Any]:
    """Query parameters overlaid by a JSON object body's fields (as the web action got them upstream)."""
    params: dict[str, Any] = dict(request.query)
    raw = await read_body(request, request.app[SETTINGS].max_payload_size)
    if raw.strip():
        body = parse_body(raw)
        if isinstance(body, dict):
            params.update(body)
    if any(k.startswith("__ow_") or k in BOUND for k in params):
        raise Invalid(RESERVED)
    return params


async def manage(request: web.Request) -> web.Response:
    """Upstream these are web actions without `web-custom-options`, so a page of another origin can call them: every
    answer carries the web route's CORS headers, and an OPTIONS preflight is answered 200 without running them."""
    cors = CIMultiDict(cors_allowing(request.headers.get("Access-Control-Request-Headers")))
    if request.method == "OPTIONS":
        return web.Response(status=200, headers=cors)
    try:
        response = await _manage(request)
    except WhiskError as exc:
        return error_response(request, http_status(exc), str(exc), cors)  # type: ignore[arg-type]
    response.headers.update(cors)
    return response


async def _manage(request: web.Request) -> web.Response:
    services = request.app.get(SERVICES)
    if services is None:
        raise BackendUnavailable("API management is not available on this server.")
    apis = services.apis
    params = await _params(request)
    identity = request.get(IDENTITY)
    op = request.match_info["op"]
    try:
        if op == "createApi":
            body = await apis.create(identity, params, api_host(request))
        elif op == "getApi":
            body = await apis.get(identity, params, api_host(request))
        else:
            body = await apis.delete(identity, params)
    except ApiFailure as failure:
        return reply({"error": str(failure)}, status=502)
    return reply(body)


def _cors(request: web.Request) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": request.headers.get("Origin", "*"),
            "Access-Control-Allow-Methods": CORS_METHODS, "Access-Control-Allow-Credentials": "true"}


def _vary_on_origin(headers: CIMultiDict[str]) -> None:
    """The allowed origin is the request's own, so the answer varies with `Origin` and says so (Fetch standard,
    "CORS protocol and HTTP caches"); else a browser's cache hands an answer kept for one page's origin to a page of
    another, which then refuses it. Stricter than the gateway, whose `cors.lua` leaves `Vary` as the action set it."""
    given = [v.strip() for value in headers.getall("Vary", ()) for v in value.split(",") if v.strip()]
    if "*" in given or any(v.lower() == "origin" for v in given):
        return
    headers.popall("Vary", None)
    headers["Vary"] = ", ".join([*given, "Origin"])


def _forwarded_url(request: web.Request) -> str:
    """The URL the caller used, as the gateway's routing.lua tells the action: a proxy's `X-Forwarded-Proto`, `-Host`,
    `-Prefix` and `-Uri` over the request's own scheme, host and target (nginx in front terminates TLS, and the action
    must see the https URL its caller saw)."""
    given = request.headers.get
    return (f"{given('X-Forwarded-Proto') or request.scheme}://{given('X-Forwarded-Host') or request.host}"
            f"{given('X-Forwarded-Prefix') or ''}{given('X-Forwarded-Uri') or request.raw_path}")


async def serve_route(request: web.Request) -> web.Response:
    """A request to a created route: the gateway's lookup, then the web action with the gateway's headers."""
    services = request.app.get(SERVICES)
    if services is None:
        raise BackendUnavailable("API routes are not available on this server.")
    apis = services.apis
    try:
        tenant = request.match_info["tenant"]
        rest = raw_rest(request, f"/api/{tenant}/", request.match_info["rest"])
        routed = await apis.route(tenant, rest, request.method.upper())
    except RouteMiss as miss:
        missed = reply({"status": miss.status, "message": miss.message}, status=miss.status)
        if miss.cors:
            missed.headers.update(_cors(request))
            _vary_on_origin(missed.headers)
        return missed
    cors = _cors(request) if routed.cors else {}
    if routed.preflight:
        # The gateway answers a preflight itself, allowing the headers the browser asks for (`cors.lua`).
        asked = request.headers.get("Access-Control-Request-Headers")
        if asked is not None:
            cors["Access-Control-Allow-Headers"] = asked
        preflight = web.Response(status=200, headers=cors)
        _vary_on_origin(preflight.headers)
        return preflight
    body = await read_body(request, request.app[SETTINGS].max_payload_size)
    headers = [(k, v) for k, v in header_values.items(request.headers.items())
               if not (routed.secure_key is not None and k.lower() == "x-require-whisk-auth")]
    headers.append(("X-Forwarded-Url", _forwarded_url(request)))
    if routed.secure_key is not None:
        headers.append(("X-Require-Whisk-Auth", routed.secure_key))
    forwarded = WebRequest(method=routed.method or request.method.upper(), tail=routed.tail, headers=tuple(headers),
                           query=tuple(request.query.items()), query_string=request.rel_url.raw_query_string,
                           body=body, user=await identify(request, credentials(request)))
    try:
        response = await respond(request, forwarded)
    except WhiskError as exc:
        response = error_response(request, http_status(exc), str(exc), CIMultiDict())  # type: ignore[arg-type]
    for name, value in cors.items():
        response.headers[name] = value
    if cors:
        _vary_on_origin(response.headers)
    if routed.cors is False:
        for name in NO_CORS:
            response.headers.popall(name, None)
    return response
