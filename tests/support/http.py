"""One HTTP helper for the tests that talk to a real server: a request and its answer, parsed when it is JSON."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.support.processes import GUEST_AUTH

GUEST_BASIC = b"Basic " + base64.b64encode(GUEST_AUTH.encode())


async def call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kwargs: Any
               ) -> tuple[int, Any]:
    """(status, JSON body or text). `body` is sent as JSON; `data`, `headers`, `params` go to aiohttp as given."""
    if body is not None:
        kwargs["json"] = body
    async with session.request(method, path, **kwargs) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def record_of(session: aiohttp.ClientSession, activation_id: str, deadline_s: float = 30, *,
                    complete: bool = False) -> dict[str, Any]:
    """The stored activation record, polled until it exists (a running activation is a 404, as on OpenWhisk); with
    `complete`, until it has its `end` (a trigger's record has none)."""
    end = time.monotonic() + deadline_s
    while True:
        async with session.get(f"/api/v1/namespaces/_/activations/{activation_id}") as r:
            body = await r.json()
        if r.status == 200 and (not complete or body.get("end")):
            return body
        assert time.monotonic() < end, f"no record for {activation_id}: {r.status} {body}"
        await asyncio.sleep(0.05)


async def raw_call(url: str, method: str, path: str, headers: list[tuple[str, bytes]] | None = None,
                   body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one request written byte for byte, for what aiohttp's client
    will not send (header values that are not UTF-8, a body that contradicts its headers). Sent as guest, with
    `Connection: close`; a header given here replaces the default of that name."""
    parts = urlsplit(url)
    given = {name.lower() for name, _ in headers or []}
    head = [(name, value) for name, value in (("Host", b"x"), ("Authorization", GUEST_BASIC),
                                               ("Content-Length", str(len(body)).encode()))
            if name.lower() not in given]
    lines = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in [*head, *(headers or [])])
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\n".encode() + lines + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, content = rest.partition(b"\r\n\r\n")
    answer_headers = {}
    for line in header_block.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    return int(status_line.split(b" ")[1]), answer_headers, content
