"""CORS for the REST API (docs/openwhisk.md §1.1; OpenWhisk `CorsSettings.RestAPIs`): every /api/v1 answer carries the
headers, and an OPTIONS request there is answered 200 without authentication. Web actions decide their own CORS.

Two additions to OpenWhisk's, for a page of another origin (the playground, on a port of its own): `GET /` (the
runtimes) carries the headers too, and the activation id header is exposed, so that the page can read which
activation an invoke started when the answer is a bare result."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from whisk.api.auth import API
from whisk.controller.web import ACTIVATION_HEADER, CORS_ALLOW_HEADERS, WEB_PREFIX

HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
    "Access-Control-Allow-Methods": "GET, DELETE, POST, PUT, HEAD",
    "Access-Control-Expose-Headers": ACTIVATION_HEADER,
}


def _rest(path: str) -> bool:
    # `/` too (its runtimes, public): the playground's page reads them from another origin.
    return path == "/" or (path == API or path.startswith(API + "/")) and not path.startswith(WEB_PREFIX)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _rest(request.path):
        return await handler(request)
    if request.method == "OPTIONS":
        return web.Response(text="OK", headers=HEADERS)
    response = await handler(request)
    response.headers.update(HEADERS)
    return response
