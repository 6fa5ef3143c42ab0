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


async def test_openwhisk_npm_client_whole_surface(whisk_url: str) -> None:
    """The rest of the client: zip, sequence and docker actions, pages, the namespace summary, activation filters,
    fires, `feeds` on the alarms feed, `routes`, another namespace's public packages, and the OpenWhiskError of each
    error answer."""
    seen = await run_client("surface_client.js", whisk_url)
    assert seen["summary"] == ["actions", "packages", "triggers", "rules"]
    assert seen["fire"]["status"] == "success" and seen["feedRead"]["config"]["cron"] == "0 0 1 1 *"
    assert seen["routeGet"] == ["/books/{id}", "/hello"] and seen["routeGetAfterDelete"] == {"apis": []}
    assert seen["alarmFeeds"] == ["alarm", "interval", "once"] and {"alarms", "utils"} <= set(seen["public"])
    errors = seen["errors"]
    assert errors["401"]["error"]["error"] == "The supplied authentication is invalid"
    assert errors["409"]["error"]["error"] == "resource already exists"
    assert errors["413"]["message"].endswith('--> "Request larger than allowed: 1100010 > 1048576 bytes."')
    assert errors["502"]["error"]["response"]["result"] == {"error": {"message": "it broke"}}


async def test_openwhisk_npm_client_timeout_and_throttle(limited_whisk_url: str) -> None:
    """202 past the blocking wait (the id, or a rejection with it for result-only) and 429 over the in-flight
    limit, as the client hands them over."""
    seen = await run_client("limits_client.js", limited_whisk_url)
    assert seen["error429"]["error"]["error"] == "Too many concurrent requests in flight (count: 1, allowed: 1)."
