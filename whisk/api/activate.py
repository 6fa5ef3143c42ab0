"""Routes that start activations: invoke an action, fire a trigger. They answer 503 until the invoke path lands."""

from __future__ import annotations

from aiohttp import web

from whisk.entities.errors import BackendUnavailable


async def not_yet(request: web.Request) -> web.StreamResponse:
    raise BackendUnavailable("Activations are not available on this server yet.")
