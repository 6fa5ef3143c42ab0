"""Helpers for the API tests: calls that return (status, body), unique names, and a second server with a SQLite
store where a second namespace is created through the real admin CLI."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tests.support.http import call  # noqa: F401 - the tests import it from here
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server

JS = {"kind": "nodejs:default", "code": "function main(args) { return args; }"}


def unique(prefix: str = "e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def basic(auth: str) -> dict[str, str]:
    """An Authorization header for "uuid:key"."""
    return basic_auth(*auth.split(":", 1))


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
