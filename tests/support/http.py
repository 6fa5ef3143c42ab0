"""One HTTP helper for the tests that talk to a real server: a request and its answer, parsed when it is JSON."""

from __future__ import annotations

import json
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
