"""Basic authentication (docs/openwhisk.md §1.2; OpenWhisk `CTL/BasicAuthenticationDirective.scala`): username = the
key's uuid, password = the 64-character key. Everything under /api/v1 needs it except the API info, its swagger and
web actions (where valid credentials are optional and invalid ones mean anonymous)."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web
from aiohttp.typedefs import Handler

from whisk.api.auth_failures import TOO_MANY
from whisk.api.keys import AUTH_FAILURES, IDENTITY, SUBJECTS
from whisk.controller.web import WEB_PREFIX
from whisk.entities.errors import Throttled, Unauthenticated
from whisk.entities.identity import Identity

API = "/api/v1"
OPEN = frozenset({"/api/v1", "/api/v1/", "/api/v1/api-docs", "/api/v1/api-docs/", "/api/v1/docs", "/api/v1/docs/",
                  "/api/v1/docs/index.html"})
MISSING = "The resource requires authentication, which was not supplied with the request"
INVALID = "The supplied authentication is invalid"
THROTTLED = "whisk.auth_throttled"     # request[...]: credentials not checked, the client failed too often


def credentials(request: web.Request) -> tuple[str, str] | None:
    """(uuid, key) from a Basic Authorization header; None when absent or of another scheme (Pekko's basic-auth
    directive sees no credentials in a `Bearer` header: 401 "requires authentication"); ("", "") when malformed."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")
    uuid, sep, key = decoded.partition(":")
    return (uuid, key) if sep else ("", "")


async def identify(request: web.Request, creds: tuple[str, str] | None) -> Identity | None:
    """The identity the request's `credentials` name, or None (none given, or invalid). Invalid ones count against
    the client's address; while that address has failed too often, only keys already verified are recognized."""
    if creds is None or not creds[0]:
        return None                                   # none, or not Basic uuid:key (no key was tried)
    failures = request.app.get(AUTH_FAILURES)
    subjects = request.app[SUBJECTS]
    if failures is not None and failures.blocks(request):
        identity = subjects.verified(*creds)
        if identity is None:
            request[THROTTLED] = True
        return identity
    identity = await subjects.authenticate(*creds)
    if identity is None and failures is not None:
        failures.failed(failures.client_of(request))
    return identity


@web.middleware
async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(WEB_PREFIX):
        identity = await identify(request, credentials(request))   # invalid (or throttled) credentials: anonymous
        if identity is not None:
            request[IDENTITY] = identity
    elif (path == API or path.startswith(API + "/")) and path not in OPEN:
        creds = credentials(request)
        if creds is None:
            raise Unauthenticated(MISSING)
        identity = await identify(request, creds)
        if identity is None:
            if request.get(THROTTLED):
                raise Throttled(TOO_MANY)
            raise Unauthenticated(INVALID)
        request[IDENTITY] = identity
    return await handler(request)
