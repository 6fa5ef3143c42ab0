"""The browser playground at `/playground`: three static files (`static/`) and one small settings document.

The page is a client of the REST API v1 like any other: it holds a key and sends it to the origin it was served
from, nowhere else (the Content-Security-Policy's `connect-src 'self'` makes the browser refuse anything else).
A standalone server hands out the well-known guest key through `/playground/config.json`, so a newcomer can run
code at once; a controller never does (its users paste their own key). Served without authentication, like `/`:
nothing here reveals more than the guest key a standalone server prints at start.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

from whisk.api.body import reply
from whisk.api.errors import not_for_actions
from whisk.api.keys import SETTINGS
from whisk.entities.identity import GUEST_KEY, GUEST_UUID

STATIC = Path(__file__).resolve().parent / "static"
PATH = "/playground"
FILES = {"index.html": "text/html", "playground.js": "text/javascript", "playground.css": "text/css"}
# Self only, no inline script or style, no framing; the API calls go to this origin alone.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


@cache
def _file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(f"{PATH}/")


async def static(request: web.Request) -> web.Response:
    name = request.match_info.get("file") or "index.html"
    if name not in FILES:
        raise web.HTTPNotFound()
    return web.Response(body=_file(name), content_type=FILES[name], charset="utf-8", headers=HEADERS)


@not_for_actions                            # a browser's page asks, not a tenant's code
async def config(request: web.Request) -> web.Response:
    """What the page starts with: the guest key on a standalone server that seeded the guest subject, else none."""
    settings = request.app[SETTINGS]
    body: dict[str, str] = {"role": settings.role}
    if settings.role == "standalone" and settings.bootstrap_users:
        body["key"] = f"{GUEST_UUID}:{GUEST_KEY}"
    return reply(body, headers=HEADERS | {"Cache-Control": "no-store"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PATH, redirect, allow_head=False)
    router.add_get(f"{PATH}/config.json", config, allow_head=False)
    router.add_get(f"{PATH}/", static, allow_head=False)
    router.add_get(f"{PATH}/{{file:[a-z]+\\.(?:html|js|css)}}", static, allow_head=False)
