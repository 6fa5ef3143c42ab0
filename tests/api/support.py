"""Helpers for the API tests: calls that return (status, body), unique names, and a second server with a SQLite
store where a second namespace is created through the real admin CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.processes import GUEST_AUTH, whisk_server

JS = {"kind": "nodejs:default", "code": "function main(args) { return args; }"}


def unique(prefix: str = "e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def basic(auth: str) -> dict[str, str]:
    """An Authorization header for "uuid:key"."""
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


async def call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None, *,
               headers: dict[str, str] | None = None, data: bytes | str | None = None,
               params: dict[str, str] | None = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": headers, "params": params}
    if body is not None:
        kwargs["json"] = body
    elif data is not None:
        kwargs["data"] = data
    async with session.request(method, path, **kwargs) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


def ns(collection: str, name: str = "", namespace: str = "_") -> str:
    return f"/api/v1/namespaces/{namespace}/{collection}" + (f"/{name}" if name else "")


@dataclass
class Deployment:
    url: str
    store_url: str
    other_auth: str          # uuid:key of namespace `other`
    other_namespace: str


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", *args, env=os.environ | env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@asynccontextmanager
async def sqlite_deployment() -> AsyncIterator[Deployment]:
    """A whisk on a SQLite store plus a second namespace made by `whisk admin user create`."""
    data = tempfile.mkdtemp(prefix="whisk-api-")
    store_url = f"sqlite://{data}/whisk.db"
    env = {"WHISK_STORE": store_url, "WHISK_DATA_DIR": data}
    async with whisk_server(env, log_path=os.path.join(data, "server.log")) as url:
        other = unique("other")
        code, out, err = await run_cli("admin", "user", "create", other, "--store", store_url, env=env)
        assert code == 0, err
        yield Deployment(url, store_url, out.strip().splitlines()[-1], other)


__all__ = ["GUEST_AUTH", "JS", "Deployment", "basic", "call", "ns", "sqlite_deployment", "unique"]
