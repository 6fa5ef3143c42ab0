"""How the gateway routes a request to an operation and calls its action (docs/openwhisk.md §1.13), as
openwhisk-apigateway's `routing.lua` and `management/lib/swagger.lua` do: the relative path `/`, the case of a verb
key in a Swagger document, and the backend verb of an operation's `invoke` step."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.apigw.test_apigw import PY_HTTP_ECHO, WEB, cli_apidoc, cli_query, create
from tests.web.support import call, put_action, unique


def _swagger(base: str, url: str, action: str, paths: dict[str, Any], cases: list[Any]) -> dict[str, Any]:
    ow = {"namespace": "guest", "package": "", "action": action, "url": url}
    return {"swagger": "2.0", "basePath": base, "info": {"title": base, "version": "1.0.0"},
            "paths": {path: {verb: {"operationId": op_id, "x-openwhisk": ow} for verb, op_id in ops.items()}
                      for path, ops in paths.items()},
            "x-ibm-configuration": {"cors": {"enabled": True}, "assembly": {"execute": [
                {"operation-switch": {"case": cases}}]}}}


def _case(op_id: str, url: str, verb: str) -> dict[str, Any]:
    return {"operations": [op_id], "execute": [{"invoke": {"target-url": url, "verb": verb}}]}


async def test_the_relative_path_slash_is_the_apis_own_root(whisk_url: str, guest: aiohttp.ClientSession,
                                                            anonymous: aiohttp.ClientSession) -> None:
    """`wsk api create /shop / get app --response-type http` makes the resource `shop/`, which the gateway's lookup
    finds for `/shop` too (`key == path .. "/"`), and as the prefix of `/shop/cart`: one `.http` action serving a
    whole app under its base path."""
    action, base = unique("app"), "/" + unique("shop")
    await put_action(guest, action, PY_HTTP_ECHO, annotations=WEB)
    status, api = await create(guest, cli_apidoc(base, "/", "get", action, whisk_url), **cli_query("http"))
    assert status == 200, api
    gw_path = urlsplit(api["gwApiUrl"]).path
    for rest in ("", "/", "/cart", "/cart/items"):
        status, body = await call(anonymous, "GET", gw_path + rest, params={"q": "1"})
        assert status == 200, (rest, body)
        assert body["__ow_path"] == base + rest and body["q"] == "1"
    status, body = await call(anonymous, "POST", gw_path)
    assert (status, body) == (404, {"status": 404, "message": "Error: Whoops. Verb not supported."})


async def test_a_verb_key_is_matched_without_case(whisk_url: str, guest: aiohttp.ClientSession,
                                                  anonymous: aiohttp.ClientSession) -> None:
    """A Swagger document written with `GET` for `get`: the gateway compares `string.upper(verb)` with the request's
    method, so the operation is served, not "Verb not supported"."""
    action, base = unique("a"), "/" + unique("upper")
    await put_action(guest, action, PY_HTTP_ECHO, annotations=WEB)
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.http"
    document = _swagger(base, url, action, {"/a": {"GET": "getA"}}, [_case("getA", url, "keep")])
    status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": document}})
    assert status == 200, api
    status, body = await call(anonymous, "GET", urlsplit(api["gwApiUrl"]).path + "/a")
    assert status == 200 and body["__ow_method"] == "get", body


async def test_the_invoke_verb_is_the_method_the_action_is_called_with(
        whisk_url: str, guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession) -> None:
    """An operation's `invoke.verb` other than `keep` is the backend method (swagger.lua's backendMethod, routing.lua's
    setVerb): a POST route whose case says `get` calls the action with GET; a verb none of the seven is GET."""
    action, base = unique("a"), "/" + unique("verb")
    await put_action(guest, action, PY_HTTP_ECHO, annotations=WEB)
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.http"
    document = _swagger(base, url, action, {"/a": {"post": "postA", "put": "putA", "get": "getA"}},
                        [_case("postA", url, "get"), _case("putA", url, "nonsense"), _case("getA", url, "keep")])
    status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": document}})
    assert status == 200, api
    path = urlsplit(api["gwApiUrl"]).path + "/a"
    for method, expected in (("POST", "get"), ("PUT", "get"), ("GET", "get")):
        status, body = await call(anonymous, method, path)
        assert status == 200 and body["__ow_method"] == expected, (method, body)
    document["x-ibm-configuration"]["assembly"]["execute"][0]["operation-switch"]["case"][2] = \
        _case("getA", url, "DELETE")
    status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": document}})
    assert status == 200, api
    status, body = await call(anonymous, "GET", path)
    assert status == 200 and body["__ow_method"] == "delete", body


async def test_the_forwarded_url_is_the_one_the_caller_used(whisk_url: str, guest: aiohttp.ClientSession,
                                                             anonymous: aiohttp.ClientSession) -> None:
    """Behind nginx terminating TLS (config/nginx sets `X-Forwarded-Proto`), the action's `X-Forwarded-Url` is the
    https URL its caller used, as the gateway builds it from `X-Forwarded-Proto`/`-Host`/`-Prefix`/`-Uri`; the
    request target goes as sent."""
    action, base = unique("a"), "/" + unique("fwd")
    await put_action(guest, action, PY_HTTP_ECHO, annotations=WEB)
    status, api = await create(guest, cli_apidoc(base, "/x", "get", action, whisk_url), **cli_query("http"))
    assert status == 200, api
    path = urlsplit(api["gwApiUrl"]).path + "/x"
    status, body = await call(anonymous, "GET", path, headers={"X-Forwarded-Proto": "https"})
    assert status == 200, body
    assert body["__ow_headers"]["x-forwarded-url"] == f"https://{urlsplit(whisk_url).netloc}{path}"
    status, body = await call(anonymous, "GET", path + "?q=a%20b", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Prefix": "/gw"})
    assert status == 200, body
    assert body["__ow_headers"]["x-forwarded-url"] == f"https://api.example.com/gw{path}?q=a%20b"


async def test_a_verb_the_route_lacks_is_refused_with_cors_headers(whisk_url: str, guest: aiohttp.ClientSession,
                                                                   anonymous: aiohttp.ClientSession) -> None:
    """Once the resource is found, the gateway's header filter (`cors.lua` replaceHeaders) sets the CORS headers on
    its own "Verb not supported" too, so a page of another origin reads the 404 rather than a CORS failure; a path
    no API has gets none (no resource, no `cors` setting)."""
    action, base = unique("a"), "/" + unique("verbs")
    await put_action(guest, action, PY_HTTP_ECHO, annotations=WEB)
    status, api = await create(guest, cli_apidoc(base, "/x", "get", action, whisk_url), **cli_query("http"))
    assert status == 200, api
    gw_path = urlsplit(api["gwApiUrl"]).path
    origin = {"Origin": "http://127.0.0.1:9"}
    async with anonymous.post(gw_path + "/x", headers=origin) as r:
        assert r.status == 404
        assert await r.json() == {"status": 404, "message": "Error: Whoops. Verb not supported."}
        assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
        assert r.headers["Access-Control-Allow-Credentials"] == "true" and r.headers["Vary"] == "Origin"
    async with anonymous.get(gw_path + "/elsewhere", headers=origin) as r:
        assert r.status == 404 and "Access-Control-Allow-Origin" not in r.headers


async def test_an_assembly_with_one_invoke_serves_every_operation(whisk_url: str, guest: aiohttp.ClientSession,
                                                                  anonymous: aiohttp.ClientSession) -> None:
    """A hand-written document may give its assembly a single `invoke` step and no operation-switch: the gateway's
    swagger.lua makes that the backend of every operation, and an assembly's own `set-variable` steps (here the
    X-Require-Whisk-Auth header) apply to each."""
    action, base, secret = unique("a"), "/" + unique("one"), unique("secret")
    await put_action(guest, action, PY_HTTP_ECHO,
                     annotations=[*WEB, {"key": "require-whisk-auth", "value": secret}])
    url = f"{whisk_url}/api/v1/web/guest/default/{action}.http"
    document = {"swagger": "2.0", "basePath": base, "info": {"title": base, "version": "1.0.0"},
                "paths": {"/a": {"get": {"operationId": "getA"}}, "/b": {"post": {"operationId": "postB"}}},
                "x-ibm-configuration": {"assembly": {"execute": [
                    {"set-variable": {"actions": [{"set": "message.headers.X-Require-Whisk-Auth", "value": secret}]}},
                    {"invoke": {"target-url": url + "$(request.path)", "verb": "keep"}}]}}}
    status, api = await create(guest, {"apidoc": {"namespace": "_", "swagger": document}})
    assert status == 200, api
    gw_path = urlsplit(api["gwApiUrl"]).path
    for method, rel in (("GET", "/a"), ("POST", "/b")):
        status, body = await call(anonymous, method, gw_path + rel)
        assert status == 200, (method, body)
        assert body["__ow_method"] == method.lower() and body["__ow_path"] == base + rel
