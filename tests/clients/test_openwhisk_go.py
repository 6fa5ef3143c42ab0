"""The official Go client of OpenWhisk (`github.com/apache/openwhisk-client-go`, what `wsk` and wskdeploy are built
on) against the real server: tests/clients/goclient drives every resource it offers (actions of each kind, triggers
and fires, the alarms feed, rules, packages and bindings, activations, namespaces, API routes) and the errors it
builds from whisk's answers, asserting as it goes; this test builds it from the module cache and checks what it
reports. .ci/deps.sh fetches the modules (`go mod download`); with go on PATH under CI they must be there."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from tests.clients.command import run
from tests.conftest import missing
from tests.support.processes import GUEST_AUTH

DRIVER = Path(__file__).resolve().parent / "goclient"


async def build_driver() -> str:
    """The driver's binary, built offline: GOPROXY=off, so a module missing from the cache fails the build rather
    than reaching out."""
    go = shutil.which("go")
    if go is None:
        missing("go (for the openwhisk-client-go driver)")
        raise AssertionError("unreachable")
    binary = os.path.join(tempfile.mkdtemp(prefix="goclient-"), "goclient")
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "local"}
    try:
        await run(go, "build", "-o", binary, ".", cwd=DRIVER, env=env, timeout_s=300)
    except AssertionError as failure:
        if "GOPROXY=off" in str(failure) or "module lookup disabled" in str(failure):
            missing(f"the Go modules of tests/clients/goclient in the module cache (bash .ci/deps.sh): {failure}")
        raise
    return binary


async def test_openwhisk_go_client_whole_surface(whisk_url: str) -> None:
    binary = await build_driver()
    out = await run(binary, whisk_url, GUEST_AUTH, uuid.uuid4().hex[:8])
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["namespaces"] == [{"name": "guest"}]
    assert seen["action"]["limits"]["memory"] == 256 and "code" not in seen["action"]["exec"]
    assert seen["activation"]["response"]["result"]["n"] == 3
    assert {p["key"]: p["value"] for p in seen["binding"]["parameters"]} == {"p": 1, "b": 2}
    assert seen["rule"]["status"] == "active" and seen["rule"]["action"] == {"name": seen["rule"]["action"]["name"],
                                                                              "path": "guest"}
    assert {"alarms", "utils", "samples"} <= set(seen["public"]) and seen["alarmFeeds"] == 3
    assert seen["feedRead"]["config"]["cron"] == "0 0 1 1 *"
    assert seen["fireWithoutRules"]["status"] == 204
    # whisk's {"error", "code"} answers become "<error> (code <transaction id>)"; an application error's 502 (no
    # code) becomes the action's own error text
    assert seen["error404"].startswith("The requested resource does not exist. (code ")
    assert seen["error401"].startswith("The supplied authentication is invalid (code ")
    assert seen["error409"].startswith("Package not empty")
    assert seen["error502result"] == {"message": "it broke", "application": True}
    assert seen["error502record"]["message"] == "The following application error was received: it broke"


async def test_openwhisk_go_client_timeout_and_throttle(limited_whisk_url: str) -> None:
    """A blocking invoke past the wait is the client's timed-out error (exit code 202) with the activation id; an
    invoke over the in-flight limit is its error for a 429."""
    binary = await build_driver()
    out = await run(binary, limited_whisk_url, GUEST_AUTH, uuid.uuid4().hex[:8], "limits")
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["timedOut"] == "Request accepted, but processing not completed yet."
    assert seen["error429"].startswith("Too many concurrent requests in flight (count: 1, allowed: 1). (code ")
