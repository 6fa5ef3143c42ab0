"""APIs stored before createApi checked a document's shape and JSON (docs/openwhisk.md §1.13): each is written into a
SQLite store as an older whisk kept it, then a whisk on that store lists, merges into, deletes from and routes to them
without a 500: a part of the wrong type names nothing, and a document no answer can carry is left out of lists."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest_asyncio

from tests.api.support import basic
from tests.apigw.test_apigw import cli_apidoc, create, delete, get_apis
from tests.support.processes import GUEST_AUTH, GUEST_UUID, whisk_server
from tests.web.support import PY_ECHO, call, put_action
from whisk.store.sqlite import SqliteStore

ACTION = "stored-echo"
URL = f"http://127.0.0.1:1/api/v1/web/guest/default/{ACTION}.json"     # only the part after /api/v1/web/ is used
OP = {"operationId": "getX", "x-openwhisk": {"namespace": "guest", "package": "", "action": ACTION, "url": URL}}


def assembly(*cases: Any) -> dict[str, Any]:
    return {"x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": list(cases)}}]}}}


STORED: dict[str, dict[str, Any]] = {
    "/list-path": {"paths": {"/x": [1], "/y": {"get": OP}}},
    "/odd-cases": {"paths": {"/x": {"get": OP}}, **assembly({"operations": 5}, {"operations": [["getX"]]},
                                                            {"operations": ["getX"], "execute": 5})},
    "/odd-variable": {"paths": {"/x": {"get": OP}}, **assembly({"operations": ["getX"], "execute": [
        {"invoke": {"target-url": URL, "verb": "keep"}}, {"set-variable": [1]}]})},
    "/list-assembly": {"paths": {"/x": {"get": OP}}, "x-ibm-configuration": {"assembly": [1]}},
    "/list-paths": {"paths": [1]},
    "/nan": {"paths": {"/x": {"get": {**OP, "x-n": float("nan")}}}},
    "/surrogate": {"paths": {"/x": {"get": OP}}, "info": {"title": "\ud800"}},
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stored() -> AsyncIterator[aiohttp.ClientSession]:
    data = tempfile.mkdtemp(prefix="whisk-apigw-stored-")
    async with SqliteStore(f"{data}/whisk.db") as store:
        for base, parts in STORED.items():
            swagger = {"swagger": "2.0", "info": {"title": base, "version": "1.0.0"}, "basePath": base, **parts}
            await store.put({"_id": f"guest/api:{base}", "entityType": "api", "namespace": "guest", "name": base,
                             "swagger": swagger, "updated": 0})
    env = {"WHISK_STORE": f"sqlite://{data}/whisk.db", "WHISK_DATA_DIR": data}
    async with whisk_server(env, log_path=os.path.join(data, "server.log")) as url, aiohttp.ClientSession(
            base_url=url, headers=basic(GUEST_AUTH)) as session:
        await put_action(session, ACTION, PY_ECHO, annotations=[{"key": "web-export", "value": True}])
        yield session


def route(base: str, rel: str) -> str:
    return f"/api/{GUEST_UUID}{base}{rel}"


async def test_lists_leave_out_only_what_no_answer_can_carry(stored: aiohttp.ClientSession) -> None:
    status, body = await get_apis(stored)
    assert status == 200
    assert sorted(a["value"]["apidoc"]["basePath"] for a in body["apis"]) == sorted(set(STORED) - {"/nan",
                                                                                                   "/surrogate"})
    assert await get_apis(stored, basepath="/nan") == (200, {"apis": []})
    for base in ("/nan", "/surrogate"):                                  # still there to be deleted
        assert await delete(stored, basepath=base, relpath="/x") == (200, {})


async def test_routes_skip_parts_of_the_wrong_type(stored: aiohttp.ClientSession) -> None:
    for base in ("/list-path", "/odd-cases", "/odd-variable", "/list-assembly"):
        rel = "/y" if base == "/list-path" else "/x"
        status, body = await call(stored, "GET", route(base, rel), params={"via": base})
        assert (status, body.get("via")) == (200, base), body
    assert await call(stored, "GET", route("/list-path", "/x")) == (404, {"status": 404, "message":
                                                                          "Error: Not found."})
    assert await call(stored, "GET", route("/list-paths", "/x")) == (404, {"status": 404, "message":
                                                                           "Error: Not found."})


async def test_merging_into_a_malformed_api_is_refused(stored: aiohttp.ClientSession) -> None:
    for base, part in (("/list-path", 'paths["/x"] is an array; it should be an object.'),
                       ("/list-assembly", "x-ibm-configuration.assembly is an array; it should be an object.")):
        status, body = await create(stored, cli_apidoc(base, "/z", "get", ACTION, "http://127.0.0.1:1"))
        assert (status, body) == (502, {"error": f"API creation failure: The API '{base}' cannot take an operation: "
                                                 f"The swagger's {part} Replace it with a swagger document, or "
                                                 "delete it."})


async def test_deleting_from_a_malformed_api(stored: aiohttp.ClientSession) -> None:
    failure = "API deletion failure: "
    assert await delete(stored, basepath="/list-paths", relpath="/x") == \
        (502, {"error": f"{failure}path '/x' does not exist in the API"})
    assert await delete(stored, basepath="/odd-cases", relpath="/x", operation="get") == (200, {})
    assert await delete(stored, basepath="/list-path", relpath="/x", operation="get") == \
        (502, {"error": f"{failure}path '/x' with operation 'get' does not exist in the API"})
    assert await delete(stored, basepath="/list-path", relpath="/x") == (200, {})
    status, body = await get_apis(stored, basepath="/list-path")
    assert status == 200 and list(body["apis"][0]["value"]["apidoc"]["paths"]) == ["/y"]
    assert urlsplit(body["apis"][0]["value"]["gwApiUrl"]).path == f"/api/{GUEST_UUID}/list-path"
