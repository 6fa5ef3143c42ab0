"""JSON bodies (spec §1.1). Reading a request's: JSON content types only (415 otherwise), an empty body is refused,
and a body that is not JSON is Pekko's malformed-content rejection. Writing an answer: compact, as every REST answer."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from whisk.entities import json_value
from whisk.entities.errors import Invalid, TooLarge, UnsupportedMediaType


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A compact JSON answer."""
    return web.json_response(body, status=status, headers=headers, dumps=compact)


EXPECTED = "Request entity expected but not supplied"
MALFORMED = "The request content was malformed:\n"


def is_json_type(content_type: str) -> bool:
    """spray-json's unmarshaller takes application/json only (any charset); anything else is Pekko's 415."""
    return content_type == "application/json"


def pekko_content_type(header: str) -> str:
    """A Content-Type header as Pekko renders the parsed ContentType: lower-case media type, `; name=value`
    parameters, the charset by its canonical (upper-case) name."""
    media, *params = (part.strip() for part in header.split(";"))
    out = media.lower()
    for param in params:
        name, sep, value = param.partition("=")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip().strip('"')
        out += f"; {name}={value.upper() if name == 'charset' else value}"
    return out


def check_json_type(request: web.Request) -> None:
    """415 for a body declared as something other than JSON, with Pekko's text (the declared type in brackets);
    a body without Content-Type is read as JSON."""
    header = request.headers.get("Content-Type")
    if header is not None and not is_json_type(request.content_type):
        raise UnsupportedMediaType(f"The request's Content-Type [{pekko_content_type(header)}] is not supported. "
                                   "Expected:\napplication/json")


async def read_json(request: web.Request) -> Any:
    limit = request.client_max_size
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"Request larger than allowed: {request.content_length} > {limit} bytes.")
    raw = await request.read()
    if not raw.strip():
        raise Invalid(EXPECTED)
    check_json_type(request)
    return parse_body(raw)


def parse_body(raw: bytes) -> Any:
    """Every JSON request body is read here: not JSON, NaN/Infinity, a lone surrogate or nesting too deep is
    Pekko's malformed-content rejection (400), never a 500 further on."""
    try:
        return json_value.parse(raw)
    except json_value.NotJson as exc:
        raise Invalid(f"{MALFORMED}{exc}") from None
