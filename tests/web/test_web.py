"""Web actions over real HTTP (docs/openwhisk.md §1.12): every method, the `__ow_*` arguments, query and body promotion,
raw HTTP, base64 bodies, `require-whisk-auth`, `final` parameters, CORS and OPTIONS, 404s for anything not exported,
the blocking wait, the owner's limits, and an answer read by curl and by node exactly as the action made it."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import shutil
from typing import Any

import aiohttp
from yarl import URL
import pytest
import pytest_asyncio

from tests.conftest import missing
from tests.support.http import raw_call
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.support.waiting import room_in_the_minute
from tests.web.support import PY_ECHO, call, put, put_action, record_of, run_node, unique
from whisk.controller.web import WebRequest, authorized, header_map
from whisk.entities.identity import GUEST_KEY, GUEST_UUID, Identity
from whisk.entities.parameters import Parameters

WEB = [{"key": "web-export", "value": True}]
RAW = WEB + [{"key": "raw-http", "value": True}]
PY_SHAPE = "def main(args):\n    return args['r']\n"
PY_OPTIONS = ("def main(args):\n    if args['__ow_method'] == 'options':\n"
              "        return {'statusCode': 204, 'headers': {'Allow': 'GET, OPTIONS', 'X-Handled': 'action'}}\n"
              "    return {'body': 'hello'}\n")


def web_path(name: str, ext: str = "", rest: str = "", namespace: str = "guest", package: str = "default") -> str:
    return f"/api/v1/web/{namespace}/{package}/{name}{ext}{rest}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def actions(whisk_url: str) -> dict[str, str]:
    """The web actions of this module, made once: name by role."""
    names = {k: unique(k) for k in ("echo", "raw", "shape", "options", "final", "secret", "authed", "number",
                                    "null")}
    async with aiohttp.ClientSession(base_url=whisk_url, headers=basic_auth(*GUEST_AUTH.split(":"))) as guest:
        await put_action(guest, names["echo"], PY_ECHO, annotations=WEB)
        await put_action(guest, names["raw"], PY_ECHO, annotations=RAW)
        await put_action(guest, names["shape"], PY_SHAPE, annotations=WEB)
        await put_action(guest, names["options"], PY_OPTIONS,
                         annotations=WEB + [{"key": "web-custom-options", "value": True}])
        await put_action(guest, names["final"], PY_ECHO, parameters=[{"key": "fixed", "value": "set"}],
                         annotations=WEB + [{"key": "final", "value": True}])
        await put_action(guest, names["secret"], PY_ECHO,
                         annotations=WEB + [{"key": "require-whisk-auth", "value": "s3cret"}])
        await put_action(guest, names["authed"], PY_ECHO,
                         annotations=WEB + [{"key": "require-whisk-auth", "value": True}])
        await put_action(guest, names["number"], PY_ECHO,
                         annotations=WEB + [{"key": "require-whisk-auth", "value": 42}])
        await put_action(guest, names["null"], PY_ECHO,
                         annotations=WEB + [{"key": "require-whisk-auth", "value": None}])
    return names


async def test_every_method_reaches_the_action_with_its_context(anonymous: aiohttp.ClientSession,
                                                                actions: dict[str, str]) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        async with anonymous.request(method, web_path(actions["echo"], ".json", "/a/b"), params={"x": "1"},
                                     headers={"X-Test": "yes"}) as r:
            body = await r.json()
            assert r.status == 200, (method, body)
            assert r.headers["Content-Type"] == "application/json"
            assert len(r.headers["x-openwhisk-activation-id"]) == 32
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert body["__ow_method"] == method.lower() and body["__ow_path"] == "/a/b" and body["x"] == "1"
        assert body["__ow_headers"]["x-test"] == "yes" and "__ow_user" not in body
        assert "content-length" not in body["__ow_headers"]         # Pekko keeps it in the entity
    async with anonymous.head(web_path(actions["echo"], ".json")) as r:
        assert r.status == 200 and await r.read() == b"" and "x-openwhisk-activation-id" in r.headers
    async with anonymous.options(web_path(actions["echo"], ".json"),
                                 headers={"Access-Control-Request-Headers": "X-Foo"}) as r:
        assert r.status == 200 and await r.read() == b""
        assert "x-openwhisk-activation-id" not in r.headers                 # answered without running the action
        assert r.headers["Access-Control-Allow-Methods"] == "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
        assert r.headers["Access-Control-Allow-Headers"] == "X-Foo"
    async with anonymous.get(web_path(actions["echo"], ".json")) as r:
        assert r.headers["Access-Control-Allow-Headers"] == ("Authorization, Origin, X-Requested-With, Content-Type, "
                                                             "Accept, User-Agent")
        assert (await r.json())["__ow_path"] == ""
    async with anonymous.request("TRACE", web_path(actions["echo"], ".json")) as r:    # not in allowedOperations
        assert r.status == 405 and "x-openwhisk-activation-id" not in r.headers
        # Allow names every verb the route takes, HEAD too (Pekko lists each method directive that rejected).
        verbs = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
        assert r.headers["Allow"] == verbs
        assert (await r.json())["error"] == f"HTTP method not allowed, supported methods: {verbs}"


async def test_the_rest_of_the_path_reaches_the_action_still_encoded(whisk_url: str, actions: dict[str, str]) -> None:
    """`__ow_path` as Pekko renders the unmatched path: each segment percent-encoded but for its pchar characters,
    so an encoded "/" or "?" stays in its segment; a name segment is decoded alone, and one that holds a "/" is no
    name (404)."""
    async with aiohttp.ClientSession() as client:
        for sent, seen in (("/a%20b", "/a%20b"), ("/caf%C3%A9", "/caf%C3%A9"), ("/a%2Fb/c", "/a%2Fb/c"),
                           ("/x%3Fy", "/x%3Fy"), ("/%41:@!", "/A:@!")):
            url = URL(whisk_url + web_path(actions["echo"], ".json") + sent, encoded=True)
            async with client.get(url) as r:
                assert r.status == 200 and (await r.json())["__ow_path"] == seen, sent
        whole = URL(f"{whisk_url}/api/v1/web/guest%2Fdefault%2F{actions['echo']}.json", encoded=True)
        async with client.get(whole) as r:
            assert r.status == 404


@pytest.mark.parametrize("kwargs, expected", [
    ({"json": {"k": "v", "x": "body"}}, {"k": "v", "x": "body"}),
    ({"json": [1, 2]}, {"__ow_body": [1, 2], "x": "query"}),
    ({"data": {"f": "1", "g": "two words"}}, {"f": "1", "g": "two words"}),
    ({"data": "plain text", "headers": {"Content-Type": "text/plain"}}, {"__ow_body": "plain text"}),
    ({"data": b"\x00\x01\xff", "headers": {"Content-Type": "application/octet-stream"}},
     {"__ow_body": base64.b64encode(b"\x00\x01\xff").decode()}),
    ({"data": b"<svg/>", "headers": {"Content-Type": "image/svg+xml"}}, {"__ow_body": "PHN2Zy8+"}),
    # A declared charset is used when it is a real text charset; any other name (no charset at all, a Python
    # transform such as base64 or zlib, a codec that makes lone surrogates such as utf-7) is UTF-8, as OpenWhisk
    # reads every text body: it was a 500.
    ({"data": "é".encode("latin-1"), "headers": {"Content-Type": "text/plain; charset=ISO-8859-1"}},
     {"__ow_body": "é"}),
    ({"data": '{"k":"é"}'.encode("utf-16"), "headers": {"Content-Type": "application/json; charset=UTF-16"}},
     {"k": "é"}),
    ({"data": "a=é".encode("utf-16"), "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-16"}},
     {"a": "é"}),
    *(({"data": b"a=1", "headers": {"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"}},
       {"a": "1"}) for charset in ("bogus", "base64", "rot13", "zlib", "idna")),
    *(({"data": body, "headers": {"Content-Type": f"text/plain; charset={charset}"}}, {"__ow_body": body.decode()})
      for charset, body in (("utf-7", b"+2AA-"), ("unicode_escape", b"\\ud800"), ("idna", b"a..b"),
                            ("base64", b"abc"))),
])
async def test_bodies_become_arguments(anonymous: aiohttp.ClientSession, actions: dict[str, str],
                                       kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    async with anonymous.post(web_path(actions["echo"], ".json"), params={"x": "query"}, **kwargs) as r:
        body = await r.json()
        assert r.status == 200, body
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    # The entity's type is a header for the action, its length is not (Pekko keeps both in the entity).
    assert "content-type" in body["__ow_headers"] and "content-length" not in body["__ow_headers"]


@pytest.mark.parametrize("content_type, body_argument", [
    (None, None), ("application/json", None), ("application/x-www-form-urlencoded", None),
    ("text/plain", ""), ("application/octet-stream", ""), ("image/png", ""),
])
async def test_an_empty_body_is_an_empty_string_unless_json_form_or_untyped(
        anonymous: aiohttp.ClientSession, actions: dict[str, str], content_type: str | None,
        body_argument: str | None) -> None:
    # Pekko hands OpenWhisk an empty entity of the declared type: JSON and forms parse to nothing, any other type
    # is the empty text or the base64 of no bytes (WebActions.scala, extractEntityAndProcessRequest).
    headers = {"Content-Type": content_type} if content_type else {}
    async with anonymous.post(web_path(actions["echo"], ".json"), data=b"", headers=headers,
                              skip_auto_headers=["Content-Type"]) as r:
        body = await r.json()
        assert r.status == 200, body
    assert body.get("__ow_body") == body_argument, body


async def test_malformed_json_is_400(anonymous: aiohttp.ClientSession, actions: dict[str, str]) -> None:
    status, body = await call(anonymous, "POST", web_path(actions["echo"], ".json"), data=b"{nope",
                              headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"].startswith("The request content was malformed")



async def test_a_header_byte_that_is_not_utf8_reaches_the_action_as_latin1(whisk_url: str,
                                                                          actions: dict[str, str]) -> None:
    """A header byte that is not UTF-8 is its ISO-8859-1 character in `__ow_headers`, as Pekko reads it (a 500
    before: the arguments had no JSON form)."""
    status, _, body = await raw_call(whisk_url, "GET", web_path(actions["echo"], ".json"), [("X-Foo", b"\xe9")])
    assert status == 200 and json.loads(body)["__ow_headers"]["x-foo"] == "é", body

async def test_credentials_are_optional_and_name_the_user(whisk_url: str, actions: dict[str, str]) -> None:
    async with aiohttp.ClientSession(base_url=whisk_url) as session:
        user, key = GUEST_AUTH.split(":")
        status, body = await call(session, "GET", web_path(actions["echo"], ".json"),
                                  headers={"Authorization": basic_auth(user, key)["Authorization"]})
        assert status == 200 and body["__ow_user"] == "guest"
        status, body = await call(session, "GET", web_path(actions["echo"], ".json"),
                                  headers={"Authorization": basic_auth(user, "x" * 64)["Authorization"]})
        assert status == 200 and "__ow_user" not in body


async def test_reserved_and_final_parameters_are_refused(anonymous: aiohttp.ClientSession,
                                                         actions: dict[str, str]) -> None:
    refused = "Request defines parameters that are not allowed (e.g., reserved properties)."
    for kwargs in ({"params": {"__ow_method": "get"}}, {"json": {"__ow_path": "/x"}}, {"json": {"__ow_user": "me"}}):
        status, body = await call(anonymous, "POST", web_path(actions["echo"], ".json"), **kwargs)
        assert (status, body["error"]) == (400, refused), kwargs
    status, body = await call(anonymous, "GET", web_path(actions["final"], ".json"), params={"fixed": "mine"})
    assert (status, body["error"]) == (400, refused)
    status, body = await call(anonymous, "GET", web_path(actions["final"], ".json"), params={"other": "ok"})
    assert status == 200 and body["fixed"] == "set" and body["other"] == "ok"


async def test_raw_http_actions_get_the_query_and_body_as_sent(anonymous: aiohttp.ClientSession, whisk_url: str,
                                                               actions: dict[str, str]) -> None:
    status, body = await call(anonymous, "GET", web_path(actions["raw"], ".json") + "?a=1&b=x%20y&__ow_body=q")
    assert status == 200
    assert body["__ow_query"] == "a=1&b=x+y&__ow_body=q" and body["__ow_body"] == "" and "a" not in body
    # The query as Pekko parses and renders it again (Uri.Query.toString): a space as "+", "=" in a value and ";"
    # encoded, what its query characters allow left as it is, a key without "=" written without one.
    for sent, seen in (("k=caf%C3%A9&flag&e=", "k=caf%C3%A9&flag&e="), ("a=b=c;d", "a=b%3Dc%3Bd"),
                       ("x=%41%2B%26+y", "x=A%2B%26+y"), ("p=/a?b:@!$'()*,", "p=/a?b:@!$'()*,")):
        url = URL(f"{whisk_url}{web_path(actions['raw'], '.json')}?{sent}", encoded=True)
        async with anonymous.get(url) as r:
            assert r.status == 200 and (await r.json())["__ow_query"] == seen, sent
    status, body = await call(anonymous, "POST", web_path(actions["raw"], ".json"), json={"k": "v"})
    assert base64.b64decode(body["__ow_body"]) == b'{"k": "v"}' and "k" not in body
    status, body = await call(anonymous, "POST", web_path(actions["raw"], ".json"), data="a=1&b=2",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert body["__ow_body"] == "a=1&b=2"
    status, body = await call(anonymous, "POST", web_path(actions["raw"], ".json"), data="some text",
                              headers={"Content-Type": "text/plain"})
    assert body["__ow_body"] == "some text"


async def test_require_whisk_auth(whisk_url: str, actions: dict[str, str]) -> None:
    user, key = GUEST_AUTH.split(":")
    creds = {"Authorization": basic_auth(user, key)["Authorization"]}
    unauthorized = "Authentication is possible but has failed or not yet been provided."   # Pekko 401 default
    async with aiohttp.ClientSession(base_url=whisk_url) as session:
        for headers in ({}, {"X-Require-Whisk-Auth": "wrong"}, creds):
            async with session.get(web_path(actions["secret"], ".json"), headers=headers) as r:
                body = await r.json()
                assert (r.status, body["error"]) == (401, unauthorized), headers
                assert r.headers["Access-Control-Allow-Origin"] == "*"
        status, body = await call(session, "GET", web_path(actions["secret"], ".json"),
                                  headers={"X-Require-Whisk-Auth": "s3cret"})
        assert status == 200 and body["__ow_headers"]["x-require-whisk-auth"] == "s3cret"
        assert (await call(session, "GET", web_path(actions["authed"], ".json")))[0] == 401
        status, body = await call(session, "GET", web_path(actions["authed"], ".json"), headers=creds)
        assert status == 200 and body["__ow_user"] == "guest"
        assert (await call(session, "GET", web_path(actions["number"], ".json")))[0] == 401
        assert (await call(session, "GET", web_path(actions["number"], ".json"),
                           headers={"X-Require-Whisk-Auth": "42"}))[0] == 200
        # A null annotation is neither a secret nor true/false: OpenWhisk's confirmAuthenticated refuses it.
        assert (await call(session, "GET", web_path(actions["null"], ".json"), headers=creds))[0] == 401


async def test_web_custom_options_lets_the_action_answer_options(anonymous: aiohttp.ClientSession,
                                                                 actions: dict[str, str]) -> None:
    async with anonymous.options(web_path(actions["options"])) as r:
        assert r.status == 204 and r.headers["X-Handled"] == "action" and r.headers["Allow"] == "GET, OPTIONS"
        assert "Access-Control-Allow-Origin" not in r.headers and "x-openwhisk-activation-id" in r.headers
    async with anonymous.get(web_path(actions["options"])) as r:
        assert r.status == 200 and await r.text() == "hello" and "Access-Control-Allow-Origin" not in r.headers


async def test_anything_not_exported_is_404(guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession,
                                            actions: dict[str, str]) -> None:
    hidden, off = unique("hidden"), unique("off")
    await put_action(guest, hidden, PY_ECHO)
    await put_action(guest, off, PY_ECHO, annotations=[{"key": "web-export", "value": False}])
    for path in (web_path(hidden, ".json"), web_path(off, ".json"), web_path(unique("none"), ".json"),
                 web_path(actions["echo"], ".json", namespace=unique("nobody")),
                 web_path(actions["echo"], ".json", package=unique("nopkg"))):
        status, body = await call(anonymous, "GET", path)
        assert (status, body["error"]) == (404, "The requested resource does not exist."), path
    # A path the web route does not match (fewer than three segments, a segment that is no name) is Pekko's
    # rejection, which OpenWhisk answers as the REST API answers one: its text, compact JSON, no CORS.
    for path in (web_path(actions["echo"], ".json", namespace="bad%20ns!"), "/api/v1/web/guest/default",
                 f"/api/v1/web/guest/{actions['echo']}.json", "/api/v1/web/guest/default/", "/api/v1/web/guest",
                 web_path("ech%24o", ".json")):
        async with anonymous.get(path) as r:
            assert r.status == 404, path
            assert "Access-Control-Allow-Origin" not in r.headers, path
            text = await r.text()
        assert text == json.dumps({"error": "The requested resource could not be found.",
                                   "code": r.headers["X-Request-ID"]}, separators=(",", ":")), path


async def test_a_sequence_can_be_a_web_action(guest: aiohttp.ClientSession, anonymous: aiohttp.ClientSession) -> None:
    inc, seq = unique("inc"), unique("seq")
    await put_action(guest, inc, "def main(a):\n    return {'n': int(a.get('n', 0)) + 1}\n")
    await put(guest, "actions", seq, {"exec": {"kind": "sequence", "components": [f"/_/{inc}", f"/_/{inc}"]},
                                      "annotations": WEB})
    status, body = await call(anonymous, "GET", web_path(seq, ".json"), params={"n": "5"})
    assert (status, body) == (200, {"n": 7})


async def test_curl_and_node_see_exactly_what_the_action_answered(whisk_url: str,
                                                                  actions: dict[str, str]) -> None:
    url = whisk_url + web_path(actions["shape"], ".http")
    produced = {"statusCode": 203, "headers": {"X-One": "1", "X-Many": ["a", "b"], "Content-Type": "text/plain"},
                "body": "exactly this"}
    curl = shutil.which("curl")
    if curl is None:
        missing("curl")
    proc = await asyncio.create_subprocess_exec(
        curl, "-s", "-i", "-X", "POST", url, "-H", "Content-Type: application/json", "-d", json.dumps({"r": produced}),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 203")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    assert ("X-One", "1") in headers and ("X-Many", "a") in headers and ("X-Many", "b") in headers
    assert ("Content-Type", "text/plain; charset=UTF-8") in headers
    assert body == b"exactly this"
    script = f"""
    fetch({json.dumps(url)}, {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
                               body: JSON.stringify({{r: {json.dumps(produced)}}})}})
      .then(async r => process.stdout.write(JSON.stringify({{status: r.status, one: r.headers.get('x-one'),
                        many: r.headers.get('x-many'), type: r.headers.get('content-type'), body: await r.text()}})));
    """
    assert await run_node(script) == {"status": 203, "one": "1", "many": "a, b", "type": "text/plain; charset=UTF-8",
                                      "body": "exactly this"}


async def test_blocking_wait_payload_limit_and_owner_throttle() -> None:
    env = {"WHISK_LIMIT_MAX_BLOCKING_WAIT": "300", "WHISK_LIMIT_MAX_PAYLOAD_SIZE": "2000",
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "4"}
    async with whisk_server(env) as url, aiohttp.ClientSession(
            base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as owner, \
            aiohttp.ClientSession(base_url=url) as anonymous:
        slow = unique("slow")
        await put_action(owner, slow, "import time\ndef main(a):\n    time.sleep(1.5)\n    return {'done': True}\n",
                         annotations=WEB)
        await room_in_the_minute(15)         # the counted calls below must land in one calendar minute
        async with anonymous.get(web_path(slow, ".json")) as r:                       # call 1
            body = await r.json()
            assert (r.status, body["error"]) == (202, "Response not yet ready.") and body["code"]
            activation_id = r.headers["x-openwhisk-activation-id"]
        assert (await record_of(owner, activation_id))["response"]["result"] == {"done": True}
        status, body = await call(anonymous, "POST", web_path(slow, ".json"), data=b"x" * 3000)   # refused early
        assert status == 413 and body["error"] == "Request larger than allowed: 3000 > 2000 bytes."
        statuses = [(await call(anonymous, "GET", web_path(unique("none"), ".json")))[0]]  # not found: not charged
        for _ in range(4):                                                             # calls 2, 3, 4, 5
            status, body = await call(anonymous, "GET", web_path(slow, ".json"))
            statuses.append(status)
        assert statuses == [404, 202, 202, 202, 429]
        assert body["error"] == "Too many requests in the last minute (count: 5, allowed: 4)."


def test_whisk_credentials_never_reach_the_action_in_its_headers() -> None:
    """Stricter than OpenWhisk: the caller's API key, sent to a web action (or an API route) of any namespace, is
    not in `__ow_headers` (the action learns who called from `__ow_user`); other schemes pass."""
    whisk_key = basic_auth(GUEST_UUID, GUEST_KEY)["Authorization"]
    caller = Identity("guest", "guest", GUEST_UUID)
    for user in (caller, None):          # authenticated, or a key the server did not accept (throttled, wrong)
        request = WebRequest("GET", "ns/default/a", (("Authorization", whisk_key), ("X-Test", "yes")), (), "",
                             b"", user)
        assert header_map(request) == {"x-test": "yes"}
    for value in ("Bearer token", basic_auth("someone", "password")["Authorization"]):
        request = WebRequest("GET", "ns/default/a", (("Authorization", value),), (), "", b"", None)
        assert header_map(request) == {"authorization": value}


def test_the_web_secret_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """`X-Require-Whisk-Auth` against the annotation as keys are compared (hmac.compare_digest), any text included."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    def allowed(required: Any, given: str | None) -> bool:
        headers = (("X-Require-Whisk-Auth", given),) if given is not None else ()
        return authorized(Parameters.of({"require-whisk-auth": required}),
                          WebRequest("GET", "ns/default/a", headers, (), "", b"", None))

    assert allowed("s3cret", "s3cret") and allowed(42, "42") and allowed("clé", "clé")
    assert not allowed("s3cret", "s3creT") and not allowed("s3cret", None) and not allowed(42, "é")
    assert compared == [(b"s3cret", b"s3cret"), (b"42", b"42"), ("clé".encode(), "clé".encode()),
                        (b"s3creT", b"s3cret"), ("é".encode(), b"42")]
