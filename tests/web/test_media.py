"""The projection and transcoding table of docs/openwhisk.md §1.12 over real HTTP: an action that returns whatever it is
sent (`r`) answers through each extension with OpenWhisk's statuses, content types and error texts."""

from __future__ import annotations

import base64
import json
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.processes import GUEST_AUTH, basic_auth
from tests.web.support import put_action, unique

WEB = [{"key": "web-export", "value": True}]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00binary"
NOT_HTML = "Response is not valid 'text/html'."
NOT_HTTP = "Response is not valid 'message/http'."
MISMATCH = "Response type in header did not match generated content type."


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shape(whisk_url: str) -> str:
    name = unique("shape")
    async with aiohttp.ClientSession(base_url=whisk_url, headers=basic_auth(*GUEST_AUTH.split(":"))) as guest:
        await put_action(guest, name, "def main(args):\n    return args['r']\n", annotations=WEB)
    return name


async def answer(session: aiohttp.ClientSession, name: str, ext: str, result: Any
                 ) -> tuple[int, str | None, bytes, Any]:
    async with session.post(f"/api/v1/web/guest/default/{name}{ext}", json={"r": result},
                            allow_redirects=False) as r:
        return r.status, r.headers.get("Content-Type"), await r.read(), r.headers


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]


@pytest.mark.parametrize("ext, result, status, content_type, body", [
    # JSON as Pekko's web routes print it (spray's PrettyPrinter; OpenWhisk's "ensure response is pretty printed").
    (".json", {"a": 1}, 200, "application/json", b'{\n  "a": 1\n}'),
    (".json", {"a": [1, {"b": {}}]}, 200, "application/json", b'{\n  "a": [1, {\n    "b": {\n\n    }\n  }]\n}'),
    (".html", {"body": "<b>x</b>"}, 200, "text/html; charset=UTF-8", b"<b>x</b>"),
    (".html", {"html": "<i>y</i>"}, 200, "text/html; charset=UTF-8", b"<i>y</i>"),
    (".svg", {"svg": "<svg/>"}, 200, "image/svg+xml", b"<svg/>"),
    (".svg", {"body": "<svg></svg>"}, 200, "image/svg+xml", b"<svg></svg>"),
    (".text", {"text": "plain"}, 200, "text/plain; charset=UTF-8", b"plain"),
    (".text", {"body": {"a": [1]}}, 200, "text/plain; charset=UTF-8", b'{\n  "a": [1]\n}'),
    (".text", {"text": 5}, 200, "text/plain; charset=UTF-8", b"5"),
    (".text", {"text": None}, 200, "text/plain; charset=UTF-8", b"null"),
    (".text", {"text": True}, 200, "text/plain; charset=UTF-8", b"true"),
    (".text", {"error": "boom"}, 200, "text/plain; charset=UTF-8", b"boom"),      # the error's value, projected
    (".http", {"statusCode": "201", "body": {"k": "v"}}, 201, "application/json", b'{\n  "k": "v"\n}'),
    (".http", {"headers": {"Content-Type": "image/png"}, "body": base64.b64encode(PNG).decode()}, 200,
     "image/png", PNG),
    (".http", {"headers": {"Content-Type": "application/json"}, "body": base64.b64encode(b'{"a":1}').decode()},
     200, "application/json", b'{"a":1}'),
    (".http", {"headers": {"content-type": "text/plain; charset=utf-8"}, "body": "ü"}, 200,
     "text/plain; charset=UTF-8", "ü".encode()),
    (".http", {"body": "<p>hi</p>"}, 200, "text/html; charset=UTF-8", b"<p>hi</p>"),
    # Text is written in UTF-8 whatever charset is declared, and says so (OpenWhisk: Pekko's MediaType.parse keeps
    # no charset); a character outside the declared one was a 400, a name that is no charset a 500 before that.
    (".http", {"headers": {"content-type": "text/html; charset=ISO-8859-1"}, "body": "é☃"}, 200,
     "text/html; charset=UTF-8", "é☃".encode()),
    (".http", {"headers": {"Content-Type": "application/json; charset=ISO-8859-1"}, "body": "é"}, 200,
     "application/json", "é".encode()),
    *((".http", {"headers": {"Content-Type": f"text/plain; charset={charset}"}, "body": "a..é"}, 200,
       "text/plain; charset=UTF-8", "a..é".encode()) for charset in ("idna", "bogus", "base64", "utf-7")),
    # Serialized JSON is UTF-8 and typed without a charset: a declared one would mislabel it (a browser showed é
    # as "Ã©").
    (".http", {"headers": {"Content-Type": "application/json; charset=ISO-8859-1"}, "body": {"k": "é"}}, 200,
     "application/json", '{\n  "k": "é"\n}'.encode()),
    (".http", {"headers": {"Content-Type": "application/vnd.api+json; charset=iso-8859-1"}, "body": {"k": "é"}},
     200, "application/vnd.api+json", '{\n  "k": "é"\n}'.encode()),
    (".http", {"body": ""}, 204, None, b""),
    (".http", {}, 204, None, b""),
    (".http", {"statusCode": 302, "headers": {"Location": "http://127.0.0.1/x"}}, 302, None, b""),
    (".http", {"error": {"statusCode": 404, "body": "nf"}}, 404, "text/html; charset=UTF-8", b"nf"),
    # Any final code of 200-599 goes, registered or not (Pekko's StatusCodes.custom; OpenWhisk tests 444).
    (".http", {"statusCode": 444}, 444, None, b""),
    (".http", {"statusCode": 200, "headers": {"X-Tab": "a\tb"}}, 200, None, b""),
    (".http", {"statusCode": "+299", "body": "x"}, 299, "text/html; charset=UTF-8", b"x"),
    (".http", {"statusCode": 599.0, "body": {"a": 1}}, 599, "application/json", b'{\n  "a": 1\n}'),
    ("", {"statusCode": 200, "body": "default is http"}, 200, "text/html; charset=UTF-8", b"default is http"),
    (".http", {"headers": {"X-Many": ["a" * 4000] * 8}, "body": "x"}, 200, "text/html; charset=UTF-8", b"x"),
])
async def test_transcoding(anonymous: aiohttp.ClientSession, shape: str, ext: str, result: Any, status: int,
                           content_type: str | None, body: bytes) -> None:
    got_status, got_type, got_body, headers = await answer(anonymous, shape, ext, result)
    assert (got_status, got_type, got_body) == (status, content_type, body)
    assert len(headers["x-openwhisk-activation-id"]) == 32


