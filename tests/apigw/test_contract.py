"""The API management contract's edges (docs/openwhisk.md §1.13): upstream's validation messages as 502 `{"error"}`,
credentials required for all three calls with APIs kept per namespace, Swagger documents (form B), reserved
parameters, routes that survive a restart, and the REST API left alone by the route prefix."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio

from tests.api.support import Deployment, basic, sqlite_deployment
from tests.apigw.test_apigw import MGMT, cli_apidoc, cli_query, create, delete, get_apis
from tests.support.processes import GUEST_AUTH, GUEST_UUID, whisk_server
from tests.web.support import PY_ECHO, call, put_action, unique

WEB = [{"key": "web-export", "value": True}]
FAIL = "API creation failure: "


def gateway(message: str) -> str:
    body = json.dumps({"status": 400, "message": f"Error: {message}"}, separators=(",", ":"))
    return f"{FAIL}Unable to configure the API Gateway (status code 400): {body}"


def swagger(base: str, paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"swagger": "2.0", "basePath": base, "info": {"title": "From a file", "version": "1.0.0"},
            "paths": paths, **extra}


OP_X = {"/x": {"get": {"operationId": "getX"}}}
CASE = "x-ibm-configuration.assembly.execute[0].operation-switch.case[0]"


def assembly(cases: list[Any]) -> dict[str, Any]:
    return {"x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": cases}}]}}}


def apidoc_without(field: str, host: str = "http://127.0.0.1:1") -> dict[str, Any]:
    body = cli_apidoc("/v", "/x", "get", "a", host)
    if field.startswith("action."):
        del body["apidoc"]["action"][field.split(".", 1)[1]]
    else:
        del body["apidoc"][field]
    return body


@pytest.mark.parametrize("body, message", [
    ({}, "apidoc is required."),
    ({"apidoc": "{nope"}, "apidoc field cannot be parsed. Ensure it is valid JSON."),
    ({"apidoc": 5}, "apidoc field is of type number and should be a JSON object or a JSON string."),
    # A JSON string is read by whisk's strict parser: what could not be stored and answered again is refused.
    ({"apidoc": "[" * 1000 + "]" * 1000}, "apidoc field cannot be parsed. Ensure it is valid JSON."),
    ({"apidoc": '{"namespace": "\\ud800"}'}, "apidoc field cannot be parsed. Ensure it is valid JSON."),
    ({"apidoc": '{"namespace": "_", "swagger": NaN}'}, "apidoc field cannot be parsed. Ensure it is valid JSON."),
    ({"apidoc": {"namespace": "_", "swagger": '{"basePath": "/a", "info": Infinity}'}},
     "swagger field cannot be parsed. Ensure it is valid JSON."),
    ({"apidoc": {"gatewayBasePath": "/v"}}, "apidoc is missing the namespace field"),
    ({"apidoc": json.dumps({"gatewayBasePath": "/v"})}, "apidoc is missing the namespace field"),
    ({"apidoc": {"namespace": "_", "swagger": "{}", "gatewayBasePath": "/v"}},
     "swagger and gatewayBasePath are mutually exclusive and cannot be specified together."),
    ({"apidoc": {"namespace": "_", "swagger": "{x"}}, "swagger field cannot be parsed. Ensure it is valid JSON."),
    ({"apidoc": {"namespace": "_", "swagger": True}}, "swagger field is boolean and should be an object or a JSON "
                                                      "string."),
    ({"apidoc": {"namespace": "_", "swagger": {"paths": {"/a": {}}, "info": {}}}},
     "swagger is missing the basePath field."),
    ({"apidoc": {"namespace": "_", "swagger": {"basePath": "/a", "info": {"title": "t"}}}},
     "swagger is missing the paths field."),
    (apidoc_without("gatewayBasePath"), "apidoc is missing the gatewayBasePath field"),
    (apidoc_without("gatewayPath"), "apidoc is missing the gatewayPath field"),
    (apidoc_without("gatewayMethod"), "apidoc is missing the gatewayMethod field"),
    (apidoc_without("action"), "apidoc is missing the action field."),
    (apidoc_without("action.backendMethod"), "action is missing the backendMethod field."),
    (apidoc_without("action.backendUrl"), "action is missing the backendUrl field."),
    (apidoc_without("action.namespace"), "action is missing the namespace field."),
    (apidoc_without("action.name"), "action is missing the name field."),
    (apidoc_without("action.authkey"), "action is missing the authkey field."),
    (cli_apidoc("/v/{id}", "/x", "get", "a", "http://h"),
     f"{FAIL}The base path (/v/{{id}}) cannot have parameters. Only the relative path supports path parameters."),
    (cli_apidoc("/v", "x", "get", "a", "http://h"), gateway("Resource path must begin with '/'.")),
    (cli_apidoc("/v", "/x", "fetch", "a", "http://h"), gateway("Resource verb 'fetch' not supported.")),
    (cli_apidoc("/v", "/it's", "get", "a", "http://h"), gateway("resource path contains illegal character \"'\".")),
    (cli_apidoc("/v", "/b/{isbn}", "get", "a", "http://h"),
     f"{FAIL}The action must use a response type of '.http' in order to receive the path parameters."),
    (cli_apidoc("/v", "/x", "get", "a", "not a url"),
     f"{FAIL}API swagger generation error: TypeError: Cannot read properties of null (reading '1')"),
    ({"apidoc": {"namespace": "_", "swagger": swagger("/v", {})}}, gateway("Empty resources object.")),
    *[({"apidoc": {"namespace": "_", "swagger": document}}, f"{FAIL}The swagger's {message}") for document, message in [
        ({**swagger("/v", OP_X), "basePath": 5}, "basePath is a number; it should be a string."),
        (swagger("/v", {"/x": [1]}), 'paths["/x"] is an array; it should be an object.'),
        (swagger("/v", {"/x": {"get": 5}}), 'paths["/x"].get is a number; it should be an object.'),
        (swagger("/v", {"/x/{id}": {"parameters": 5, "get": {}}}),
         'paths["/x/{id}"].parameters is a number; it should be an array.'),
        (swagger("/v", {"/x/{id}": {"get": {"parameters": 5}}}),
         'paths["/x/{id}"].get.parameters is a number; it should be an array.'),
        (swagger("/v", {"/x": {"get": {"x-openwhisk": []}}}),
         'paths["/x"].get.x-openwhisk is an array; it should be an object.'),
        (swagger("/v", OP_X, **{"x-ibm-configuration": []}),
         "x-ibm-configuration is an array; it should be an object."),
        (swagger("/v", OP_X, **{"x-ibm-configuration": {"assembly": [1]}}),
         "x-ibm-configuration.assembly is an array; it should be an object."),
        (swagger("/v", OP_X, **{"x-ibm-configuration": {"assembly": {"execute": 5}}}),
         "x-ibm-configuration.assembly.execute is a number; it should be an array."),
        (swagger("/v", OP_X, **assembly([{"operations": 5}])),
         f"{CASE}.operations is a number; it should be an array."),
        (swagger("/v", OP_X, **assembly([{"operations": [["getX"]]}])),
         f"{CASE}.operations[0] is an array; it should be a string."),
        (swagger("/v", OP_X, **assembly([{"operations": ["getX"], "execute": 5}])),
         f"{CASE}.execute is a number; it should be an array."),
        (swagger("/v", OP_X, **assembly([{"operations": ["getX"], "execute": [{"set-variable": [1]}]}])),
         f"{CASE}.execute[0].set-variable is an array; it should be an object."),
        (swagger("/v", OP_X, **assembly([{"operations": ["getX"], "execute": [{"set-variable": {"actions": [5]}}]}])),
         f"{CASE}.execute[0].set-variable.actions[0] is a number; it should be an object."),
    ]],
])
async def test_create_refusals(guest: aiohttp.ClientSession, body: dict[str, Any], message: str) -> None:
    assert await create(guest, body) == (502, {"error": message})


async def test_numbers_beyond_any_float_are_refused(whisk_url: str, guest: aiohttp.ClientSession) -> None:
    """1e400 would reach the API as infinity, which JSON cannot carry (stored, every getApi would answer `Infinity`):
    the body is refused where every body is read, before createApi sees it."""
    base = "/" + unique("inf")
    document = json.dumps(swagger(base, {"/x": {"get": {"operationId": "getX", "x-max": 0}}})).replace("0}", "1e400}")
    form_a = json.dumps(cli_apidoc(base, "/x", "get", "a", whisk_url, pathParameters=[0])).replace("[0]", "[1e400]")
    for body in (f'{{"apidoc": {{"namespace": "_", "swagger": {document}}}}}', form_a):
        status, answer = await call(guest, "POST", f"{MGMT}/createApi.http", data=body, params=cli_query(),
                                    headers={"Content-Type": "application/json"})
        assert status == 400 and "too large for a 64-bit float" in answer["error"], answer
    assert await get_apis(guest, basepath=base) == (200, {"apis": []})


async def test_path_parameters_must_be_declared(whisk_url: str, guest: aiohttp.ClientSession) -> None:
    undeclared = (502, {"error": f"{FAIL}The parameter 'isbn' defined in path '/b/{{isbn}}' does not match any of the "
                                 "parameters defined for the path in the swagger file."})
    assert await create(guest, cli_apidoc("/v", "/b/{isbn}", "get", "a", whisk_url), **cli_query("http")) == undeclared
    # A parameter whose name is not a string declares none.
    named = cli_apidoc("/v", "/b/{isbn}", "get", "a", whisk_url, pathParameters=[{"name": ["isbn"], "in": "path"}])
    assert await create(guest, named, **cli_query("http")) == undeclared
    url = f"{whisk_url}/api/v1/web/guest/default/a.http"
    document = swagger("/v", {"/b/{isbn}": {"parameters": [{"name": {}}], "get": {
        "operationId": "getB", "x-openwhisk": {"namespace": "guest", "package": "", "action": "a", "url": url}}}},
        **assembly([{"operations": ["getB"], "execute": [{"invoke": {"target-url": url + "$(request.path)"}}]}]))
    assert await create(guest, {"apidoc": {"namespace": "_", "swagger": document}}) == undeclared


async def test_reserved_parameters_are_refused(guest: aiohttp.ClientSession) -> None:
    refused = "Request defines parameters that are not allowed (e.g., reserved properties)."
    status, body = await call(guest, "GET", f"{MGMT}/getApi.http", params={"__ow_user": "other"})
    assert (status, body["error"]) == (400, refused) and body["code"]
    status, body = await call(guest, "POST", f"{MGMT}/createApi.http", {"gwUrlV2": "http://127.0.0.1:1"})
    assert (status, body["error"]) == (400, refused)


@pytest.mark.parametrize("config", [{"assembly": None}, {"assembly": {"execute": None}},
                                    {"assembly": {"execute": [{"operation-switch": {"case": None}}]}}])
async def test_an_endpoint_joins_a_swagger_document_with_null_parts(whisk_url: str, guest: aiohttp.ClientSession,
                                                                    anonymous: aiohttp.ClientSession,
                                                                    config: dict[str, Any]) -> None:
    """A document may give null for any part of its assembly (read as absent); a later `wsk api create` into its
    base path adds its operation and case there (it was a 500)."""
    action, base = unique("a"), "/" + unique("null")
    await put_action(guest, action, PY_ECHO, annotations=WEB)
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.json"
    document = swagger(base, {"/one": {"get": {"operationId": "getOne", "x-openwhisk": {
        "namespace": "guest", "package": "", "action": action, "url": url}}}}, **{"x-ibm-configuration": config})
    assert (await create(guest, {"apidoc": {"namespace": "_", "swagger": document}}))[0] == 200
    status, api = await create(guest, cli_apidoc(base, "/two", "get", action, whisk_url))
    assert status == 200, api
    for rel in ("/one", "/two"):
        status, body = await call(anonymous, "GET", urlsplit(api["gwApiUrl"]).path + rel, params={"k": rel})
        assert (status, body.get("k")) == (200, rel), body
    assert await delete(guest, basepath=base) == (200, {})


async def test_management_calls_take_the_web_routes_verbs_only(guest: aiohttp.ClientSession) -> None:
    """Upstream they are web actions, whose route allows GET, DELETE, POST, PUT, HEAD, OPTIONS and PATCH: another
    verb is 405, as on any web action (a TRACE or PROPFIND answered the namespace's APIs)."""
    for method in ("TRACE", "PROPFIND"):
        for path in (f"{MGMT}/getApi.http", f"{MGMT}/getApi", "/api/v1/web/guest/default/anything.json"):
            async with guest.request(method, path, params=cli_query()) as r:
                assert r.status == 405, (method, path, await r.text())
                assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
                body = await r.json()
                allowed = "HTTP method not allowed, supported methods: DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
                assert body["error"] == allowed and body["code"], body


async def test_swagger_documents_replace_their_api(whisk_url: str, guest: aiohttp.ClientSession,
                                                   anonymous: aiohttp.ClientSession) -> None:
    action, base = unique("a"), "/" + unique("file")
    await put_action(guest, action, PY_ECHO, annotations=WEB)
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.json"
    document = swagger(base, {
        "/one": {"get": {"operationId": "one", "x-openwhisk": {"namespace": "guest", "package": "", "action": action,
                                                               "url": url},
                         "responses": {"default": {"description": "d"}}}},
        "/none": {"get": {"operationId": "none", "responses": {}}},
    }, **{"x-ibm-configuration": {"cors": {"enabled": True}, "assembly": {"execute": [{"operation-switch": {
        "case": [{"operations": ["one"], "execute": [{"invoke": {"target-url": url, "verb": "keep"}}]}]}}]}}})
    status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": json.dumps(document)}})
    assert status == 200 and api["apidoc"] == document                       # stored as given
    gw_path = urlsplit(api["gwApiUrl"]).path
    status, body = await call(anonymous, "GET", f"{gw_path}/one", params={"k": "v"})
    assert status == 200 and body["k"] == "v"
    assert (await call(anonymous, "GET", f"{gw_path}/none"))[0] == 404
    smaller = swagger(base, {"/two": document["paths"]["/one"]})
    status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": smaller}})
    assert status == 200 and set(api["apidoc"]["paths"]) == {"/two"}
    assert [a["value"]["apidoc"] for a in (await get_apis(guest, basepath=base))[1]["apis"]] == [smaller]


async def test_a_swagger_document_nested_as_deep_as_a_body_may_be(whisk_url: str,
                                                                  guest: aiohttp.ClientSession) -> None:
    """A swagger document is a JSON body, nested up to the parser's limit: its copies were made with
    `copy.deepcopy`, two frames a level, so one ~490 levels deep was a 500 with a RecursionError (a 502 of the
    gateway's words below that). It is read, refused for its empty paths, and then, with an operation, stored and
    answered back as given."""
    action, base = unique("a"), "/" + unique("deep")
    await put_action(guest, action, PY_ECHO, annotations=[{"key": "web-export", "value": True}])
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.json"
    levels = 490                                  # inside the body, `apidoc` and `swagger`: under the limit of 500
    deep = "[" * levels + "]" * levels
    for paths in ("{}", json.dumps({"/one": {"get": {"operationId": "one", "x-openwhisk": {
            "namespace": "guest", "package": "", "action": action, "url": url}}}})):
        raw = (f'{{"apidoc":{{"namespace":"_","swagger":{{"swagger":"2.0","basePath":"{base}",'
               f'"info":{{"title":"t","version":"1"}},"paths":{paths},"x-deep":{deep}}}}}}}')
        status, api = await call(guest, "POST", f"{MGMT}/createApi.http", data=raw.encode(), params=cli_query(),
                                 headers={"Content-Type": "application/json"})
        assert status == 502 if paths == "{}" else status == 200, (status, str(api)[:300])
    assert json.dumps(api["apidoc"]["x-deep"], separators=(",", ":")) == deep
    status, apis = await get_apis(guest, basepath=base)
    assert status == 200 and [a["value"]["apidoc"]["basePath"] for a in apis["apis"]] == [base]
    status, body = await delete(guest, basepath=base)
    assert status == 200, body


async def test_cors_disabled_in_a_swagger_document_leaves_no_cors_headers(
        whisk_url: str, guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession) -> None:
    """`cors: {enabled: false}`: the gateway answers no preflight and takes the CORS headers off the web action's
    answers (`cors.lua` replaceHeaders); a document with no `cors` leaves the action's own."""
    action = unique("a")
    await put_action(guest, action, PY_ECHO, annotations=WEB)
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.json"
    op = {"get": {"operationId": "one", "x-openwhisk": {"namespace": "guest", "package": "", "action": action,
                                                         "url": url}}}
    assembly = {"execute": [{"operation-switch": {"case": [
        {"operations": ["one"], "execute": [{"invoke": {"target-url": url, "verb": "keep"}}]}]}}]}
    cors_headers = {"access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                    "access-control-allow-credentials"}
    for cors, expected in (({"enabled": False}, set()), (None, {"access-control-allow-origin",
                                                               "access-control-allow-methods",
                                                               "access-control-allow-headers"})):
        config: dict[str, Any] = {"assembly": assembly}
        if cors is not None:
            config["cors"] = cors
        base = "/" + unique("cors")
        status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": swagger(
            base, {"/one": op}, **{"x-ibm-configuration": config})}})
        assert status == 200, api
        path = urlsplit(api["gwApiUrl"]).path + "/one"
        async with anonymous.get(path, headers={"Origin": "http://127.0.0.1:9"}) as r:
            assert r.status == 200
            assert {k.lower() for k in r.headers} & cors_headers == expected, cors
        status, body = await call(anonymous, "OPTIONS", path)
        assert (status, body) == (404, {"status": 404, "message": "Error: Whoops. Verb not supported."}), cors


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deployment() -> AsyncIterator[Deployment]:
    async with sqlite_deployment() as d:
        yield d


