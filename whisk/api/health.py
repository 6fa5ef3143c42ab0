"""What every role serves for operators: `GET /metrics` (Prometheus text), `GET /health` (ready when every backend
it needs to serve answers its ping, else 503 naming the one that does not; discovery away is reported), and the
middleware that counts HTTP requests by route template and status (never by raw path:
`/api/v1/namespaces/{namespace}/actions/{name}`, not one series per action). `mount(app, backends)` adds all three;
roles.py calls it for every role.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from whisk import metrics
from whisk.api.body import reply
from whisk.api.errors import error_response, new_tid, not_for_actions
from whisk.api.keys import SETTINGS, TID

log = structlog.get_logger(__name__)


class Pingable(Protocol):
    async def ping(self) -> None: ...


# name -> the store, bus or discovery; None for a backend this role does not use (or has not opened yet).
Backends = Callable[[], Mapping[str, Pingable | None]]
BACKENDS: web.AppKey[Backends] = web.AppKey("health_backends")
DRAINING: web.AppKey[Callable[[], bool]] = web.AppKey("health_draining")
PING_TIMEOUT_S = 5.0
# Backends a running member serves without: reported in `/health`, never making it unready. Consul only sizes the
# cluster (pings, not discovery, make an invoker usable; a controller keeps the invokers and count it knew), and every
# member shares it: one Consul away made them all unready at once, a Kubernetes Service with no endpoint left.
SERVES_WITHOUT = frozenset({"discovery"})
UNMATCHED = "unmatched"          # 404s and 405s: scanners must not grow a series per path they try


def mount(app: web.Application, backends: Backends, *, draining: Callable[[], bool] | None = None) -> None:
    """Add /metrics, /health and the request metrics middleware (outermost, so it sees every final status)."""
    app[BACKENDS] = backends
    app[DRAINING] = draining or (lambda: False)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", get_health)
    app.middlewares.insert(0, request_metrics)


_LITERAL_GROUP = re.compile(r"\(\?P<(\w+)>([\w-]+)\)")      # `{collection:actions}` matches one word only
_routes: dict[Any, str] = {}                                  # resource -> label; the route table is finite


def route_of(request: web.Request) -> str:
    """The route template, with a parameter that can match one word only shown as that word
    (`/api/v1/namespaces/{namespace}/actions/{name}`, not `.../{collection}/{name}` for all four collections)."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED
    label = _routes.get(resource)
    if label is None:
        label = resource.canonical
        pattern = resource.get_info().get("pattern")
        if pattern is not None:
            for name, word in _LITERAL_GROUP.findall(pattern.pattern):
                label = label.replace(f"{{{name}}}", word)
        _routes[resource] = label
    return label


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in metrics.HTTP_METHODS else "other"
        metrics.observe_request(method, route_of(request), status, time.perf_counter() - start)


@not_for_actions                            # every namespace's actions and counts
async def get_metrics(request: web.Request) -> web.Response:
    # Text format 0.0.4 unless the scraper asks for OpenMetrics. Collectors read pool and balancer state, which
    # only the event loop may touch: no thread here.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encode(REGISTRY), headers={"Content-Type": content_type})


async def _ping(backend: Pingable) -> str | None:
    """None when the backend answers, else why not."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_S):
            await backend.ping()
    except TimeoutError:
        return f"no answer within {PING_TIMEOUT_S:g} s"
    except Exception as exc:  # any failure of a backend means "not ready"; the body carries it
        return str(exc) or type(exc).__name__
    return None


async def get_health(request: web.Request) -> web.Response:
    """200 `{"status": "ok", "role": ..., "backends": {...}}` when every backend answers (`"degraded"` when only
    discovery does not: SERVES_WITHOUT); else 503 with OpenWhisk's error body `{"error": "<backend> ...", "code":
    <transaction id>}` and the same `backends` map."""
    if TID not in request:
        request[TID] = new_tid()
    settings = request.app.get(SETTINGS)
    role = settings.role if settings is not None else ""
    if request.app[DRAINING]():
        return error_response(request, 503, "The server is shutting down.")
    wanted = {name: backend for name, backend in request.app[BACKENDS]().items() if backend is not None}
    names = list(wanted)
    failures = await asyncio.gather(*(_ping(wanted[name]) for name in names))
    states = {name: failure or "ok" for name, failure in zip(names, failures)}
    failing = [f"{name} ({failure})" for name, failure in zip(names, failures)
               if failure is not None and name not in SERVES_WITHOUT]
    if failing:
        log.warning("health.failing", role=role, backends=states)
        body = {"error": f"Backend not ready: {', '.join(failing)}", "code": request[TID], "backends": states}
        return reply(body, status=503)
    degraded = any(failure is not None for failure in failures)
    return reply({"status": "degraded" if degraded else "ok", "role": role, "backends": states})
