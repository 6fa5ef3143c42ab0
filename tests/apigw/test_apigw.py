"""API routes over real HTTP (docs/openwhisk.md §1.13): `whisk.system/apimgmt/{createApi,getApi,deleteApi}` as the `wsk`
CLI and the openwhisk npm client call them, the Swagger they read back, and each created route served by its web
action."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from tests.support.processes import GUEST_AUTH, GUEST_UUID, basic_auth, whisk_server
from tests.web.support import NODE_PRELUDE, PY_ECHO, call, put_action, run_node, unique

WEB = [{"key": "web-export", "value": True}]
MGMT = "/api/v1/web/whisk.system/apimgmt"
PY_HTTP_ECHO = "def main(args):\n    return {'body': args}\n"           # for .http targets


def cli_apidoc(base: str, rel: str, verb: str, action: str, host: str, **extra: Any) -> dict[str, Any]:
    """A createApi body as `wsk api create BASE REL VERB ACTION` sends it (one endpoint, as the CLI's api.go builds
    it)."""
    doc: dict[str, Any] = {
        "namespace": "_", "gatewayBasePath": base, "gatewayPath": rel, "gatewayMethod": verb.upper(),
        "id": f"API:_:{base}",
        "action": {"name": action, "namespace": "_", "backendMethod": verb.upper(),
                   "backendUrl": f"{host}/api/v1/web/_/default/{action}.http", "authkey": GUEST_AUTH}}
    doc.update(extra)
    return {"apidoc": doc}


def cli_query(response_type: str = "json") -> dict[str, str]:
    return {"accesstoken": "DUMMY TOKEN", "responsetype": response_type, "spaceguid": GUEST_UUID}


async def create(session: aiohttp.ClientSession, body: Any, **query: str) -> tuple[int, Any]:
    return await call(session, "POST", f"{MGMT}/createApi.http", body, params=query or cli_query())


async def get_apis(session: aiohttp.ClientSession, **query: str) -> tuple[int, Any]:
    return await call(session, "GET", f"{MGMT}/getApi.http", params={"accesstoken": "DUMMY TOKEN",
                                                                     "spaceguid": GUEST_UUID, **query})


async def delete(session: aiohttp.ClientSession, **query: str) -> tuple[int, Any]:
    return await call(session, "DELETE", f"{MGMT}/deleteApi.http", params={"accesstoken": "DUMMY TOKEN",
                                                                           "spaceguid": GUEST_UUID, **query})


def route_path(gw_api_url: str, rel: str) -> str:
    return urlsplit(gw_api_url).path + rel


async def test_npm_client_creates_lists_and_deletes_routes(whisk_url: str, guest: aiohttp.ClientSession) -> None:
    action, base = unique("hello"), "/" + unique("npm")
    await put_action(guest, action, PY_ECHO, annotations=WEB)
    script = NODE_PRELUDE + f"""
    done((async () => {{
      const created = await ow.routes.create({{relpath: '/hello', operation: 'GET', action: '{action}',
                                                basepath: '{base}', name: 'My API'}});
      const all = await ow.routes.list();
      const one = await ow.routes.get({{basepath: '{base}'}});
      const byName = await ow.routes.get({{name: 'My API'}});
      const fetched = await fetch(created.gwApiUrl + '/hello?who=node').then(r => r.json());
      const deleted = await ow.routes.delete({{basepath: '{base}'}});
      const after = await ow.routes.list({{basepath: '{base}'}});
      const gone = await fetch(created.gwApiUrl + '/hello').then(async r => [r.status, await r.json()]);
      return {{created, all, one, byName, fetched, deleted, after, gone}};
    }})());
    """
    out = await run_node(script, WHISK_URL=whisk_url, WHISK_KEY=GUEST_AUTH)
    created = out["created"]
    assert created["gwApiUrl"] == f"{whisk_url}/api/{GUEST_UUID}/{base.strip('/')}"
    assert (created["namespace"], created["tenantId"], created["gwApiActivated"]) == ("Not Used", "Not Used", True)
    doc = created["apidoc"]
    assert doc["basePath"] == base and doc["info"] == {"title": "My API", "version": "1.0.0"}
    op = doc["paths"]["/hello"]["get"]
    assert op["operationId"] == "getHello"
    assert op["x-openwhisk"] == {"namespace": "guest", "package": "", "action": action,
                                 "url": f"{whisk_url}/api/v1/web/guest/default/{action}.json"}
    assert any(a["value"]["apidoc"]["basePath"] == base for a in out["all"]["apis"])
    assert [a["value"]["gwApiUrl"] for a in out["one"]["apis"]] == [created["gwApiUrl"]]
    assert out["one"]["apis"][0]["id"] == "Not Used" and out["one"]["apis"][0]["key"] == "Not Used"
    assert [a["value"]["apidoc"]["basePath"] for a in out["byName"]["apis"]] == [base]
    assert out["fetched"]["who"] == "node" and out["fetched"]["__ow_method"] == "get"
    assert out["deleted"] == {} and out["after"] == {"apis": []}
    assert out["gone"] == [404, {"status": 404, "message": "Error: Not found."}]


async def test_path_parameters_reach_the_action_through_request_path(whisk_url: str, guest: aiohttp.ClientSession,
                                                                      anonymous: aiohttp.ClientSession) -> None:
    action, base = unique("books"), "/" + unique("club")
    await put_action(guest, action, PY_HTTP_ECHO, annotations=WEB)
    parameters = [{"name": "isbn", "in": "path", "description": "Default description for 'isbn'", "required": True,
                   "type": "string"}]
    status, api = await create(guest, cli_apidoc(base, "/books/{isbn}", "get", action, whisk_url,
                                                 pathParameters=parameters), **cli_query("http"))
    assert status == 200, api
    op = api["apidoc"]["paths"]["/books/{isbn}"]["get"]
    assert op["operationId"] == "getBooksIsbn" and op["parameters"] == parameters
    (case,) = api["apidoc"]["x-ibm-configuration"]["assembly"]["execute"][0]["operation-switch"]["case"]
    assert case == {"operations": ["getBooksIsbn"], "execute": [{"invoke": {
        "target-url": f"{whisk_url}/api/v1/web/guest/default/{action}.http$(request.path)", "verb": "keep"}}]}
    path = route_path(api["gwApiUrl"], "/books/978-0596517748")
    async with anonymous.get(path, params={"q": "1"}, headers={"Origin": "http://127.0.0.1:9"}) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        body = await r.json()
    assert body["__ow_path"] == f"{base}/books/978-0596517748" and body["q"] == "1"
    assert body["__ow_headers"]["x-forwarded-url"].endswith(f"{path}?q=1")
    # A path parameter's value reaches the action only in `__ow_path`: encoded as sent, an encoded "?" or "/" in it
    # neither ends the path nor splits the segment.
    async with aiohttp.ClientSession() as client:
        async with client.get(URL(whisk_url + route_path(api["gwApiUrl"], "/books/x%3Fy%2Fz"), encoded=True),
                              params={"q": "2"}) as r:
            assert r.status == 200
            body = await r.json()
    assert body["__ow_path"] == f"{base}/books/x%3Fy%2Fz" and body["q"] == "2"
    status, body = await call(anonymous, "POST", path)
    assert (status, body) == (404, {"status": 404, "message": "Error: Whoops. Verb not supported."})
    async with anonymous.options(path) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Methods"] == \
            "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
        assert "Access-Control-Allow-Headers" not in r.headers
    # A browser's preflight names the headers it means to send: the gateway allows them (cors.lua echoes
    # Access-Control-Request-Headers), or the browser would not send the request at all.
    async with anonymous.options(path, headers={"Origin": "http://127.0.0.1:9",
                                                "Access-Control-Request-Method": "GET",
                                                "Access-Control-Request-Headers": "content-type, x-custom"}) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Headers"] == "content-type, x-custom"
        assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    status, body = await call(anonymous, "GET", route_path(api["gwApiUrl"], "/elsewhere"))
    assert (status, body) == (404, {"status": 404, "message": "Error: Not found."})


async def test_a_route_answer_that_allows_the_callers_origin_varies_on_origin(
        whisk_url: str, guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession) -> None:
    """The gateway allows the request's own `Origin`, so its answers say `Vary: Origin`: in Chromium, an answer kept
    in the cache (`Cache-Control: max-age`) for a page of one origin was refused to a page of another ("The
    'Access-Control-Allow-Origin' header has a value ... that is not equal to the supplied origin")."""
    base = "/" + unique("vary")
    cached, plain = unique("cached"), unique("plain")
    await put_action(guest, cached, "def main(args):\n    return {'headers': {'Cache-Control': 'max-age=600', "
                     "'Vary': 'Accept-Encoding'}, 'body': {'n': 1}}\n", annotations=WEB)
    await put_action(guest, plain, PY_HTTP_ECHO, annotations=WEB)
    assert (await create(guest, cli_apidoc(base, "/cached", "get", cached, whisk_url), **cli_query("http")))[0] == 200
    status, api = await create(guest, cli_apidoc(base, "/plain", "get", plain, whisk_url), **cli_query("http"))
    assert status == 200, api
    for rel, vary in (("/cached", "Accept-Encoding, Origin"), ("/plain", "Origin")):
        for origin in ("http://127.0.0.1:9", "http://127.0.0.1:10"):
            async with anonymous.get(route_path(api["gwApiUrl"], rel), headers={"Origin": origin}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == origin
                assert r.headers.getall("Vary") == [vary], rel
    async with anonymous.options(route_path(api["gwApiUrl"], "/plain"), headers={
            "Origin": "http://127.0.0.1:9", "Access-Control-Request-Method": "GET"}) as r:
        assert r.status == 200 and r.headers["Vary"] == "Origin"


async def test_management_calls_answer_a_page_of_another_origin(guest: aiohttp.ClientSession,
                                                                 anonymous: aiohttp.ClientSession) -> None:
    """Upstream createApi/getApi/deleteApi are web actions without `web-custom-options`: a preflight is answered
    200 with the web route's CORS headers, and so is every answer (they had none, and a preflight was a 502, so a
    page of another origin could not manage its APIs)."""
    origin = {"Origin": "http://127.0.0.1:9"}
    async with anonymous.options(f"{MGMT}/getApi.http", headers=origin | {
            "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["Access-Control-Allow-Headers"] == "authorization"
        assert "GET" in r.headers["Access-Control-Allow-Methods"]
    for session, query, status in ((guest, {}, 200), (anonymous, {}, 502), (guest, {"gwUrl": "x"}, 400)):
        async with session.get(f"{MGMT}/getApi.http", headers=origin, params={
                "accesstoken": "DUMMY TOKEN", "spaceguid": GUEST_UUID, "basepath": "/" + unique("none"), **query}) as r:
            assert r.status == status, await r.text()
            assert r.headers["Access-Control-Allow-Origin"] == "*"
            assert r.headers["Access-Control-Allow-Headers"] == "Authorization, Origin, X-Requested-With, " \
                "Content-Type, Accept, User-Agent"


async def test_operations_merge_into_one_api_and_secure_keys_are_injected(
        whisk_url: str, guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession) -> None:
    open_, locked, base = unique("open"), unique("locked"), "/" + unique("merge")
    await put_action(guest, open_, PY_ECHO, annotations=WEB)
    await put_action(guest, locked, PY_ECHO, annotations=WEB + [{"key": "require-whisk-auth", "value": "s3cret"}])
    assert (await create(guest, cli_apidoc(base, "/a", "get", open_, whisk_url, apiName="First")))[0] == 200
    status, api = await create(guest, cli_apidoc(base, "/a", "post", locked, whisk_url, apiName="Ignored"))
    assert status == 200
    body = cli_apidoc(base, "/b", "put", locked, whisk_url)
    body["apidoc"]["action"]["secureKey"] = "s3cret"
    status, api = await create(guest, body)
    assert status == 200
    doc = api["apidoc"]
    assert doc["info"]["title"] == "First"                           # the title is set when the API is made
    assert set(doc["paths"]) == {"/a", "/b"} and set(doc["paths"]["/a"]) == {"get", "post"}
    cases = doc["x-ibm-configuration"]["assembly"]["execute"][0]["operation-switch"]["case"]
    assert [c["operations"] for c in cases] == [["getA"], ["postA"], ["putB"]]
    assert cases[2]["execute"][1] == {"set-variable": {"actions": [
        {"set": "message.headers.X-Require-Whisk-Auth", "value": "s3cret"}]}}
    route = route_path(api["gwApiUrl"], "/b")
    assert (await call(anonymous, "PUT", route))[0] == 200                       # the gateway adds the secret
    assert (await call(anonymous, "PUT", f"/api/v1/web/guest/default/{locked}.json"))[0] == 401
    assert (await call(anonymous, "POST", route_path(api["gwApiUrl"], "/a")))[0] == 401
    # Made again without a secure key, the operation's whole case is replaced: no stale header.
    status, api = await create(guest, cli_apidoc(base, "/b", "put", locked, whisk_url))
    cases = api["apidoc"]["x-ibm-configuration"]["assembly"]["execute"][0]["operation-switch"]["case"]
    assert len(cases) == 3 and len(cases[2]["execute"]) == 1
    assert (await call(anonymous, "PUT", route))[0] == 401
    # A name instead of a base path merges into the API of that title.
    status, api = await create(guest, cli_apidoc("First", "/c", "get", open_, whisk_url))
    assert status == 200 and api["apidoc"]["basePath"] == base and "/c" in api["apidoc"]["paths"]
    status, body = await create(guest, cli_apidoc(unique("NoSuchTitle"), "/c", "get", open_, whisk_url))
    assert status == 502 and "does not exist" in body["error"]


async def test_a_secure_key_of_another_type_is_sent_as_its_json(whisk_url: str, guest: aiohttp.ClientSession,
                                                                  anonymous: aiohttp.ClientSession) -> None:
    action, base = unique("open"), "/" + unique("keys")
    await put_action(guest, action, PY_ECHO, annotations=WEB)
    for rel, key, header in (("/object", {"a": [1, "b"]}, '{"a":[1,"b"]}'), ("/number", 42, "42"),
                             ("/true", True, "true")):
        body = cli_apidoc(base, rel, "get", action, whisk_url)
        body["apidoc"]["action"]["secureKey"] = key
        status, api = await create(guest, body)
        assert status == 200, api
        status, echoed = await call(anonymous, "GET", route_path(api["gwApiUrl"], rel))
        assert (status, echoed["__ow_headers"]["x-require-whisk-auth"]) == (200, header)


async def test_get_filters_and_pages(whisk_url: str) -> None:
    async with whisk_server() as url, aiohttp.ClientSession(base_url=url, headers=basic_auth(
            *GUEST_AUTH.split(":"))) as session:
        action = unique("a")
        await put_action(session, action, PY_ECHO, annotations=WEB)
        for base, title in (("/p1", "Named"), ("/p2", None), ("/p3", "Named")):
            extra = {"apiName": title} if title else {}
            assert (await create(session, cli_apidoc(base, "/x", "get", action, url, **extra)))[0] == 200
        status, body = await get_apis(session, limit="30", skip="0")           # what `wsk api list` sends
        assert status == 200
        bases = [a["value"]["apidoc"]["basePath"] for a in body["apis"]]
        assert sorted(bases) == ["/p1", "/p2", "/p3"]
        assert [a["value"]["apidoc"]["basePath"] for a in (await get_apis(session, skip="1", limit="1"))[1]["apis"]] \
            == bases[1:2]
        assert (await get_apis(session, limit="0"))[1] == {"apis": []}
        assert len((await get_apis(session, limit="undefined", skip="undefined"))[1]["apis"]) == 3
        for huge in ("skip", "limit"):                  # beyond any float: refused as every such body is
            status, body = await call(session, "POST", f"{MGMT}/getApi.http", data=f'{{"{huge}": 1e400}}',
                                      headers={"Content-Type": "application/json"})
            assert status == 400 and "too large for a 64-bit float" in body["error"], body
        named = (await get_apis(session, basepath="Named"))[1]["apis"]
        assert sorted(a["value"]["apidoc"]["basePath"] for a in named) == ["/p1", "/p3"]
        assert [a["value"]["gwApiUrl"] for a in (await get_apis(session, basepath="/p2/"))[1]["apis"]] == \
            [f"{url}/api/{GUEST_UUID}/p2"]
        assert (await get_apis(session, basepath="/nope"))[1] == {"apis": []}


async def test_delete_operations_paths_and_apis(whisk_url: str, guest: aiohttp.ClientSession) -> None:
    action, base = unique("a"), "/" + unique("del")
    await put_action(guest, action, PY_ECHO, annotations=WEB)
    for rel, verb in (("/x", "get"), ("/x", "post"), ("/y", "get")):
        assert (await create(guest, cli_apidoc(base, rel, verb, action, whisk_url)))[0] == 200
    failure = "API deletion failure: "
    assert await delete(guest) == (502, {"error": "basepath is required."})
    assert await delete(guest, basepath=base, operation="GET") == \
        (502, {"error": "When specifying an operation, the path is required."})
    status, body = await delete(guest, basepath="/zz-none")
    assert (status, body) == (502, {"error": f"{failure}API '/zz-none' does not exist."})
    assert await delete(guest, basepath=base, relpath="/z") == \
        (502, {"error": f"{failure}path '/z' does not exist in the API"})
    assert await delete(guest, basepath=base, relpath="/x", operation="PUT") == \
        (502, {"error": f"{failure}path '/x' with operation 'put' does not exist in the API"})
    assert await delete(guest, basepath=base, relpath="/x", operation="POST") == (200, {})
    doc = (await get_apis(guest, basepath=base))[1]["apis"][0]["value"]["apidoc"]
    assert doc["paths"] == {"/x": {"get": doc["paths"]["/x"]["get"]}, "/y": doc["paths"]["/y"]}
    assert (await delete(guest, basepath=base, relpath="/y"))[0] == 200
    assert (await delete(guest, basepath=base, relpath="/x", operation="get"))[0] == 200    # the last path: API gone
    assert (await get_apis(guest, basepath=base))[1] == {"apis": []}