async def test_credentials_are_required_and_apis_belong_to_their_namespace(deployment: Deployment) -> None:
    async with aiohttp.ClientSession(base_url=deployment.url) as anonymous, \
            aiohttp.ClientSession(base_url=deployment.url, headers=basic(GUEST_AUTH)) as owner, \
            aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as stranger, \
            aiohttp.ClientSession(base_url=deployment.url, headers=basic(GUEST_UUID + ":" + "x" * 64)) as wrong:
        action, base = unique("a"), "/" + unique("mine")
        await put_action(owner, action, PY_ECHO, annotations=WEB)
        body = cli_apidoc(base, "/x", "get", action, deployment.url)
        for session in (anonymous, wrong):
            assert await create(session, body) == (502, {"error": "A valid auth key is required."})
            assert await get_apis(session) == (502, {"error": "Invalid authentication."})
            assert await delete(session, basepath=base) == (502, {"error": "Invalid authentication."})
        status, api = await create(owner, body)
        assert status == 200
        # The spaceguid a caller sends does not select a tenant: the stranger sees and deletes only its own.
        assert await get_apis(stranger, basepath=base) == (200, {"apis": []})
        assert await delete(stranger, basepath=base) == (
            502, {"error": f"API deletion failure: API '{base}' does not exist."})
        assert len((await get_apis(owner, basepath=base))[1]["apis"]) == 1
        # The route itself is public, like any web action.
        assert (await call(stranger, "GET", urlsplit(api["gwApiUrl"]).path + "/x"))[0] == 200


