"""HTTP conventions of the REST API on the real server (docs/openwhisk.md §1.1, §1.2, §1.14): info routes,
authentication, transaction ids, CORS, OpenWhisk error bodies for aiohttp's own 404/405/413, malformed JSON and content
types."""

from __future__ import annotations

import json

import aiohttp

from tests.api.support import GUEST_AUTH, JS, basic, call, ns, unique
from tests.support.http import raw_call, record_of

REALM = 'Basic realm="OpenWhisk secure realm"'


async def test_info_routes(anonymous: aiohttp.ClientSession) -> None:
    status, body = await call(anonymous, "GET", "/")
    assert status == 200 and body["description"] == "OpenWhisk" and body["api_paths"] == ["/api/v1"]
    assert body["limits"]["max_action_memory"] == 512 * 1024 * 1024
    assert "nodejs" in body["runtimes"] and any(r["default"] for r in body["runtimes"]["nodejs"])
    for path in ("/api/v1", "/api/v1/"):
        status, body = await call(anonymous, "GET", path)
        assert status == 200 and body["api_version"] == "1.0.0" and body["api_version_path"] == "v1"
    for path in ("/api/v1/api-docs", "/api/v1/api-docs/"):      # Pekko's pathEndOrSingleSlash
        status, body = await call(anonymous, "GET", path)
        assert status == 200 and body["swagger"] == "2.0" and body["basePath"] == "/api/v1", path
    for path in ("/api-docs", "/api-docs/"):
        status, body = await call(anonymous, "GET", path)
        assert status == 200 and "/" in body["paths"], path
    status, body = await call(anonymous, "GET", "/ping")
    assert (status, body) == (200, "pong")
    # swagger_paths.ui: redirected, as OpenWhisk does, to a page of the operations that links the document.
    async with anonymous.get("/api/v1/docs", allow_redirects=False) as r:
        assert r.status == 308 and r.headers["Location"] == "/api/v1/docs/index.html?url=/api/v1/api-docs"
    async with anonymous.get("/api/v1/docs") as r:
        page = await r.text()
        assert r.status == 200 and r.content_type == "text/html"
        assert "/api/v1/namespaces/{namespace}/actions/{actionName}" in page and 'href="/api/v1/api-docs"' in page


async def test_a_redirect_carries_the_transaction_id_and_cors(anonymous: aiohttp.ClientSession) -> None:
    """A redirect is an answer like any other: it echoes the transaction id and, under /api/v1, has the CORS headers
    (OpenWhisk's swagger-ui redirect is inside `respondWithHeader(transid)` and `sendCorsHeaders`). A route raises
    it, and a raised answer passed the middlewares that add them."""
    for path, status in (("/api/v1/docs", 308), ("/api/v1/docs/", 308), ("/playground", 307)):
        async with anonymous.get(path, headers={"X-Request-ID": "tid-redirect"}, allow_redirects=False) as r:
            assert r.status == status and r.headers["Location"], path
            assert r.headers["X-Request-ID"] == "tid-redirect", path
            if path.startswith("/api/v1"):
                assert r.headers["Access-Control-Allow-Origin"] == "*", path


