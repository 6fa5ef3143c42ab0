"""Routes without authentication (spec §1.14): the controller's info at `/`, the API's at `/api/v1`, the swagger
documents OpenWhisk publishes (copied beside this module), and `/ping`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from whisk.api.keys import MANIFEST, SETTINGS
from whisk.controller.limits import system_limits
from whisk.entities.limits import MB

HERE = Path(__file__).resolve().parent


@cache
def _document(name: str) -> bytes:
    return (HERE / name).read_bytes()


def _json_file(name: str) -> web.Response:
    return web.Response(body=_document(name), content_type="application/json")


async def api_docs(request: web.Request) -> web.Response:
    return _json_file("apiv1swagger.json")


async def info_docs(request: web.Request) -> web.Response:
    return _json_file("infoswagger.json")


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def api_info(request: web.Request) -> web.Response:
    return web.json_response({
        "description": "OpenWhisk API", "api_version": "1.0.0", "api_version_path": "v1",
        "build": "2026-01-01T00:00:00Z", "buildno": "whisk",
        "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"},
    })


async def controller_info(request: web.Request) -> web.Response:
    limits = system_limits(request.app[SETTINGS])
    body: dict[str, Any] = {
        "description": "OpenWhisk",
        "support": {"github": "https://github.com/apache/openwhisk/issues", "slack": "http://slack.openwhisk.org"},
        "api_paths": ["/api/v1"],
        "limits": {
            "actions_per_minute": limits.invocations_per_minute,
            "triggers_per_minute": limits.fires_per_minute,
            "concurrent_actions": limits.concurrent_invocations,
            "sequence_length": limits.sequence_length,
            "default_min_action_duration": limits.timeout.min,
            "default_max_action_duration": limits.timeout.max,
            "default_min_action_memory": limits.memory.min * MB,
            "default_max_action_memory": limits.memory.max * MB,
            "default_min_action_logs": limits.logs.min * MB,
            "default_max_action_logs": limits.logs.max * MB,
            "min_action_duration": limits.timeout.min,
            "max_action_duration": limits.timeout.max,
            "min_action_memory": limits.memory.min * MB,
            "max_action_memory": limits.memory.max * MB,
            "min_action_logs": limits.logs.min * MB,
            "max_action_logs": limits.logs.max * MB,
        },
    }
    manifest = request.app.get(MANIFEST)
    if manifest is not None:
        body["runtimes"] = manifest.info()
    return web.json_response(body, dumps=lambda v: json.dumps(v, separators=(",", ":")))
