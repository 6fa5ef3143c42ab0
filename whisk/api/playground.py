"""The browser playground: three static files (`static/`) and one small settings document, served on a port of its
own (`WHISK_PLAYGROUND_PORT`, 3232 as in OpenWhisk's standalone), with a redirect from `/playground` on the API's.

Why a port of its own: the web actions' pages, whose HTML any tenant writes, are served on the API's origin, and
the page keeps the key in the tab's `sessionStorage`, which every page of the same origin can read. Another port is
another origin, so the browser keeps the page's storage and window from tenants' pages (docs/operations.md).

The page is a client of the REST API v1 like any other: it holds a key and sends it to the API's origin only (the
Content-Security-Policy's `connect-src` names its own origin and the API's, nothing else), across origins through
the REST API's CORS (`api/cors.py`: any origin, no credentials). A standalone server hands out the well-known guest
key through `/playground/config.json`, so a newcomer can run code at once; a controller never does (its users paste
their own key). Served without authentication: nothing here reveals more than the guest key a standalone server
prints at start, and without CORS no other origin's page can read it.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

from aiohttp import web
from yarl import URL

from whisk.api.body import reply
from whisk.api.errors import not_for_actions, openwhisk_errors, transaction_ids
from whisk.api.keys import SETTINGS
from whisk.config import PLAYGROUND_PATH as PATH, Settings
from whisk.entities.errors import Invalid
from whisk.entities.identity import GUEST_KEY, GUEST_UUID

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"index.html": "text/html", "playground.js": "text/javascript", "playground.css": "text/css"}
# Self and the API only, no inline script or style, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {api}; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
BAD_HOST = "The request's Host header is not valid."
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-cache"}


@cache
def _file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def at_port(request: web.Request, port: int) -> URL:
    """The request's URL at another port of this server. A Host header that names no host and port (empty, a port
    out of range or no number) leaves none to build: the client's error, 400 (Pekko refuses an invalid Host too)."""
    try:
        return request.url.with_port(port)
    except ValueError:                           # yarl's, for the URL or the port; UnicodeError is one too
        raise Invalid(BAD_HOST) from None


def api_origin(request: web.Request) -> str:
    """The API's origin as the page's browser reaches it: the host it asked this server for, the API's port (the
    same scheme: both listen with the same TLS settings)."""
    return str(at_port(request, request.app[SETTINGS].port).origin())


def _headers(request: web.Request) -> dict[str, str]:
    return HEADERS | {"Content-Security-Policy": CSP.format(api=api_origin(request))}


async def to_page(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(f"{PATH}/")


async def static(request: web.Request) -> web.Response:
    name = request.match_info.get("file") or "index.html"
    if name not in FILES:
        raise web.HTTPNotFound()
    return web.Response(body=_file(name), content_type=FILES[name], charset="utf-8", headers=_headers(request))


@not_for_actions                            # a browser's page asks, not a tenant's code
async def config(request: web.Request) -> web.Response:
    """What the page starts with: where the API is, and the guest key on a standalone server that seeded the guest
    subject."""
    settings = request.app[SETTINGS]
    body: dict[str, str] = {"role": settings.role, "api": api_origin(request)}
    if settings.role == "standalone" and settings.bootstrap_users:
        body["key"] = f"{GUEST_UUID}:{GUEST_KEY}"
    return reply(body, headers=_headers(request) | {"Cache-Control": "no-store"})


def make_app(settings: Settings) -> web.Application:
    """The playground's own server: the page, its files and its settings, nothing of the API."""
    app = web.Application(middlewares=[transaction_ids, openwhisk_errors])
    app[SETTINGS] = settings
    router = app.router
    for path in ("/", PATH):
        router.add_get(path, to_page, allow_head=False)
    router.add_get(f"{PATH}/config.json", config, allow_head=False)
    router.add_get(f"{PATH}/", static, allow_head=False)
    router.add_get(f"{PATH}/{{file:[a-z]+\\.(?:html|js|css)}}", static, allow_head=False)
    return app


# Set on the API's app once the playground's own server listens (roles.py): until then, and when its port could not
# be had, the API's /playground is not found rather than a way to whatever else answers on that port.
SERVED = web.AppKey("playground_served", asyncio.Event)


async def to_own_port(request: web.Request) -> web.Response:
    """`/playground` on the API's port: the same path on the playground's (an older bookmark, a typed URL). Not
    permanent: where it leads, and whether anything of this server is there, are the settings of this start."""
    if not request.app[SERVED].is_set():
        raise web.HTTPNotFound()
    port = request.app[SETTINGS].playground_port
    raise web.HTTPTemporaryRedirect(str(at_port(request, port)))


def add_redirects(app: web.Application) -> None:
    """The API server's routes to the playground's own port."""
    app[SERVED] = asyncio.Event()
    app.router.add_get(PATH, to_own_port, allow_head=False)
    app.router.add_get(f"{PATH}/{{tail:.*}}", to_own_port, allow_head=False)
