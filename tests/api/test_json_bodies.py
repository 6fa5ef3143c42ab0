"""JSON request bodies that Python's parser reads but whisk cannot carry (nesting past the limit, lone surrogates,
NaN/Infinity) get OpenWhisk's 400 on every route that reads a body, over real HTTP: entity PUTs, invoke, trigger
fire, web actions and createApi; nothing of them is stored."""

from __future__ import annotations

import gzip
import json
from typing import Any

import aiohttp
import pytest

from tests.api.support import call, ns, unique
from tests.support.http import raw_call
from whisk.entities.json_value import MAX_DEPTH

JSON = {"Content-Type": "application/json"}
WEB = [{"key": "web-export", "value": True}]


def deep(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b"]" * levels + b"}"


# Each: a body that must be refused, and what it holds; the nesting is past the old failure point (~975 levels).
BAD_BODIES = {
    "nested 1000": deep(1000),
    "nested 100000": deep(100_000),
    "nested just past the limit": deep(MAX_DEPTH),
    "lone surrogate": b'{"a":"\\ud800"}',
    "lone surrogate in a key": b'{"\\udfff":1}',
    "NaN": b'{"a":NaN}',
    "Infinity": b'{"a":[1,-Infinity]}',
    # Too large for a float: Python reads them as Infinity (stored, then served as invalid JSON; invoked, null).
    "overflow": b'{"a":1e400}',
    "negative overflow": b'{"a":[1,-1.5E+999]}',
    "overflow by digits": b'{"a":1' + b"0" * 400 + b'.5}',
}


async def refused(session: aiohttp.ClientSession, method: str, path: str, raw: bytes, **kwargs: Any) -> None:
    status, body = await call(session, method, path, data=raw, headers=JSON, **kwargs)
    assert status == 400, (path, raw[:40], status, body)
    assert isinstance(body, dict) and set(body) == {"error", "code"}, body
    assert body["error"].startswith("The request content was malformed:"), body


@pytest.mark.parametrize("label", list(BAD_BODIES))
async def test_entity_puts_refuse_bodies_whisk_cannot_carry(guest: aiohttp.ClientSession, label: str) -> None:
    raw = BAD_BODIES[label]
    for collection in ("actions", "triggers", "packages"):
        name = unique(collection[:3])
        await refused(guest, "PUT", ns(collection, name), raw)
        status, _ = await call(guest, "GET", ns(collection, name))
        assert status == 404                                     # nothing was stored


@pytest.mark.parametrize("label", list(BAD_BODIES))
async def test_invoke_fire_web_and_create_api_refuse_them(guest: aiohttp.ClientSession, label: str) -> None:
    raw = BAD_BODIES[label]
    action, trigger = unique("act"), unique("trg")
    status, body = await call(guest, "PUT", ns("actions", action),
                              {"exec": {"kind": "python:3", "code": "def main(args):\n    return args\n"},
                               "annotations": WEB})
    assert status == 200, body
    status, body = await call(guest, "PUT", ns("triggers", trigger), {})
    assert status == 200, body
    await refused(guest, "POST", ns("actions", action), raw, params={"blocking": "true"})
    await refused(guest, "POST", ns("actions", action), raw)
    await refused(guest, "POST", ns("triggers", trigger), raw)
    await refused(guest, "POST", f"/api/v1/web/guest/default/{action}.json", raw)
    await refused(guest, "POST", "/api/v1/web/whisk.system/apimgmt/createApi.http", raw,
                  params={"accesstoken": "DUMMY TOKEN", "responsetype": "json"})
    # Nothing ran, nothing was recorded: counted by name, as records of earlier tests' activations may still be
    # arriving in the session server's namespace.
    assert [await activation_count(guest, name) for name in (action, trigger)] == [0, 0]
    # The activation list of the namespace stays valid JSON for clients.
    async with guest.get(ns("activations"), params={"limit": "200"}) as r:
        assert r.status == 200 and isinstance(await r.json(), list)


async def activation_count(session: aiohttp.ClientSession, name: str) -> int:
    status, body = await call(session, "GET", ns("activations"), params={"count": "true", "name": name})
    assert status == 200, body
    return body["activations"]


async def test_nesting_within_the_limit_and_paired_surrogates_are_carried(guest: aiohttp.ClientSession) -> None:
    action = unique("act")
    status, body = await call(guest, "PUT", ns("actions", action),
                              {"exec": {"kind": "python:3", "code": "def main(args):\n    return args\n"}})
    assert status == 200, body
    raw = b'{"a":' + b"[" * (MAX_DEPTH - 2) + b"]" * (MAX_DEPTH - 2) + b',"s":"\\ud83d\\ude00"}'
    status, body = await call(guest, "POST", ns("actions", action), data=raw, headers=JSON,
                              params={"blocking": "true", "result": "true"})
    assert status == 200, body
    assert body["s"] == "\U0001F600"
    value, levels = body["a"], 1
    while value:
        value, levels = value[0], levels + 1
    assert levels == MAX_DEPTH - 2


async def test_content_encoding_is_not_decoded(whisk_url: str, guest: aiohttp.ClientSession) -> None:
    """A body is read as sent, whatever its Content-Encoding says, as OpenWhisk (no decodeRequest): plain JSON under a
    false `gzip`, `deflate` or `br` is read; a gzipped body is not JSON, the malformed-request 400 (a 500 with a
    traceback before, and `br` aiohttp's plain-text 400)."""
    name = unique("t")
    for encoding in (b"gzip", b"deflate", b"br"):
        status, _, body = await raw_call(whisk_url, "PUT", ns("triggers", name) + "?overwrite=true",
                                         [("Content-Type", b"application/json"), ("Content-Encoding", encoding)],
                                         b'{"parameters":[{"key":"k","value":1}]}')
        assert status == 200 and json.loads(body)["parameters"] == [{"key": "k", "value": 1}], (encoding, body)
    status, _, body = await raw_call(whisk_url, "PUT", ns("triggers", unique("t")),
                                     [("Content-Type", b"application/json"), ("Content-Encoding", b"gzip")],
                                     gzip.compress(b"{}"))
    assert status == 400 and json.loads(body)["error"].startswith("The request content was malformed"), body


async def test_a_declared_charset_decodes_the_body(guest: aiohttp.ClientSession) -> None:
    """A JSON body is decoded with its declared charset, as Pekko's unmarshaller does (`CTL/RestAPIs.scala`): a
    Latin-1 `é` was stored as U+FFFD, UTF-16 was a 400. A name that is no text charset is read as UTF-8."""
    name = unique("t")
    cases = (("ISO-8859-1", "latin-1"), ("UTF-16", "utf-16"), ("utf-16le", "utf-16-le"), ("bogus", "utf-8"),
             ("base64", "utf-8"))
    for declared, codec in cases:
        text = json.dumps({"parameters": [{"key": "k", "value": f"é {declared}"}]}, ensure_ascii=False)
        status, body = await call(guest, "PUT", ns("triggers", name) + "?overwrite=true", data=text.encode(codec),
                                  headers={"Content-Type": f"application/json; charset={declared}"})
        assert status == 200 and body["parameters"] == [{"key": "k", "value": f"é {declared}"}], (declared, body)
    # Invoke (and fire) bodies too.
    name = unique("echo")
    status, body = await call(guest, "PUT", ns("actions", name), {"exec": {"kind": "nodejs:default",
                                                                       "code": "function main(a) { return a; }"}})
    assert status == 200, body
    status, body = await call(guest, "POST", ns("actions", name) + "?blocking=true&result=true",
                              data='{"v":"é"}'.encode("utf-16"),
                              headers={"Content-Type": "application/json; charset=UTF-16"})
    assert (status, body) == (200, {"v": "é"})


async def test_entities_nested_to_the_limit_are_read_updated_and_deleted(guest: aiohttp.ClientSession) -> None:
    """A body nested as deep as the parser takes it is stored; the entity must then read, list, invoke, update and
    delete like any other. The controller's cache copied each document it read with two Python frames a level (a
    comprehension is a frame of its own before 3.12), so every later GET, PUT, DELETE or invoke of it, or of the
    name, was a 500 with a RecursionError: a stored entity nobody could remove."""
    levels = MAX_DEPTH - 4                   # the body, `parameters`, its entry and the value's own levels
    value = "[" * levels + "1" + "]" * levels
    for collection, extra in (("triggers", ""), ("packages", ""),
                              ("actions", ',"exec":{"kind":"nodejs:default","code":"function main(a){return a}"}')):
        name = unique(collection[:3])
        raw = f'{{"parameters":[{{"key":"d","value":{value}}}]{extra}}}'.encode()
        status, body = await call(guest, "PUT", ns(collection, name), data=raw, headers=JSON)
        assert status == 200, (collection, body)
        status, body = await call(guest, "GET", ns(collection, name))
        assert status == 200 and json.dumps(body["parameters"][0]["value"], separators=(",", ":")) == value, \
            (collection, status, str(body)[:200])
        status, body = await call(guest, "GET", ns(collection), params={"limit": "200"})
        assert status == 200 and name in [entity["name"] for entity in body], (collection, status)
        if collection == "actions":
            status, body = await call(guest, "POST", ns(collection, name),
                                      params={"blocking": "true", "result": "true"})
            assert status == 200 and json.dumps(body["d"], separators=(",", ":")) == value, \
                (status, str(body)[:200])
        status, body = await call(guest, "PUT", ns(collection, name) + "?overwrite=true", data=raw, headers=JSON)
        assert status == 200 and body["version"] == "0.0.2", (collection, status, str(body)[:200])
        status, body = await call(guest, "DELETE", ns(collection, name))
        assert status == 200, (collection, status, str(body)[:200])