async def test_routes_survive_a_restart() -> None:
    data = tempfile.mkdtemp(prefix="whisk-apigw-")
    env = {"WHISK_STORE": f"sqlite://{data}/whisk.db", "WHISK_DATA_DIR": data}
    action, base = unique("a"), "/" + unique("kept")
    async with whisk_server(env, log_path=os.path.join(data, "first.log")) as url, aiohttp.ClientSession(
            base_url=url, headers=basic(GUEST_AUTH)) as session:
        await put_action(session, action, PY_ECHO, annotations=WEB)
        status, api = await create(session, cli_apidoc(base, "/x", "get", action, url))
        assert status == 200
    async with whisk_server(env, log_path=os.path.join(data, "second.log")) as url, aiohttp.ClientSession(
            base_url=url, headers=basic(GUEST_AUTH)) as session:
        status, body = await get_apis(session, basepath=base)
        assert status == 200 and body["apis"][0]["value"]["apidoc"] == api["apidoc"]
        status, body = await call(session, "GET", urlsplit(body["apis"][0]["value"]["gwApiUrl"]).path + "/x",
                                  params={"after": "restart"})
        assert status == 200 and body["after"] == "restart"


async def test_the_route_prefix_leaves_the_rest_api_alone(guest: aiohttp.ClientSession,
                                                          anonymous: aiohttp.ClientSession) -> None:
    status, body = await call(guest, "GET", "/api/v1/namespaces/_/nothing")
    assert status == 404 and body["error"] == "The requested resource could not be found."
    status, body = await call(anonymous, "GET", "/api/v1/namespaces")
    assert status == 401
    assert await call(anonymous, "GET", "/api/00000000-0000-0000-0000-000000000000/any/thing") == \
        (404, {"status": 404, "message": "Error: Not found."})
