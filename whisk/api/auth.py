"""Basic authentication (spec §1.2; OpenWhisk `CTL/BasicAuthenticationDirective.scala`): username = the key's
uuid, password = the 64-character key. Everything under /api/v1 needs it except the API info, its swagger and
web actions (where valid credentials are optional and invalid ones mean anonymous)."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web
from aiohttp.typedefs import Handler

from whisk.api.keys import IDENTITY, SUBJECTS
from whisk.entities.errors import Unauthenticated
from whisk.entities.identity import Identity

API = "/api/v1"
WEB = "/api/v1/web/"
OPEN = frozenset({"/api/v1", "/api/v1/", "/api/v1/api-docs", "/api/v1/api-docs/", "/api/v1/docs", "/api/v1/docs/",
                  "/api/v1/docs/index.html"})
MISSING = "The resource requires authentication, which was not supplied with the request"
INVALID = "The supplied authentication is invalid"


def credentials(request: web.Request) -> tuple[str, str] | None:
    """(uuid, key) from a Basic Authorization header; None when absent; ("", "") when malformed."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return ("", "")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")
    uuid, sep, key = decoded.partition(":")
    return (uuid, key) if sep else ("", "")


async def identify(request: web.Request) -> Identity | None:
    creds = credentials(request)
    if creds is None or not creds[0]:
        return None
    return await request.app[SUBJECTS].authenticate(*creds)


@web.middleware
async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(WEB):
        identity = await identify(request)
        if identity is not None:
            request[IDENTITY] = identity
    elif (path == API or path.startswith(API + "/")) and path not in OPEN:
        if credentials(request) is None:
            raise Unauthenticated(MISSING)
        identity = await identify(request)
        if identity is None:
            raise Unauthenticated(INVALID)
        request[IDENTITY] = identity
    return await handler(request)
