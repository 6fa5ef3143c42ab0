"""An invoker's `/disable`, `/enable` and `/isEnabled` (whisk/api/invokers.py): an invoker serves no access log, so
each refused call and each change of state is a log line of its own, without the credentials given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.support.log_lines import every_line
from tests.support.processes import basic_auth
from whisk.api import invokers
from whisk.api.keys import SETTINGS
from whisk.config import Settings
from whisk.invoker import service
from whisk.invoker.service import Invoker
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The lines the two modules log, at every level: an earlier test's configuration (a level of `warning`, loggers
    cached on first use) would otherwise keep them from capture_logs."""
    with every_line(monkeypatch, invokers, service) as captured:
        yield captured


async def test_refusals_and_state_changes_are_logged(lines: list[dict[str, Any]]) -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        async with Invoker(instance=3, bus=bus, store=store, pool=None, image_of=lambda _: "",  # type: ignore[arg-type]
                           api_host="", user_memory_mb=1024, max_intake=1, ping_interval_s=None) as inv:
            app = web.Application()
            app[SETTINGS] = Settings.from_env({"WHISK_ADMIN_PASSWORD": "s3cret-pw"})
            invokers.mount_invoker(app, lambda: inv)
            async with TestClient(TestServer(app)) as client:
                r = await client.post("/disable", headers=basic_auth("admin", "guessed-pw"))
                assert r.status == 401
                r = await client.post("/disable", headers=basic_auth("admin", "s3cret-pw"))
                assert r.status == 200 and await r.text() == "Invoker 3 disabled."
                r = await client.post("/enable", headers=basic_auth("admin", "s3cret-pw"))
                assert r.status == 200
    events = [(line["event"], line.get("reason")) for line in lines]
    assert events == [("invoker.admin.refused", "wrong credentials"), ("invoker.disabled", None),
                      ("invoker.enabled", None)]
    assert not any("pw" in str(value) for line in lines for value in line.values())


async def test_without_a_password_every_call_is_refused_and_says_why(lines: list[dict[str, Any]]) -> None:
    app = web.Application()
    app[SETTINGS] = Settings.from_env({})
    invokers.mount_invoker(app, lambda: None)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/isEnabled", headers=basic_auth("admin", ""))
        assert r.status == 401
    assert [(line["event"], line["reason"]) for line in lines] == [
        ("invoker.admin.refused", "no WHISK_ADMIN_PASSWORD set")]


async def test_an_invokers_answers_carry_a_transaction_id() -> None:
    """The invoker role's application (roles.build_app): its error `code` is the request's transaction id, echoed as
    X-Request-ID, as a controller's is (it was "")."""
    from whisk.roles import build_app
    app = build_app(Settings.from_env({"WHISK_ROLE": "invoker", "WHISK_STORE": "memory://"}))
    app.cleanup_ctx.clear()                      # the routes alone: no store, bus or container pool opened
    async with TestClient(TestServer(app)) as client:
        r = await client.post("/disable", headers={"X-Request-ID": "tid-of-the-caller"})
        assert r.status == 401 and r.headers["X-Request-ID"] == "tid-of-the-caller"
        assert (await r.json())["code"] == "tid-of-the-caller"


async def test_an_invokers_refusals_of_paths_and_methods_are_json() -> None:
    """An unknown path or a wrong method on an invoker is `{"error", "code"}` as on a controller (OpenWhisk's
    invoker server is a BasicHttpService: its customRejectionHandler answers Pekko's texts as ErrorResponse); they
    were aiohttp's plain-text "404: Not Found" and "405: Method Not Allowed"."""
    from whisk.roles import build_app
    app = build_app(Settings.from_env({"WHISK_ROLE": "invoker", "WHISK_STORE": "memory://"}))
    app.cleanup_ctx.clear()
    async with TestClient(TestServer(app)) as client:
        for method, path, status, error in (
                ("GET", "/api/v1/namespaces", 404, "The requested resource could not be found."),
                ("GET", "/", 404, "The requested resource could not be found."),
                ("GET", "/enable", 405, "HTTP method not allowed, supported methods: POST"),
                ("POST", "/isEnabled", 405, "HTTP method not allowed, supported methods: GET")):
            r = await client.request(method, path, headers={"X-Request-ID": "tid-of-the-caller"})
            assert r.status == status and r.content_type == "application/json", (path, await r.text())
            assert await r.json() == {"error": error, "code": "tid-of-the-caller"}
