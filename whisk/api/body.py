"""Reading a JSON request body (spec §1.1): JSON content types only (415 otherwise), an empty body is refused, and a
body that is not JSON is Pekko's malformed-content rejection."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from whisk.entities.errors import Invalid, TooLarge, UnsupportedMediaType

EXPECTED = "Request entity expected but not supplied"
MALFORMED = "The request content was malformed:\n"
UNSUPPORTED = "The request's Content-Type is not supported. Expected:\napplication/json"


def _no_constants(name: str) -> Any:
    raise ValueError(f"Unexpected character '{name[0]}'")


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def read_json(request: web.Request) -> Any:
    limit = request.client_max_size
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"Request larger than allowed: {request.content_length} > {limit} bytes.")
    raw = await request.read()
    if not raw.strip():
        raise Invalid(EXPECTED)
    if "Content-Type" in request.headers and not is_json_type(request.content_type):
        raise UnsupportedMediaType(UNSUPPORTED)
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"{MALFORMED}{exc}") from None
