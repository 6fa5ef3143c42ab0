"""Routes without authentication (docs/openwhisk.md §1.14): the controller's info at `/`, the API's at `/api/v1`, the
swagger documents OpenWhisk publishes (copied beside this module), and `/ping`."""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from whisk.api.body import reply
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


DOCS_UI = "/api/v1/docs"
DOCS_PAGE = f"{DOCS_UI}/index.html"
_VERBS = ("get", "put", "post", "delete", "patch", "head", "options")


async def docs_redirect(request: web.Request) -> web.Response:
    """`swagger_paths.ui` (OpenWhisk redirects it to its swagger-ui page with the document's URL)."""
    raise web.HTTPPermanentRedirect(f"{DOCS_PAGE}?url=/api/v1/api-docs")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(body=_docs_html(), content_type="text/html")


@cache
def _docs_html() -> bytes:
    """The REST API's operations as one self-contained page (OpenWhisk serves swagger-ui's assets here; whisk needs
    no assets nor network: the raw document is linked)."""
    doc = json.loads(_document("apiv1swagger.json"))
    rows = []
    for path, operations in doc.get("paths", {}).items():
        for verb in _VERBS:
            if (op := operations.get(verb)) is not None:
                rows.append(f"<tr><td><code>{verb.upper()}</code></td><td><code>{html.escape(doc.get('basePath', ''))}"
                            f"{html.escape(path)}</code></td><td>{html.escape(op.get('summary', ''))}</td></tr>")
    title = html.escape(doc.get("info", {}).get("title", "OpenWhisk REST API"))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<h1>{title}</h1><p>The Swagger 2.0 document: <a href=\"/api/v1/api-docs\">/api/v1/api-docs</a>.</p>"
            f"<table><tr><th>method</th><th>path</th><th>summary</th></tr>{''.join(rows)}</table>"
            "</body></html>").encode()


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def api_info(request: web.Request) -> web.Response:
    return reply({
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
    return reply(body)
