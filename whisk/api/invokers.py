"""Invoker routes (docs/openwhisk.md §1.14, §6.4): on controllers, `GET /invokers`, `/invokers/healthy/count` and
`/invokers/ready` read the balancer's supervision, `GET /activation` and `/activation/count` its in-flight book;
on invokers, `POST /disable`, `POST /enable` and `GET /isEnabled` (Basic auth with Settings.admin_user /
admin_password; no password configured = refused).

roles.py mounts them and hands in getters for the balancer and the invoker, which exist only once the cleanup
contexts have entered.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from whisk import logs
from whisk.api.auth import INVALID, credentials
from whisk.api.body import reply
from whisk.api.errors import error_response, not_for_actions
from whisk.api.keys import SETTINGS
from whisk.loadbalancer.base import Entry, LoadBalancer

if TYPE_CHECKING:
    from whisk.invoker.service import Invoker       # the API does not import the invoker at run time

log = structlog.get_logger(__name__)
# Anyone who reaches the port can be refused as fast as they like: the warnings are bounded (logs.Bounded).
_REFUSED = logs.Bounded()

BALANCER_GETTER: web.AppKey[Callable[[], LoadBalancer | None]] = web.AppKey("invokers_balancer")
INVOKER_GETTER: web.AppKey[Callable[[], Invoker | None]] = web.AppKey("invokers_invoker")
READINESS_FRACTION = 1.0          # OpenWhisk's whisk.loadbalancer.invoker-readiness default: 100 %


def mount_controller(app: web.Application, balancer: Callable[[], LoadBalancer | None]) -> None:
    app[BALANCER_GETTER] = balancer
    app.router.add_get("/invokers", get_invokers, allow_head=False)
    app.router.add_get("/invokers/", get_invokers, allow_head=False)      # OpenWhisk's pathEndOrSingleSlash
    app.router.add_get("/invokers/healthy/count", get_healthy_count, allow_head=False)
    app.router.add_get("/invokers/ready", get_ready, allow_head=False)
    for path in ("/activation", "/activation/"):
        app.router.add_get(path, get_activations, allow_head=False)
    app.router.add_get("/activation/count", get_activation_count, allow_head=False)


def mount_invoker(app: web.Application, invoker: Callable[[], Invoker | None]) -> None:
    app[INVOKER_GETTER] = invoker
    app.router.add_post("/disable", post_disable)
    app.router.add_post("/enable", post_enable)
    app.router.add_get("/isEnabled", get_is_enabled)


# -- controller ------------------------------------------------------------------------------------------------------

def _status(request: web.Request) -> dict[str, str]:
    balancer = request.app[BALANCER_GETTER]()
    return balancer.invokers() if balancer is not None else {}


async def get_invokers(request: web.Request) -> web.Response:
    return reply(_status(request))


async def get_healthy_count(request: web.Request) -> web.Response:
    return reply(sum(state == "up" for state in _status(request).values()))


async def get_ready(request: web.Request) -> web.Response:
    states = _status(request)
    total = len(states)
    healthy = sum(state == "up" for state in states.values())
    if total > 0 and healthy / total >= READINESS_FRACTION:
        return reply({"healthy": f"{healthy}/{total}"})
    return reply({"unhealthy": f"{total - healthy}/{total}"}, status=500)


def _in_flight(request: web.Request) -> list[Entry]:
    balancer = request.app[BALANCER_GETTER]()
    return balancer.entries() if balancer is not None else []


@not_for_actions                            # every tenant's activations in flight
async def get_activations(request: web.Request) -> web.Response:
    """`GET /activation`: this controller's activations in flight, as OpenWhisk's
    `activeActivationsByController`: [[activation id, "ns[/pkg]/name@version"], ...]."""
    return reply([[e.activation_id, e.action_path + (f"@{e.action_version}" if e.action_version else "")]
                  for e in _in_flight(request)])


@not_for_actions                            # every tenant's activity, counted
async def get_activation_count(request: web.Request) -> web.Response:
    """`GET /activation/count`: how many activations this controller has in flight."""
    return reply(len(_in_flight(request)))


# -- invoker ---------------------------------------------------------------------------------------------------------

def _admin(request: web.Request) -> Invoker | web.Response:
    """The invoker when the request carries the admin credentials; else the error response."""
    settings = request.app[SETTINGS]
    given = credentials(request)
    if not settings.admin_password or given is None or not (
            hmac.compare_digest(given[0].encode(), settings.admin_user.encode())
            and hmac.compare_digest(given[1].encode(), settings.admin_password.encode())):
        # Why, beyond the access line's 401: a probe of the admin routes is worth a warning (never what was given).
        bound = _REFUSED.fields()
        if bound is not None:
            log.warning("invoker.admin.refused", path=request.path, remote=request.remote, **bound,
                        reason="no WHISK_ADMIN_PASSWORD set" if not settings.admin_password else "wrong credentials")
        return error_response(request, 401, INVALID, headers={"WWW-Authenticate": 'Basic realm="whisk invoker"'})
    invoker = request.app[INVOKER_GETTER]()
    if invoker is None:
        return error_response(request, 503, "The invoker is not running.")
    return invoker


async def post_disable(request: web.Request) -> web.Response:
    invoker = _admin(request)
    if isinstance(invoker, web.Response):
        return invoker
    await invoker.disable()
    return web.Response(text=f"Invoker {invoker.instance} disabled.")


async def post_enable(request: web.Request) -> web.Response:
    invoker = _admin(request)
    if isinstance(invoker, web.Response):
        return invoker
    await invoker.enable()
    return web.Response(text=f"Invoker {invoker.instance} enabled.")


async def get_is_enabled(request: web.Request) -> web.Response:
    invoker = _admin(request)
    if isinstance(invoker, web.Response):
        return invoker
    return reply({"enabled": invoker.enabled})
