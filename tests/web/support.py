"""Helpers shared by the fire, sequence, web and apigw tests: entity PUTs, invokes, waiting for activation records
(polling with a deadline), and running the official openwhisk npm client under node."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import missing
from tests.support.http import call, record_of  # noqa: F401 - the tests import them from here

NODE_MODULES = Path(__file__).resolve().parents[1] / "node" / "node_modules"

PY_ECHO = "def main(args):\n    return args\n"
PY_INC = "def main(args):\n    return {'n': args.get('n', 0) + 1}\n"
PY_FAIL = "def main(args):\n    return {'error': 'failed at ' + str(args.get('n'))}\n"


def unique(prefix: str = "e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def annotations(record: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: a["value"] for a in record.get("annotations") or ()}


def python(code: str) -> dict[str, Any]:
    return {"kind": "python:3", "code": code}




async def put(session: aiohttp.ClientSession, collection: str, name: str, body: Any, namespace: str = "_"
              ) -> dict[str, Any]:
    status, answer = await call(session, "PUT", f"/api/v1/namespaces/{namespace}/{collection}/{name}?overwrite=true",
                                body)
    assert status == 200, (collection, name, status, answer)
    return answer


async def put_action(session: aiohttp.ClientSession, name: str, code: str = PY_ECHO, **extra: Any
                     ) -> dict[str, Any]:
    return await put(session, "actions", name, {"exec": python(code), **extra})


async def put_sequence(session: aiohttp.ClientSession, name: str, *components: str) -> dict[str, Any]:
    return await put(session, "actions", name, {"exec": {"kind": "sequence", "components": list(components)}})


async def invoke(session: aiohttp.ClientSession, name: str, payload: Any = None, namespace: str = "_",
                 **query: str) -> tuple[int, Any, Any]:
    async with session.post(f"/api/v1/namespaces/{namespace}/actions/{name}", params=query,
                            json=payload if payload is not None else {}) as r:
        text = await r.text()
        return r.status, json.loads(text) if text else None, r.headers


async def run_node(script: str, **env: str) -> Any:
    """Run a node script with the npm openwhisk client on NODE_PATH; it prints one JSON value."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "openwhisk").is_dir():
        missing("node with the openwhisk npm client (bash .ci/deps.sh)")
    proc = await asyncio.create_subprocess_exec(
        node, "-e", script, env=os.environ | {"NODE_PATH": str(NODE_MODULES)} | env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


# A prelude for node scripts: `ow` is a client for WHISK_URL / WHISK_KEY; `done(promise)` prints its JSON value, or
# `{"rejected": {message, statusCode}}` when it is refused.
NODE_PRELUDE = """
const openwhisk = require('openwhisk');
const ow = openwhisk({apihost: process.env.WHISK_URL, api_key: process.env.WHISK_KEY});
function done(p) {
  return p.then(v => process.stdout.write(JSON.stringify(v === undefined ? null : v)),
                e => process.stdout.write(JSON.stringify({rejected: {message: e.message, statusCode: e.statusCode}})));
}
"""
