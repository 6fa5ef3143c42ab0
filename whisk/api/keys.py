"""Typed keys for application state and per-request values (aiohttp AppKey; STYLE: no string keys)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from whisk.api.auth_failures import AuthFailures
from whisk.config import Settings
from whisk.controller.entities import Entities
from whisk.controller.subjects import Subjects
from whisk.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
# The controller's activation service (invoke, fire, web); set by roles.py when the role runs a controller.
ACTIVATOR = web.AppKey("activator", Any)
# The entity service and the subjects (authentication); built by make_app once the store is there.
ENTITIES = web.AppKey("entities", Entities)
SUBJECTS = web.AppKey("subjects", Subjects)
# Compositions and the activation routes beyond invoke (set on startup once ACTIVATOR is there; absent otherwise):
# the launcher (whisk.controller.launcher.Launcher), trigger firing (whisk.controller.fire.Firing), web actions
# (whisk.controller.web.WebActions) and API routes (whisk.controller.apigw.Apis).
LAUNCHER = web.AppKey("launcher", Any)
FIRING = web.AppKey("firing", Any)
WEB_ACTIONS = web.AppKey("web_actions", Any)
APIS = web.AppKey("apis", Any)
# Failed authentications per client address (whisk.api.auth_failures.AuthFailures); built by make_app.
AUTH_FAILURES = web.AppKey("auth_failures", AuthFailures)
# The runtime manifest (whisk.runtimes.manifest.Manifest) when one is loaded: kinds for PUT, runtimes for GET /.
MANIFEST = web.AppKey("manifest", Any)

# Per-request values (request[...]), set by the middlewares in whisk/api/.
TID = "whisk.tid"            # transaction id: X-Request-ID unless it starts with "sid_", else generated
IDENTITY = "whisk.identity"  # whisk.entities.identity.Identity of the authenticated caller (absent: anonymous web)
