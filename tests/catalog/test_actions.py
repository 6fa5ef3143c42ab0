"""Every action of the whisk.system catalog, invoked as a user does (guest, blocking, over HTTP), with the results
OpenWhisk's catalog gives for the same input; and the packages as users see them (public, feeds listed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.processes import free_port
from tests.web.support import call, invoke


async def result_of(guest: aiohttp.ClientSession, path: str, payload: Any = None, expect: int = 200
                    ) -> tuple[Any, list[str]]:
    """The result and logs of a blocking invoke of /whisk.system/<path> (an `{"error": ...}` result is an
    application error: 502)."""
    package, name = path.split("/")
    status, record, _ = await invoke(guest, f"{package}/{name}", payload or {}, namespace="whisk.system",
                                     blocking="true")
    assert status == expect, (path, status, record)
    return record["response"]["result"], await logs_of(guest, record["activationId"])


async def logs_of(guest: aiohttp.ClientSession, activation_id: str) -> list[str]:
    """The stored record's logs (a blocking answer may come before the invoker has collected them)."""
    for _ in range(100):
        status, body = await call(guest, "GET", f"/api/v1/namespaces/_/activations/{activation_id}/logs")
        if status == 200:
            return body["logs"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no stored record for {activation_id}")


async def test_the_packages_are_public_and_the_alarms_package_lists_its_feeds(guest: aiohttp.ClientSession) -> None:
    status, packages = await call(guest, "GET", "/api/v1/namespaces/whisk.system/packages")
    assert status == 200
    assert {p["name"]: p["publish"] for p in packages} == {"utils": True, "samples": True, "alarms": True}
    status, alarms = await call(guest, "GET", "/api/v1/namespaces/whisk.system/packages/alarms")
    assert status == 200 and alarms["actions"] == []
    assert sorted(f["name"] for f in alarms["feeds"]) == ["alarm", "interval", "once"]
    status, utils = await call(guest, "GET", "/api/v1/namespaces/whisk.system/packages/utils")
    assert sorted(a["name"] for a in utils["actions"]) == ["cat", "date", "echo", "head", "hosturl", "namespace",
                                                           "smash", "sort", "split"]
    status, samples = await call(guest, "GET", "/api/v1/namespaces/whisk.system/packages/samples")
    assert sorted(a["name"] for a in samples["actions"]) == ["curl", "greeting", "helloWorld", "printParams",
                                                             "wordCount", "wordCountAsync"]


async def test_utils(guest: aiohttp.ClientSession) -> None:
    assert (await result_of(guest, "utils/echo", {"payload": "Five fuzzy felines", "n": [1]}))[0] == {
        "payload": "Five fuzzy felines", "n": [1]}
    assert (await result_of(guest, "utils/cat", {"lines": [4, 2, 3]}))[0] == {"lines": [4, 2, 3], "payload": "4\n2\n3"}
    # JavaScript's default sort compares as strings: 10 before 2.
    assert (await result_of(guest, "utils/sort", {"lines": [4, 10, 2, "b", "a"]}))[0] == {
        "lines": [10, 2, 4, "a", "b"], "length": 5}
    assert (await result_of(guest, "utils/head", {"lines": [4, 2, 3], "num": 2}))[0] == {"lines": [4, 2], "num": 2}
    assert (await result_of(guest, "utils/head", {"lines": [4, 2, 3]}))[0] == {"lines": [4], "num": 1}
    assert (await result_of(guest, "utils/split", {"payload": "one,two,three", "separator": ","}))[0] == {
        "lines": ["one", "two", "three"], "payload": "one,two,three"}
    assert (await result_of(guest, "utils/split", {"payload": "a\r\nb\nc"}))[0]["lines"] == ["a", "b", "c"]
    assert (await result_of(guest, "utils/smash", {"a": 1, "b": {"c": 2}, "$fieldName": "p"}))[0] == {
        "p": {"a": 1, "b": {"c": 2}}}
    assert (await result_of(guest, "utils/smash", {"a": 1}, 502))[0] == {
        "error": "Expected an argument '$fieldName' of type 'string'."}
    assert (await result_of(guest, "utils/namespace"))[0] == {"namespace": "guest"}
    before = datetime.now(UTC)
    (date,) = (await result_of(guest, "utils/date"))[0].values()
    assert abs((datetime.fromisoformat(date) - before).total_seconds()) < 30


async def test_hosturl(guest: aiohttp.ClientSession, whisk_url: str) -> None:
    host = whisk_url
    cases = [
        ({}, {"url": f"{host}/api/v1/namespaces/guest/actions"}),
        ({"path": "utils/echo"}, {"url": f"{host}/api/v1/namespaces/guest/actions/utils/echo"}),
        ({"path": "t", "trigger": True}, {"url": f"{host}/api/v1/namespaces/guest/triggers/t"}),
        ({"path": "echo", "web": True, "ext": ".json"}, {"url": f"{host}/api/v1/web/guest/default/echo.json"}),
        ({"path": "utils/echo", "web": True}, {"url": f"{host}/api/v1/web/guest/utils/echo"}),
        ({"path": "p/t", "trigger": True}, {"error": "triggers are not allowed in packages."}),
        ({"path": "t", "web": True, "trigger": True}, {"error": "triggers are not allowed for web actions."}),
        ({"path": "x", "web": True, "ext": ".exe"},
         {"error": 'extension for web action must be one of [".html", ".http", ".json", ".svg", ".text"].'}),
    ]
    for args, expected in cases:
        status = 502 if "error" in expected else 200
        assert (await result_of(guest, "utils/hosturl", args, status))[0] == expected, args


async def test_samples(guest: aiohttp.ClientSession) -> None:
    result, logs = await result_of(guest, "samples/helloWorld", {"payload": "Cat"})
    assert result == {} and logs[-1].endswith("stdout: hello Cat!")
    assert (await result_of(guest, "samples/greeting", {"payload": "Cat", "place": "Narrowsburg"}))[0] == {
        "payload": "Hello, Cat from Narrowsburg!"}
    assert (await result_of(guest, "samples/greeting"))[0] == {"payload": "Hello, stranger from somewhere!"}
    result, logs = await result_of(guest, "samples/wordCount", {"payload": "Five fuzzy felines"})
    assert result == {"count": 3} and "The message 'Five fuzzy felines' has 3 words" in logs[-1]
    assert (await result_of(guest, "samples/wordCountAsync", {"payload": "one two"}))[0] == {"count": 2}
    result, logs = await result_of(guest, "samples/printParams", {"x": 1, "b": 5, "z": 2})
    assert result == {"params": {"b": 5, "x": 1, "z": 2}}
    assert [line.split("stdout: ")[1] for line in logs] == ["params.b: 5", "params.x: 1", "params.z: 2"]


@pytest.fixture
async def page() -> AsyncIterator[str]:
    """A loopback HTTP server that answers one text."""
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="hello from the page")

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_curl_returns_the_page_or_the_error(guest: aiohttp.ClientSession, page: str, whisk_url: str) -> None:
    # The sandbox's network is its own loopback, where only the API host is relayed: that answers, a page served on
    # the host's loopback does not (nor would any other host), and curl's error is the message.
    api_host = whisk_url.removeprefix("http://")
    result, _ = await asyncio.wait_for(result_of(guest, "samples/curl", {"payload": f"{api_host}/ping"}), 60)
    assert result == {"msg": "pong"}
    for unreachable in (page, f"127.0.0.1:{free_port()}"):
        result, _ = await result_of(guest, "samples/curl", {"payload": unreachable})
        assert "Failed to connect" in result["msg"] or "Couldn't connect" in result["msg"], result