@pytest.mark.parametrize("ext, result, status, message", [
    (".json", {"error": "boom"}, 400, "Response is not valid 'application/json'."),
    (".html", {"x": 1}, 400, NOT_HTML),
    (".html", {"body": 5}, 400, NOT_HTML),
    (".svg", {"x": 1}, 400, "Response is not valid 'image/svg+xml'."),
    (".text", {"x": 1}, 404, "Response does not include requested property."),
    (".http", {"error": "just a string"}, 400, NOT_HTTP),
    (".http", {"statusCode": "abc"}, 400, NOT_HTTP),
    (".http", {"statusCode": 999}, 400, NOT_HTTP),
    (".http", {"statusCode": 99}, 400, NOT_HTTP),
    (".http", {"statusCode": 600}, 400, NOT_HTTP),
    # An informational code is no final answer: the client would wait for one forever.
    (".http", {"statusCode": 100}, 400, NOT_HTTP),
    (".http", {"statusCode": "101", "body": "x"}, 400, NOT_HTTP),
    (".http", {"statusCode": 199, "body": {"a": 1}}, 400, NOT_HTTP),
    # Control characters cannot travel in a header value (a NUL dropped the connection).
    (".http", {"headers": {"X-A": "a\u0000b"}, "body": "x"}, 400, NOT_HTTP),
    (".http", {"headers": {"X-A": ["ok", "\u0001"]}}, 400, NOT_HTTP),
    (".http", {"headers": {"X-A": "a\u007fb"}}, 400, NOT_HTTP),
    (".http", {"statusCode": " 201"}, 400, NOT_HTTP),                 # Integer.parseInt takes no blanks
    (".http", {"statusCode": 200.5}, 400, NOT_HTTP),
    (".http", {"statusCode": None}, 400, NOT_HTTP),
    (".http", {"headers": "nope"}, 400, NOT_HTTP),
    (".http", {"headers": {"X-A": {"nested": 1}}}, 400, NOT_HTTP),
    (".http", {"headers": {"Content-Type": "nope"}, "body": "x"}, 400,
     "Response did not specify a known content-type."),
    (".http", {"headers": {"Content-Type": "text/plain"}, "body": {"a": 1}}, 400, MISMATCH),
    (".http", {"headers": {"Content-Type": "image/png"}, "body": "not base64!"}, 400, MISMATCH),
    # Headers past what a proxy in front reads (nginx's proxy_buffer_size, config/nginx/): nginx answered 502 and took
    # the controller out of its upstreams for a while, every tenant's requests with it.
    (".http", {"headers": {"X-Big": "a" * 40000}, "body": "x"}, 400,
     "Response headers larger than allowed: 40009 > 32768 bytes."),
    (".http", {"headers": {"Set-Cookie": ["c=" + "v" * 1000] * 40}}, 400,
     "Response headers larger than allowed: 40640 > 32768 bytes."),
])
async def test_refused_results(anonymous: aiohttp.ClientSession, shape: str, ext: str, result: Any, status: int,
                               message: str) -> None:
    got_status, got_type, got_body, headers = await answer(anonymous, shape, ext, result)
    assert (got_status, error_of(got_body)) == (status, message)
    assert got_type.startswith("application/json") and "x-openwhisk-activation-id" in headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    # Printed as Pekko's web routes print errors; the REST API's are compact.
    code = json.loads(got_body)["code"]
    assert got_body == f'{{\n  "error": {json.dumps(message)},\n  "code": "{code}"\n}}'.encode()


