"""CORS for the REST API (docs/openwhisk.md §1.1; OpenWhisk `CorsSettings.RestAPIs`): every /api/v1 answer carries the
headers, and an OPTIONS request there is answered 200 without authentication. Web actions decide their own CORS."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from whisk.api.auth import API
from whisk.controller.web import CORS_ALLOW_HEADERS, WEB_PREFIX

HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
    "Access-Control-Allow-Methods": "GET, DELETE, POST, PUT, HEAD",
}


def _rest(path: str) -> bool:
    return (path == API or path.startswith(API + "/")) and not path.startswith(WEB_PREFIX)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _rest(request.path):
        return await handler(request)
    if request.method == "OPTIONS":
        return web.Response(text="OK", headers=HEADERS)
    response = await handler(request)
    response.headers.update(HEADERS)
    return response
