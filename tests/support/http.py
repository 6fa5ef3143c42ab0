"""One HTTP helper for the tests that talk to a real server: a request and its answer, parsed when it is JSON."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp


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
