"""The official OpenWhisk JavaScript client (npm `openwhisk`, installed by .ci/deps.sh) against the real server: a
node script does CRUD of actions, triggers, rules, packages and bindings in `guest`, asserting as it goes; this test
runs it and checks what it reports."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from tests.clients.command import run
from tests.conftest import missing
from tests.support.processes import GUEST_AUTH

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parent / "node" / "node_modules" / "openwhisk"


async def run_client(script: str, whisk_url: str) -> dict:
    """Run a node script of this folder against the server as guest; it asserts as it goes and prints, last, one
    JSON line of what it saw."""
    node = shutil.which("node")
    if node is None or not CLIENT.is_dir():
        missing("node and the npm openwhisk client (bash .ci/deps.sh)")
    out = await run(node, str(HERE / script), whisk_url, GUEST_AUTH, uuid.uuid4().hex[:8])
    return json.loads(out.strip().splitlines()[-1])


async def test_openwhisk_npm_client_crud(whisk_url: str) -> None:
    seen = await run_client("openwhisk_client.js", whisk_url)
    assert seen["namespaces"] == ["guest"]
    assert seen["action"]["limits"]["memory"] == 128 and seen["action"]["exec"]["kind"] == "nodejs:20"
    assert {p["key"]: p["value"] for p in seen["binding"]["parameters"]} == {"p": 1}
    assert seen["rule"]["status"] == "active" and seen["rule"]["action"]["path"] == "guest"


async def test_openwhisk_npm_client_invokes_python_and_node(whisk_url: str) -> None:
    """Issue 3: the npm client invokes a Python and a Node.js action blocking, non-blocking and result-only, and
    reads their records, results, logs and listings."""
    seen = await run_client("invoke_client.js", whisk_url)
    assert seen["python"]["kind"].startswith("python:3") and seen["node"]["kind"] == "nodejs:20"
    assert any(line.endswith("stdout: py log 3") for line in seen["python"]["logs"])
    assert any(line.endswith("stdout: js log 3") for line in seen["node"]["logs"])