async def test_missing_and_invalid_credentials(anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get(ns("actions")) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == REALM
        body = await r.json()
        assert body["error"] == "The resource requires authentication, which was not supplied with the request"
    bad_key = GUEST_AUTH[:-1] + ("x" if GUEST_AUTH[-1] != "x" else "y")
    for header in (basic(bad_key), basic("not-a-uuid:short"), {"Authorization": "Basic %%%"},
                   basic(GUEST_AUTH.split(":")[0] + ":")):
        status, body = await call(anonymous, "GET", ns("actions"), headers=header)
        assert status == 401 and body["error"] == "The supplied authentication is invalid", header
    # Another scheme is no Basic credentials at all, as Pekko's authenticateBasic sees it.
    status, body = await call(anonymous, "GET", ns("actions"), headers={"Authorization": "Bearer abc"})
    assert status == 401 and body["error"] == "The resource requires authentication, which was not supplied with " \
                                              "the request"
    # Unknown paths under /api/v1 need credentials first, as in OpenWhisk.
    status, _ = await call(anonymous, "GET", "/api/v1/nothing/here")
    assert status == 401


async def test_transaction_id_is_taken_echoed_or_generated(guest: aiohttp.ClientSession) -> None:
    async with guest.get("/api/v1/namespaces", headers={"X-Request-ID": "my-tid-1"}) as r:
        assert r.status == 200 and r.headers["X-Request-ID"] == "my-tid-1"
    async with guest.get(ns("actions", unique("missing")), headers={"X-Request-ID": "my-tid-2"}) as r:
        body = await r.json()
        assert r.status == 404 and body == {"error": "The requested resource does not exist.", "code": "my-tid-2"}
    async with guest.get("/api/v1/namespaces", headers={"X-Request-ID": "sid_system"}) as r:
        generated = r.headers["X-Request-ID"]
        assert generated != "sid_system" and len(generated) == 32 and generated.isalnum()



async def test_a_header_byte_that_is_not_utf8_is_read_as_latin1(whisk_url: str) -> None:
    """An X-Request-ID byte that is not UTF-8 (0xE9) is `é`, as Pekko reads header bytes: the transaction id of an
    error answer and of an activation message, never a plain-text 500 (docs/openwhisk.md §1.1)."""
    status, headers, body = await raw_call(whisk_url, "GET", ns("actions", unique("missing")),
                                           [("X-Request-ID", b"\xe9")])
    assert (status, json.loads(body)) == (404, {"error": "The requested resource does not exist.", "code": "é"})
    assert headers["x-request-id"].encode("latin-1").decode() == "é"
    name = unique("echo")
    status, _, body = await raw_call(whisk_url, "PUT", ns("actions", name), [("Content-Type", b"application/json")],
                                     json.dumps({"exec": JS}).encode())
    assert status == 200, body
    status, _, body = await raw_call(whisk_url, "POST", ns("actions", name) + "?blocking=true",
                                     [("X-Request-ID", b"\xe9")])
    assert status == 200 and json.loads(body)["response"]["success"] is True, body

async def test_cors_headers_and_options(anonymous: aiohttp.ClientSession, guest: aiohttp.ClientSession) -> None:
    async with guest.get(ns("actions")) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "PUT" in r.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    async with anonymous.options(ns("actions", "anything")) as r:       # preflight: no credentials needed
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"


async def test_unknown_path_and_wrong_method(guest: aiohttp.ClientSession) -> None:
    status, body = await call(guest, "GET", "/api/v1/namespaces/_/widgets")
    assert status == 404 and body["error"] == "The requested resource could not be found." and body["code"]
    status, body = await call(guest, "GET", "/no/such/path")
    assert status == 404 and set(body) == {"error", "code"}
    for method, path in (("POST", ns("packages", "p")), ("PUT", ns("actions")), ("DELETE", ns("triggers")),
                         ("DELETE", ns("activations", "0" * 32)), ("POST", "/api/v1/namespaces"),
                         ("PUT", "/api/v1/namespaces/_/limits")):
        async with guest.request(method, path, json={}) as r:
            body = await r.json()
            assert r.status == 405, (method, path)
            assert body["error"].startswith("HTTP method not allowed, supported methods: ")
            assert method not in r.headers["Allow"]


async def test_malformed_json_and_content_types(guest: aiohttp.ClientSession) -> None:
    name = unique("bad")
    for raw in ('{"exec": ', "[1, 2", '{"a": NaN}', "\xff"):
        status, body = await call(guest, "PUT", ns("actions", name), data=raw.encode("latin-1"),
                                  headers={"Content-Type": "application/json"})
        assert status == 400 and body["error"].startswith("The request content was malformed:"), raw
    status, body = await call(guest, "PUT", ns("triggers", name), data=b"",
                              headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "Request entity expected but not supplied"
    # The type is checked first, as Pekko's unmarshaller does (OpenWhisk's "put should reject request missing json
    # content": an empty text/plain body is a 415).
    status, body = await call(guest, "PUT", ns("actions", name), data=b"", headers={"Content-Type": "text/plain"})
    assert status == 415
    status, body = await call(guest, "PUT", ns("triggers", name), data=b"parameters=1",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and "Content-Type [application/x-www-form-urlencoded] is not supported" in body["error"]
    # Pekko's 415 names the declared type; spray-json takes application/json only (not every +json type).
    for content_type, shown in (("text/plain; charset=utf-8", "text/plain; charset=UTF-8"),
                                ("application/vnd.api+json", "application/vnd.api+json")):
        for method, path in (("PUT", ns("triggers", name)), ("POST", ns("actions", name))):
            status, body = await call(guest, method, path, data=b"{}", headers={"Content-Type": content_type})
            assert (status, body["error"]) == (415, f"The request's Content-Type [{shown}] is not supported. "
                                                    "Expected:\napplication/json"), (method, content_type)
    for body_value in ([], "text", 3):
        status, body = await call(guest, "PUT", ns("triggers", name), body_value)
        assert status == 400 and body["error"].startswith("The request content was malformed:")
    status, _ = await call(guest, "GET", ns("triggers", name))
    assert status == 404                                          # nothing was stored


async def test_oversized_bodies_are_413(guest: aiohttp.ClientSession) -> None:
    name = unique("big")
    params = [{"key": "p", "value": "x" * (1024 * 1024)}]
    status, body = await call(guest, "PUT", ns("actions", name), {"exec": JS, "parameters": params})
    assert status == 413 and body["error"].startswith("parameters larger than allowed: ")
    assert body["error"].endswith(f" > {1024 * 1024} bytes.")
    status, body = await call(guest, "PUT", ns("triggers", name), {"annotations": params})
    assert status == 413 and body["error"].startswith("annotations larger than allowed: ")
    code = "x" * (48 * 1024 * 1024 + 1)
    status, body = await call(guest, "PUT", ns("actions", name), data=json.dumps(
        {"exec": {"kind": "nodejs:20", "code": code}}), headers={"Content-Type": "application/json"})
    assert status == 413 and body["error"] == f"exec larger than allowed: {len(code)} > {48 * 1024 * 1024} bytes."
    status, body = await call(guest, "PUT", ns("triggers", name), data=b"{" + b" " * (60 * 1024 * 1024) + b"}",
                              headers={"Content-Type": "application/json"})
    assert status == 413 and body["error"].startswith("Request larger than allowed: ")
    for collection in ("actions", "triggers"):
        status, _ = await call(guest, "GET", ns(collection, name))
        assert status == 404


async def test_illegal_names_and_namespaces(guest: aiohttp.ClientSession) -> None:
    status, body = await call(guest, "GET", ns("actions", "a$b"))
    assert status == 400 and body["error"] == "The name of the entity contains illegal characters."
    status, body = await call(guest, "PUT", ns("triggers", "x" * 257), {})
    assert status == 400 and body["error"] == "Name segement longer than allowed: 257 > 256."
    status, body = await call(guest, "GET", "/api/v1/namespaces/b$d/actions")
    assert status == 400 and body["error"] == "The namespace contains illegal characters."
    status, body = await call(guest, "GET", "/api/v1/namespaces/guest/actions/ spaced")
    assert status == 400
    # Every collection reads the name before it looks (it was a 404 on triggers, rules and packages).
    for collection in ("actions", "triggers", "rules", "packages"):
        for name, error in (("%20", "The name of the entity contains illegal characters."),
                            ("a%2Fb", "The name of the entity contains illegal characters."),
                            ("a" * 257, "Name segement longer than allowed: 257 > 256.")):
            status, body = await call(guest, "GET", ns(collection, name))
            assert (status, body["error"]) == (400, error), (collection, name)


async def test_namespaces_and_limits(guest: aiohttp.ClientSession) -> None:
    for path in ("/api/v1/namespaces", "/api/v1/namespaces/"):
        status, body = await call(guest, "GET", path)
        assert (status, body) == (200, ["guest"])
    status, body = await call(guest, "GET", "/api/v1/namespaces/_/limits")
    assert status == 200
    assert body["invocationsPerMinute"] == 100000 and body["concurrentInvocations"] == 1000
    assert body["firesPerMinute"] == 100000 and body["maxParameterSize"] == "1 MB"
    assert (body["minActionMemory"], body["maxActionMemory"]) == (128, 512)
    assert (body["minActionTimeout"], body["maxActionTimeout"]) == (100, 300000)
    status, body = await call(guest, "GET", "/api/v1/namespaces/guest/limits")
    assert status == 200


async def test_in_flight_activations_of_the_controller(guest: aiohttp.ClientSession,
                                                       anonymous: aiohttp.ClientSession) -> None:
    """`GET /activation` lists [id, "ns/name@version"] per activation in flight (OpenWhisk's
    activeActivationsByController), `/activation/count` counts them; no authentication."""
    name = unique("slow")
    slow = {"kind": "nodejs:default",
            "code": "function main() { return new Promise(r => setTimeout(() => r({}), 1500)) }"}
    assert (await call(guest, "PUT", ns("actions", name), {"exec": slow}))[0] == 200
    status, body = await call(guest, "POST", ns("actions", name))
    assert status == 202
    status, listed = await call(anonymous, "GET", "/activation")
    assert status == 200 and [body["activationId"], f"guest/{name}@0.0.1"] in listed
    status, count = await call(anonymous, "GET", "/activation/count")
    assert status == 200 and isinstance(count, int) and count >= 1
    await record_of(guest, body["activationId"], complete=True)     # leaves no record on its way to later tests


async def test_head_is_not_served_as_get(guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession) -> None:
    """The controller runs with Pekko's transparent-head-requests = off: HEAD on a GET route is 405 (GET only)."""
    for path in (ns("actions"), ns("packages") + "/", "/api/v1/namespaces", ns("limits"), ns("activations"),
                 ns("actions", "x")):
        async with guest.head(path) as r:
            assert r.status == 405 and "HEAD" not in r.headers["Allow"], path
    for path in ("/api/v1", "/ping", "/invokers"):
        async with anonymous.head(path) as r:
            assert r.status == 405, path



async def test_json_answers_are_typed_application_json_without_a_charset(guest: aiohttp.ClientSession,
                                                                           anonymous: aiohttp.ClientSession) -> None:
    """Pekko writes JSON as `Content-Type: application/json`, and clients compare the header as text: wskdeploy
    (`wsk project deploy`) reads the runtimes of `GET /` only when its Content-Type occurs in
    "application/json; charset=UTF-8", and otherwise deploys with a built-in list that lacks nodejs:20."""
    for session, path in ((anonymous, "/"), (anonymous, "/api/v1"), (anonymous, "/api/v1/api-docs"),
                          (anonymous, "/invokers"), (anonymous, "/invokers/"), (anonymous, ns("actions")),
                          (guest, ns("actions")),
                          (guest, ns("actions", unique("missing"))), (guest, "/no/such/path")):
        async with session.get(path) as r:
            assert r.headers["Content-Type"] == "application/json", path
            await r.json()
    assert "application/json; charset=UTF-8".find(r.headers["Content-Type"]) == 0

async def test_uri_longer_than_8k_is_414(guest: aiohttp.ClientSession) -> None:
    """max-uri-length = 8k (controller application.conf): Pekko's parse error, before any route, in OpenWhisk's
    error shape as whisk's other refusals before any route (api/early_errors.py)."""
    status, body = await call(guest, "GET", ns("actions"), params={"x": "a" * 9000})
    assert status == 414 and body["error"] == "URI length exceeds the configured limit of 8192 characters"
    status, body = await call(guest, "GET", ns("actions"), params={"x": "a" * 8000})
    assert status == 200 and isinstance(body, list)


async def test_a_put_body_that_is_no_object_is_spray_jsons_text(guest: aiohttp.ClientSession) -> None:
    """OpenWhisk reads every PUT body as LimitedWhiskEntityPut first (`CTL/Entities.scala`): spray-json's text names
    its first field."""
    for collection in ("actions", "triggers", "rules", "packages"):
        for raw in (b"[]", b"null", b"5", b'"x"'):
            status, body = await call(guest, "PUT", ns(collection, unique("n")), data=raw,
                                      headers={"Content-Type": "application/json"})
            assert (status, body["error"]) == (400, "The request content was malformed:\nObject expected in field "
                                                    "'exec'"), (collection, raw, body)
