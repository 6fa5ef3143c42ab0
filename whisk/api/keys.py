"""The keys of application state (aiohttp AppKey) and of per-request values (RequestKey): typed, so that mypy knows
what each holds."""

from __future__ import annotations

import asyncio

from aiohttp import web

from whisk.api.auth_failures import AuthFailures
from whisk.config import Settings
from whisk.controller.entities import Entities
from whisk.controller.services import ControllerServices
from whisk.controller.subjects import Subjects
from whisk.entities.identity import Identity
from whisk.runtimes.manifest import Manifest
from whisk.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
# The controller's services (whisk.controller.services), handed to the API once built (`whisk.api.app.provide`);
# absent until then, and on a server that runs no controller.
SERVICES = web.AppKey("services", ControllerServices)
# The entity service and the subjects (authentication), also among the services; every collection route uses them.
ENTITIES = web.AppKey("entities", Entities)
SUBJECTS = web.AppKey("subjects", Subjects)
# Failed authentications per client address (whisk.api.auth_failures.AuthFailures); built by make_app.
AUTH_FAILURES = web.AppKey("auth_failures", AuthFailures)
# The runtime manifest when one is loaded: kinds for PUT, runtimes for GET /.
MANIFEST = web.AppKey("manifest", Manifest)
# The event loop's time by which a graceful stop ends (set at SIGTERM by roles.serve): each of the stop's waits takes
# what is left of the one grace (`grace_left`), not a grace of its own.
STOP_BY = web.AppKey("stop_by", float)


def grace_left(app: web.Application, grace_s: float) -> float:
    """What is left of the stop's grace; all of `grace_s` when no stop has set its end (tests, a failed start)."""
    stop_by = app.get(STOP_BY)
    if stop_by is None:
        return grace_s
    return max(0.0, stop_by - asyncio.get_running_loop().time())

# Per-request values (request[...]), set by the middlewares in whisk/api/.
# The transaction id: X-Request-ID unless it starts with "sid_", else generated.
TID = web.RequestKey("tid", str)
# When the request came (epoch ms, its headers read): where an activation's `waitTime` starts, as OpenWhisk's
# transaction id starts its clock before the body is read, the caller authenticated and the action resolved.
RECEIVED_MS = web.RequestKey("received_ms", int)
# The authenticated caller (absent: an anonymous web request).
IDENTITY = web.RequestKey("identity", Identity)
# Set on a web action's request: its error bodies are pretty-printed, as Pekko's web routes do.
WEB = web.RequestKey("web", bool)
