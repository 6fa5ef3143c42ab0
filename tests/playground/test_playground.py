"""The browser playground (`whisk/api/playground.py`): served by a standalone whisk on loopback and driven in headless
Chromium by `drive.js` (playwright-core), which finds each control by its accessible role and name. The page's
contents at each step come back as JSON and are checked here; the screenshot stays in test-output/playground/."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import missing
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, whisk_server
from whisk.api.app import make_app
from whisk.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("drive.js")
FIRST_USE = Path(__file__).with_name("first_use.js")
CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT = ROOT / "tests" / "node" / "node_modules" / "playwright-core"
OUTPUT = ROOT / "test-output" / "playground"

pytestmark = pytest.mark.timeout(240)


def browser_or_skip() -> str:
    node = shutil.which("node")
    if node is None or not os.access(CHROMIUM, os.X_OK) or not PLAYWRIGHT.is_dir():
        missing("node, /usr/bin/chromium and tests/node's playwright-core (bash .ci/deps.sh installs them)")
    return node


async def test_playground_runs_python_and_nodejs_shows_errors_and_edits_actions() -> None:
    node = browser_or_skip()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "playground.png").unlink(missing_ok=True)
    log = os.path.join(tempfile.gettempdir(), f"whisk-playground-{os.getpid()}.log")
    port = free_port()
    env = {"WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-playground-"), "WHISK_PLAYGROUND_PORT": str(port)}
    async with whisk_server(env, log_path=log) as url:
        proc = await asyncio.create_subprocess_exec(node, str(DRIVER), url, str(OUTPUT), GUEST_AUTH,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=200)
        assert proc.returncode == 0, err.decode(errors="replace")
        seen = json.loads(out)
        async with aiohttp.ClientSession(headers=basic_auth(*GUEST_AUTH.split(":"))) as s:
            async with s.get(f"{url}/api/v1/namespaces/_/actions/pg-python") as r:
                stored = await r.json()
    steps = seen["steps"]

    # The page came from the playground's own port (the API's /playground redirects there); every request went to
    # it or to the API, and the page itself raised no script error.
    page = f"http://127.0.0.1:{port}/"
    assert any(u.startswith(page + "playground/") for u in seen["requests"]), seen["requests"]
    assert all(u.startswith((url + "/", page)) for u in seen["requests"]), seen["requests"]
    assert not [m for m in seen["console"] if m.startswith("pageerror")], seen["console"]
    assert "script-src 'self'" in steps["start"]["csp"] and f"connect-src 'self' {url};" in steps["start"]["csp"]
    assert "unsafe-inline" not in steps["start"]["csp"]
    # The guest key came with the page (standalone), and the runtimes from GET /.
    assert steps["start"]["keyState"].startswith(f"using key {GUEST_AUTH[:8]}…")
    assert any(k.startswith("python:") for k in steps["start"]["runtimes"])
    assert any(k.startswith("nodejs:") for k in steps["start"]["runtimes"])

    python = steps["python"]
    assert json.loads(python["result"]) == {"greeting": "Hello, tester!"}
    assert "hello from python tester" in python["logs"]
    assert python["summary"]["Status"] == "success"
    assert python["summary"]["Start"].startswith("cold (init ")
    assert python["summary"]["Duration"].endswith(" ms")
    assert len(python["summary"]["Activation id"]) == 32
    # Ctrl+Enter ran the unchanged action again, in the container the first run left: a warm start.
    again = steps["pythonAgain"]["summary"]
    assert again["Activation id"] != python["summary"]["Activation id"] and again["Start"] == "warm"

    # Deleted elsewhere, the action was stored again by the next Run, which then ran it.
    recreated = steps["recreated"]
    assert recreated["deleteStatus"] == 200
    assert json.loads(recreated["result"]) == {"greeting": "Hello, tester!"}
    assert recreated["summary"]["Status"] == "success"
    assert 404 in [r["status"] for r in seen["responses"] if r["url"].endswith("/actions/pg-python?blocking=true")]

    node_step = steps["node"]
    assert json.loads(node_step["result"])["greeting"] == "Hi node tester"
    assert json.loads(node_step["result"])["runtime"].startswith("v")
    assert "hello from node node tester" in node_step["logs"]

    assert steps["badJson"]["alert"].startswith("The parameters are not valid JSON")
    assert steps["badJson"]["result"] == steps["badJson"]["alert"]          # said in the result panel too
    assert steps["actionError"]["alert"] == "The action failed (application error): deliberate failure for the test"
    assert steps["actionError"]["summary"]["Status"] == "application error"
    assert steps["offline"]["alert"].startswith(f"Cannot reach the API at {url}")
    assert "401 Unauthorized" in steps["wrongKey"]["alert"]
    assert "401 Unauthorized" in steps["wrongKey"]["activations"]

    # The list refreshed itself with the runs, newest first, and opened the first run's stored record with its logs.
    buttons = steps["activations"]["buttons"]
    assert buttons[0].startswith("pg-failing ") and any(python["summary"]["Activation id"] in b for b in buttons)
    assert steps["opened"]["summary"] == python["summary"]
    assert "hello from python tester" in steps["opened"]["logs"]

    # The action opened from the namespace's list, edited in the page and saved: the server has the new code.
    assert steps["openAction"]["code"].startswith('def main(args):\n    print("hello from python"')
    assert steps["openAction"]["runtime"].startswith("python:")
    assert steps["saved"]["notice"].startswith("Saved action pg-python (version ")
    assert stored["exec"]["code"] == 'def main(args):\n    return {"edited": True}\n'
    assert (OUTPUT / "playground.png").stat().st_size > 10_000


async def test_first_use_namespace_long_run_markup_narrow_window_and_the_origin() -> None:
    node = browser_or_skip()
    env = {"WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-playground-"), "WHISK_LIMIT_MAX_BLOCKING_WAIT": "1500"}
    async with whisk_server(env) as url:
        proc = await asyncio.create_subprocess_exec(node, str(FIRST_USE), url, GUEST_AUTH,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=200)
    assert proc.returncode == 0, err.decode(errors="replace")
    seen = json.loads(out)
    steps = seen["steps"]
    assert not seen["console"], seen["console"]
    # Which namespace the key is for, beside the key's first characters.
    assert steps["key"] == f"using key {GUEST_AUTH[:8]}… (namespace guest)"
    # A Run does not silently replace an action this page neither stored nor opened (README's `hello`): it says so,
    # and the next Run replaces it.
    assert steps["theirs"]["alert"].startswith("Action fu-theirs already exists"), steps["theirs"]
    assert steps["theirs"]["code"] == 'def main(args):\n    return {"theirs": True}\n'
    assert steps["theirs"]["replaced"] == 'def main(args):\n    return {"quick": True}\n'
    # Keyboard users keep their place: Run and Save are never disabled under the focus (which would drop it to the
    # page's body), and the summary of a run is announced when it arrives.
    assert steps["focus"] == {"afterRun": "run", "afterSave": "save", "live": "polite"}
    # While the slow action runs, and after the blocking wait ended (202), the panel says so, never showing the
    # previous run's result; once the activation ends its record takes the panel without a click.
    assert steps["running"]["result"] == "Running fu-slow…" and "quick" not in steps["running"]["summary"]
    assert "still running" in steps["stillRunning"]["result"] and "quick" not in steps["stillRunning"]["result"]
    assert steps["stillRunning"]["summary"] == ""
    assert json.loads(steps["ended"]["result"]) == {"slept": 4}
    assert "guest/fu-slow" in steps["ended"]["summary"] and steps["ended"]["status"] == ""
    # An array result, answered bare, is shown with its record.
    assert json.loads(steps["list"]["result"]) == [1, "two", {"three": 3}]
    assert "success" in steps["list"]["summary"] and steps["list"]["status"] == ""
    # Markup in the error, the result and the logs stays text.
    hostile = steps["hostile"]
    assert hostile["pwned"] is None and hostile["images"] == 0
    assert '<img src=x onerror="window.__pwned=1">' in hostile["status"]
    assert "</script><script>" in hostile["logs"]
    # A reload brings back the draft, as the key.
    reloaded = steps["reloaded"]
    assert reloaded["name"] == "fu-hostile" and reloaded["params"] == '{"after": "reload"}'
    assert reloaded["code"].startswith("def main(args):\n    print(") and "window.__pwned=1" in reloaded["code"]
    assert reloaded["runtime"].startswith("python:")
    # Nothing wider than a 360-pixel window.
    assert steps["narrow"]["scrollWidth"] <= steps["narrow"]["clientWidth"], steps["narrow"]
    # The playground keeps its key and draft in the tab's sessionStorage, on an origin of its own: a tenant's web
    # page opened in the same tab (the API's origin) finds none of it.
    assert "whisk.playground.key" in steps["snoop"]["playground"], steps["snoop"]
    assert steps["snoop"]["tenant"] == "storage []", steps["snoop"]
    # A web action's script cannot become the worker of the whole origin (no `Service-Worker-Allowed` from a web
    # action), so it can neither answer for the playground nor read the keys pasted into it.
    assert steps["worker"]["registration"] == "refused SecurityError", steps["worker"]
    assert steps["worker"]["heading"] == ["whisk playground"] and not steps["worker"]["controlled"]


def routes(settings: Settings) -> set[str]:
    app = make_app(settings, None)
    return {r.get_info().get("path") or r.get_info().get("formatter", "") for r in app.router.resources()}


def test_playground_is_on_for_standalone_off_for_a_controller_unless_enabled() -> None:
    # The API's own routes only redirect to the playground's port.
    redirect = "/playground/{tail}"
    assert redirect in routes(Settings.from_env({"WHISK_STORE": "memory://"}))
    assert redirect not in routes(Settings.from_env({"WHISK_ROLE": "controller", "WHISK_STORE": "memory://"}))
    assert redirect in routes(Settings.from_env({"WHISK_ROLE": "controller", "WHISK_PLAYGROUND": "1",
                                                 "WHISK_STORE": "memory://"}))
    assert redirect not in routes(Settings.from_env({"WHISK_PLAYGROUND": "false", "WHISK_STORE": "memory://"}))
    assert not Settings.from_env({"WHISK_ROLE": "invoker", "WHISK_PLAYGROUND": "true"}).serves_playground
    with pytest.raises(ConfigError, match="WHISK_PLAYGROUND_PORT: 4000 is WHISK_PORT too"):
        Settings.from_env({"WHISK_PORT": "4000", "WHISK_PLAYGROUND_PORT": "4000"})
    Settings.from_env({"WHISK_PORT": "4000", "WHISK_PLAYGROUND_PORT": "4000", "WHISK_PLAYGROUND": "false"})


async def test_a_controller_serves_the_page_on_its_own_port_but_never_a_key() -> None:
    port = free_port()
    env = {"WHISK_ROLE": "controller", "WHISK_PLAYGROUND": "true", "WHISK_PLAYGROUND_PORT": str(port),
           "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-playground-")}
    page = f"http://127.0.0.1:{port}"
    async with whisk_server(env) as url, aiohttp.ClientSession() as s:
        # The API's /playground sends the browser to the playground's own origin.
        for path in ("/playground", "/playground/", "/playground/config.json"):
            async with s.get(f"{url}{path}", allow_redirects=False) as r:
                assert r.status == 307 and r.headers["Location"] == page + path, (path, r.headers)
        async with s.get(f"{page}/playground/config.json") as r:
            assert r.status == 200
            assert await r.json() == {"role": "controller", "api": url}
            assert "Access-Control-Allow-Origin" not in r.headers       # no other origin's page reads it
        async with s.get(f"{page}/") as r:
            assert r.status == 200 and str(r.url) == f"{page}/playground/"
            csp = r.headers["Content-Security-Policy"]
            assert f"connect-src 'self' {url};" in csp and "script-src 'self';" in csp
            assert 'href="playground.css"' in await r.text()
        async with s.get(f"{page}/playground/playground.py") as r:
            assert r.status == 404 and set(await r.json()) == {"error", "code"}
        async with s.get(f"{page}/api/v1/namespaces") as r:             # nothing of the API on the page's origin
            assert r.status == 404
        # A page of another origin (the playground) reads the activation id header of an API answer.
        async with s.options(f"{url}/api/v1/namespaces/_/actions/x", headers={"Origin": page}) as r:
            assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
            assert r.headers["Access-Control-Expose-Headers"] == "x-openwhisk-activation-id"


async def test_a_playground_port_held_by_another_server_is_never_redirected_to() -> None:
    # Another server (here a bare listener) holds the playground's port: the playground is off, and the API's
    # /playground says not found instead of sending the browser to that server's page (another platform's, say).
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {"WHISK_PLAYGROUND_PORT": str(port), "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-playground-")}
        async with whisk_server(env) as url, aiohttp.ClientSession() as s:
            for path in ("/playground", "/playground/", "/playground/config.json"):
                async with s.get(f"{url}{path}", allow_redirects=False) as r:
                    assert r.status == 404 and set(await r.json()) == {"error", "code"}, (path, r.headers)


async def _raw_get(port: int, path: str, host: str) -> tuple[int, bytes]:
    """(status, body) of a GET with this Host header, sent as it is (no client would send most of these)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_a_host_header_that_names_no_host_and_port_is_refused_not_a_server_error() -> None:
    # The redirect and the page's API origin are the request's URL at another port: an empty Host, a port that is
    # out of range or no number, were a 500 with a traceback.
    port = free_port()
    env = {"WHISK_PLAYGROUND_PORT": str(port), "WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-playground-")}
    async with whisk_server(env) as url:
        api_port = int(url.rsplit(":", 1)[1])
        for host in ("", "x:99999", "x:abc", ":80", "a:b:c"):
            for target, path in ((api_port, "/playground/"), (port, "/playground/"), (port, "/playground/config.json")):
                status, body = await _raw_get(target, path, host)
                assert status == 400, (host, target, path, status, body)
                assert json.loads(body)["error"] == "The request's Host header is not valid.", body
        assert (await _raw_get(port, "/playground/config.json", f"127.0.0.1:{port}"))[0] == 200