async def test_web_errors_before_the_action_are_pretty_too_and_rest_errors_compact(
        anonymous: aiohttp.ClientSession, guest: aiohttp.ClientSession) -> None:
    async with anonymous.get("/api/v1/web/guest/default/no-such-action.json") as r:
        body = await r.read()
        assert r.status == 404 and body.startswith(b'{\n  "error": ')
    async with guest.get("/api/v1/namespaces/_/actions/no-such-action") as r:
        body = await r.read()
        assert r.status == 404 and body.startswith(b'{"error":')


async def test_repeated_headers_and_developer_errors(guest: aiohttp.ClientSession,
                                                     anonymous: aiohttp.ClientSession, shape: str) -> None:
    _, _, _, headers = await answer(anonymous, shape, ".http", {
        "headers": {"X-Many": ["a", 2, True], "X-One": 1.5}, "body": "x"})
    assert headers.getall("X-Many") == ["a", "2", "true"] and headers["X-One"] == "1.5"
    broken = unique("broken")
    await put_action(guest, broken, "def main(args):\n    return 42\n", annotations=WEB)   # not a dictionary
    for ext in (".json", ".http", ".text"):
        async with anonymous.get(f"/api/v1/web/guest/default/{broken}{ext}") as r:
            assert (r.status, (await r.json())["error"]) == (400, "There was an error processing your request.")


async def test_a_header_value_nested_as_deep_as_a_result_may_be(anonymous: aiohttp.ClientSession, shape: str
                                                                ) -> None:
    """A header's list of values is flattened: that took two frames a level (a comprehension and the call), so a
    value nested ~490 deep, within what a result may nest, was a 500 with a RecursionError."""
    levels = 494                                   # the body, `r`, `headers`: within the parser's limit of 500
    raw = '{"r":{"headers":{"X-Deep":' + "[" * levels + '"v"' + "]" * levels + '},"body":"x"}}'
    async with anonymous.post(f"/api/v1/web/guest/default/{shape}.http", data=raw,
                              headers={"Content-Type": "application/json"}) as r:
        assert (r.status, r.headers.getall("X-Deep", None), await r.read()) == (200, ["v"], b"x")


async def test_the_server_writes_its_own_date_and_server_headers(anonymous: aiohttp.ClientSession, shape: str) -> None:
    """An action's `Date` and `Server` are not sent, as Pekko's renderer drops them (an "illegal RawHeader" with
    Content-Type, Content-Length, Transfer-Encoding and Connection): a `Date` that is no HTTP date went out, which
    caches read to age the answer."""
    _, _, body, headers = await answer(anonymous, shape, ".http", {
        "headers": {"Date": "yesterday", "server": "mine", "X-Other": "kept"}, "body": "x"})
    assert body == b"x" and headers["X-Other"] == "kept"
    assert headers.getall("Date") != ["yesterday"] and len(headers.getall("Date")) == 1
    assert parsedate_to_datetime(headers["Date"]).tzinfo is not None
    assert "mine" not in headers.getall("Server", [])


@pytest.mark.parametrize("ext, result, accept, status, offered", [
    # OpenWhisk's WebActionsApiTests: a text/html answer to `Accept: application/json` is 406, naming its type.
    (".http", {"body": "Plain text"}, "application/json", 406, "text/html; charset=UTF-8"),
    (".http", {"body": "Plain text"}, "text/html;q=0, application/json", 406, "text/html; charset=UTF-8"),
    (".json", {"a": 1}, "text/html", 406, "application/json"),
    (".text", {"text": "t"}, "application/json", 406, "text/plain"),
    (".http", {"body": "Plain text"}, "text/*", 200, None),
    (".http", {"body": "Plain text"}, "application/json, */*;q=0.1", 200, None),
    (".json", {"a": 1}, "application/json", 200, None),
    (".http", {"statusCode": 204}, "application/json", 204, None),              # no entity, nothing to negotiate
])
async def test_accept_header_is_negotiated(anonymous: aiohttp.ClientSession, shape: str, ext: str, result: Any,
                                           accept: str, status: int, offered: str | None) -> None:
    async with anonymous.post(f"/api/v1/web/guest/default/{shape}{ext}", json={"r": result},
                              headers={"Accept": accept}) as r:
        assert r.status == status
        if offered is not None:
            assert (await r.json())["error"] == \
                f"Resource representation is only available with these types:\n{offered}"
            assert not (await r.text()).startswith("{\n")       # the rejection handler's compact JSON
        # A 406 is Pekko's rejection, answered outside the route's header directives: no CORS, no activation id.
        refused = status == 406
        assert ("Access-Control-Allow-Origin" in r.headers) is not refused
        assert ("x-openwhisk-activation-id" in r.headers) is not refused
