"""JSON bodies (docs/openwhisk.md §1.1). Reading a request's: JSON content types only (415 otherwise), an empty body is
refused, and a body that is not JSON is Pekko's malformed-content rejection. Writing an answer: compact, as every REST
answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import StreamReader, web

from whisk.api.keys import SETTINGS
from whisk.entities import charsets, json_value
from whisk.entities.errors import MALFORMED, Invalid, RequestTimeout, TooLarge, UnsupportedMediaType
from whisk.entities.json_value import compact


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None, *, pretty: bool = False
          ) -> web.Response:
    """A compact JSON answer (`pretty`: as web actions print theirs), typed `application/json` with no charset
    parameter, as Pekko writes JSON (JSON is UTF-8 by definition). Clients compare the header: wskdeploy takes the
    platform's runtimes from `GET /` only when its Content-Type occurs in "application/json; charset=UTF-8", and
    falls back to a built-in list otherwise."""
    text = json_value.pretty(body) if pretty else compact(body)
    return web.Response(body=text.encode(), status=status, headers=headers, content_type="application/json")


# An array answer past this many bytes is sent as it is encoded (chunked) rather than held whole (`reply_array`).
STREAM_PAST_BYTES = 1 << 20
# `reply_array` gives the loop a turn once it has encoded this much since the last: encoding a record of 10 MB of logs
# takes ~70 ms, and a page of them was encoded back to back, with nothing else served meanwhile, until the socket's
# buffer filled (docs/performance.md, thirty-first session).
TURN_PAST_BYTES = 256 << 10


async def reply_array(items: AsyncIterator[Any], to_json: Callable[[Any], Any]) -> web.Response:
    """The JSON array of `to_json(item)` for each item, as `reply` writes it. Each item is encoded on its own as it
    comes and let go of: once the encoded items pass STREAM_PAST_BYTES, the answer is sent as the rest come and are
    encoded, without a Content-Length, so that a listing of large records is never held whole (the records, their
    text, its bytes). Smaller answers keep their length. Other requests get the loop between large items."""
    parts: list[bytes] = []
    size = unturned = 0

    async def encoded(item: Any) -> bytes:
        nonlocal unturned
        part = compact(to_json(item)).encode()
        unturned += len(part)
        if unturned > TURN_PAST_BYTES:
            unturned = 0
            await asyncio.sleep(0)
        return part

    async for item in items:
        parts.append(await encoded(item))
        size += len(parts[-1])
        if size > STREAM_PAST_BYTES:
            break
    else:
        return web.Response(body=b"[" + b",".join(parts) + b"]", content_type="application/json")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"[" + b",".join(parts)
        parts.clear()
        async for item in items:
            yield b"," + await encoded(item)
        yield b"]"
    return web.Response(body=chunks(), content_type="application/json")


class ClientGone(Exception):
    """The client closed its connection before its body had all come: nobody is left to answer, and nothing failed
    here (`api/errors.py` logs it briefly, without a traceback)."""


class BrokenBody(Invalid):
    """The body's framing broke off after its head was read (a chunk size that is no number): the rest of the body
    cannot be found in the stream, so the answer (400) closes the connection (api/early_errors.py fails the body)."""


EXPECTED = "Request entity expected but not supplied"


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


def check_json_type(request: web.Request) -> str | None:
    """415 for a body declared as something other than JSON, with Pekko's text (the declared type in brackets);
    a body without Content-Type is read as JSON. Returns the codec of a declared charset other than UTF-8, which
    the body is decoded with (Pekko's unmarshaller decodes with it, `CTL/RestAPIs.scala`); None for UTF-8, an
    undeclared charset (nearly every body: one test of a short string) or a name that is no text charset."""
    header = request.headers.get("Content-Type")
    if header is None:
        return None
    if not is_json_type(request.content_type):
        raise UnsupportedMediaType(f"The request's Content-Type [{pekko_content_type(header)}] is not supported. "
                                   "Expected:\napplication/json")
    if ";" not in header:
        return None
    charset = request.charset
    codec = charsets.codec(charset) if charset else None
    return None if codec == "utf-8" else codec


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body: 413 past `max_bytes` (at once when Content-Length says so), 408 when it stops arriving for
    WHISK_HTTP_BODY_TIMEOUT_S (nginx's client_body_timeout: between two reads), so a stalled client cannot hold a
    request open forever. Every route that reads a body reads it here."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise TooLarge(f"Request larger than allowed: {length} > {max_bytes} bytes.")
    settings = request.app.get(SETTINGS)
    idle_s = settings.http_body_timeout_s if settings is not None else 60.0
    content = request.content
    try:
        return await _read(content, length, max_bytes, idle_s)
    except BrokenBody:
        content.feed_eof()                        # nothing more to wait for after the answer
        raise


async def _read(content: StreamReader, length: int | None, max_bytes: int, idle_s: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        # What has arrived is taken without a timer: a small body usually came with its headers (a timer costs more
        # than the rest of this read).
        chunk = content.read_nowait()
        if not chunk:
            if content.at_eof():
                return b"".join(chunks)
            try:
                async with asyncio.timeout(idle_s):
                    chunk = await content.readany()
            except TimeoutError:
                content.feed_eof()                # not waited for any longer (no lingering); the answer closes
                raise RequestTimeout(f"The request body stopped arriving for {idle_s:g} seconds.") from None
            except ConnectionError:               # aiohttp's "Connection lost", or the socket's reset
                raise ClientGone() from None
            if not chunk:
                return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"Request larger than allowed: {length or size} > {max_bytes} bytes.")
        chunks.append(chunk)


async def read_json(request: web.Request) -> Any:
    """An entity's body: its type first (415), as Pekko's unmarshaller checks it before it sees an empty body (400)."""
    raw = await read_body(request, request.client_max_size)
    codec = check_json_type(request)
    if not raw.strip():
        raise Invalid(EXPECTED)
    return parse_body(raw, codec)


def parse_body(raw: bytes, codec: str | None = None) -> Any:
    """Every JSON request body is read here, as UTF-8 unless `codec` (a declared charset) says otherwise: not JSON,
    NaN/Infinity, a lone surrogate or nesting too deep is Pekko's malformed-content rejection (400), never a 500
    further on."""
    try:
        return json_value.parse(raw if codec is None else raw.decode(codec, "replace"))
    except json_value.NotJson as exc:
        raise Invalid(f"{MALFORMED}{exc}") from None
