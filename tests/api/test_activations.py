"""Reading activations on the real server (docs/openwhisk.md §1.10, §2.7): list summaries and docs, count, the name
filter, since/upto, one record in extended form, its result and logs, and every query validation message. Records are
made by real invocations."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.payload import Payload

from tests.api.support import call, ns, unique
from whisk.api.body import reply_array

PY = {"kind": "python:default", "code": "def main(args):\n    print('log line')\n    return {'echo': args}\n"}


async def invoke(session: aiohttp.ClientSession, path: str, payload: dict) -> str:
    status, body = await call(session, "POST", ns("actions", path), payload, params={"blocking": "true"})
    assert status == 200, body
    return body["activationId"]


async def wait_listed(session: aiohttp.ClientSession, ids: set[str], deadline_s: float = 20) -> list[dict]:
    end = time.monotonic() + deadline_s
    while True:
        status, listed = await call(session, "GET", ns("activations"), params={"limit": "200"})
        assert status == 200
        if ids <= {a["activationId"] for a in listed}:
            return listed
        assert time.monotonic() < end, f"activations {ids} not listed"
        await asyncio.sleep(0.05)


async def test_list_get_result_logs(guest: aiohttp.ClientSession) -> None:
    pkg, action = unique("apkg"), unique("act")
    assert (await call(guest, "PUT", ns("packages", pkg), {}))[0] == 200
    assert (await call(guest, "PUT", ns("actions", f"{pkg}/{action}"), {"exec": PY}))[0] == 200
    assert (await call(guest, "PUT", ns("actions", action), {"exec": PY}))[0] == 200
    before = int(time.time() * 1000) - 1
    first = await invoke(guest, f"{pkg}/{action}", {"n": 1})
    second = await invoke(guest, action, {"n": 2})
    listed = await wait_listed(guest, {first, second})

    summary = next(a for a in listed if a["activationId"] == first)
    assert summary["name"] == action and summary["namespace"] == "guest" and summary["statusCode"] == 0
    assert {"end", "duration", "start", "annotations", "version", "publish"} <= set(summary)
    assert "response" not in summary and "logs" not in summary
    assert [a["activationId"] for a in listed].index(second) < [a["activationId"] for a in listed].index(first)

    status, record = await call(guest, "GET", ns("activations", first))
    assert status == 200 and record["activationId"] == first
    assert record["response"]["status"] == "success" and record["response"]["success"] is True
    assert record["response"]["result"] == {"echo": {"n": 1}} and "statusCode" not in record["response"]
    assert record["end"] >= record["start"] and isinstance(record["duration"], int) and record["duration"] >= 0
    assert any("log line" in line for line in record["logs"])
    status, result = await call(guest, "GET", ns("activations", f"{first}/result"))
    assert status == 200 and result["result"] == {"echo": {"n": 1}} and result["success"] is True
    status, logs = await call(guest, "GET", ns("activations", f"{first}/logs"))
    assert status == 200 and logs == {"logs": record["logs"]}
    status, _ = await call(guest, "GET", ns("activations", f"{first}/"))
    assert status == 200

    status, docs = await call(guest, "GET", ns("activations"), params={"docs": "true", "name": f"{pkg}/{action}"})
    assert status == 200 and [d["activationId"] for d in docs] == [first]
    assert docs[0]["response"]["result"] == {"echo": {"n": 1}}
    status, named = await call(guest, "GET", ns("activations"), params={"name": action})
    assert [d["activationId"] for d in named] == [second]
    status, body = await call(guest, "GET", ns("activations"), params={"name": action, "count": "true"})
    assert (status, body) == (200, {"activations": 1})
    status, body = await call(guest, "GET", ns("activations"), params={"name": action, "count": "true", "skip": "1"})
    assert body == {"activations": 0}
    status, windowed = await call(guest, "GET", ns("activations"), params={"since": str(before), "limit": "200"})
    assert {first, second} <= {a["activationId"] for a in windowed}
    status, windowed = await call(guest, "GET", ns("activations"), params={"upto": str(before)})
    assert not {first, second} & {a["activationId"] for a in windowed}
    status, page = await call(guest, "GET", ns("activations"), params={"limit": "1"})
    assert len(page) == 1


async def test_the_limits_annotation_is_the_actions_limits_as_openwhisk_writes_them(
        guest: aiohttp.ClientSession) -> None:
    """The record's `limits` annotation is the action's limits written as OpenWhisk's ActionLimits writes them
    (`ContainerProxy.constructWhiskActivation`): its four fields in their order, and `instances` when it is set."""
    action = unique("inst")
    assert (await call(guest, "PUT", ns("actions", action), {"exec": PY, "limits": {"instances": 3}}))[0] == 200
    record = (await call(guest, "GET", ns("activations", await invoke(guest, action, {}))))[1]
    limits = next(a["value"] for a in record["annotations"] if a["key"] == "limits")
    assert list(limits.items()) == [("timeout", 60000), ("memory", 256), ("logs", 10), ("concurrency", 1),
                                    ("instances", 3)]


@pytest.mark.parametrize("query,message", [
    ({"docs": "true", "count": "true"}, "The parameter 'docs' is not permitted with 'count'."),
    ({"name": "a/b/c"}, "The query parameter 'name' was malformed:\n"
                        "Parameter may be a 'simple' name or 'package-name/simple' name: a/b/c"),
    ({"name": "bad$name"}, "The query parameter 'name' was malformed:\n"
                           "Parameter may be a 'simple' name or 'package-name/simple' name: bad$name"),
    ({"since": "yesterday"}, "The query parameter 'since' was malformed:\n"
                             "Parameter is not a valid value for epoch seconds: yesterday"),
    ({"upto": "1.5"},
     "The query parameter 'upto' was malformed:\nParameter is not a valid value for epoch seconds: 1.5"),
    ({"docs": "perhaps"}, "The query parameter 'docs' was malformed:\n'perhaps' is not a valid Boolean value"),
])
async def test_list_validation(guest: aiohttp.ClientSession, query, message) -> None:
    status, body = await call(guest, "GET", ns("activations"), params=query)
    assert (status, body["error"]) == (400, message)


async def test_numbers_with_leading_zeros_are_read_as_java_reads_them(guest: aiohttp.ClientSession) -> None:
    """`skip` and `limit` go through Java's Integer.parseInt and `since`/`upto` through Long.parseLong, which take
    any number of leading zeros: only the value's range counts, not the count of digits."""
    status, page = await call(guest, "GET", ns("activations"), params={"limit": "0" * 11 + "1", "skip": "+" + "0" * 12})
    assert status == 200 and len(page) <= 1, page
    status, body = await call(guest, "GET", ns("activations"), params={"count": "true", "since": "0" * 25 + "1",
                                                                          "upto": "+" + "0" * 20 + "9" * 18})
    assert status == 200 and "activations" in body, body
    status, body = await call(guest, "GET", ns("activations"), params={"limit": "00000000201"})
    assert (status, body["error"]) == (400, "The query parameter 'limit' was malformed:\n"
                                            "The value '201' is not in the range of 0 to 200 for activations.")
    status, body = await call(guest, "GET", ns("activations"), params={"skip": "0" * 12 + "2147483648"})
    assert (status, body["error"]) == (400, "The query parameter 'skip' was malformed:\n"
                                            f"The value '{'0' * 12}2147483648' is not an integer for activations.")


async def test_get_validation_and_missing(guest: aiohttp.ClientSession) -> None:
    status, body = await call(guest, "GET", ns("activations", "abc"))
    assert (status, body["error"]) == (400, "Activation id length is 3 but must be 32.")
    status, body = await call(guest, "GET", ns("activations", "z" * 32))
    assert (status, body["error"]) == (400, "The activation id is not valid.")
    for suffix in ("", "/result", "/logs"):
        status, body = await call(guest, "GET", ns("activations", "0" * 32 + suffix))
        assert (status, body["error"]) == (404, "The requested resource does not exist.")
    status, _ = await call(guest, "GET", ns("activations", "0" * 32 + "/other"))
    assert status == 404
    status, _ = await call(guest, "GET", ns("activations", "0" * 32, namespace="whisk.system"))
    assert status == 403


@pytest.mark.parametrize("tail", ["other", "result/x", "logs/"])
async def test_a_path_past_the_activation_id_is_checked_as_the_id_route_is(guest: aiohttp.ClientSession,
                                                                         tail: str) -> None:
    """OpenWhisk validates the segment after `activations/` as an id, and the caller's right to the namespace, before
    it looks at the rest of the path (`AuthorizedRouteProvider.innerRoutes`, then `fetch`), so that an id that is no
    id is a 400 and another namespace a 403 whatever follows; only then is an unknown tail a 404."""
    status, body = await call(guest, "GET", ns("activations", f"abc/{tail}"))
    assert (status, body["error"]) == (400, "Activation id length is 3 but must be 32.")
    status, body = await call(guest, "GET", ns("activations", f"{'z' * 32}/{tail}"))
    assert (status, body["error"]) == (400, "The activation id is not valid.")
    status, body = await call(guest, "GET", ns("activations", f"{'0' * 32}/{tail}", namespace="whisk.system"))
    assert status == 403, body
    status, body = await call(guest, "GET", ns("activations", f"{'0' * 32}/{tail}"))
    assert (status, body["error"]) == (404, "The requested resource could not be found.")


@pytest.mark.filterwarnings("ignore:It is recommended to use web.RequestKey")     # the server's own key, a str
async def test_a_record_stored_while_the_first_read_was_under_way_is_answered_not_404() -> None:
    """The race a blocking caller can hit: its GET reads the store before the record is committed, and the completion
    closes the activation before the GET looks for it in flight. The record is there by then: read again."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from whisk.api.collections import get_activation
    from whisk.api.keys import ENTITIES, IDENTITY
    from whisk.entities.activation import Activation, ActivationResponse, new_activation_id
    from whisk.entities.errors import NotFound
    from whisk.entities.names import EntityPath

    activation_id = new_activation_id()
    record = Activation("guest", "hello", "guest", activation_id, 1000, 1001, ActivationResponse.success({"ok": 1}))
    reads = []

    class Records:
        async def get(self, identity, namespace, wanted):
            reads.append(wanted)
            if len(reads) == 1:               # begun before the commit; the activation closes meanwhile
                raise NotFound()
            return record

    class Entities:
        activations = Records()

        def namespace(self, identity, segment):
            return EntityPath.of("guest")

    app = web.Application()
    app[ENTITIES] = Entities()                # no SERVICES: nothing in flight, as after the completion
    request = make_mocked_request("GET", f"/api/v1/namespaces/_/activations/{activation_id}", app=app,
                                  match_info={"namespace": "_", "id": activation_id})
    request[IDENTITY] = type("Caller", (), {"namespace": "guest"})()
    response = await get_activation(request)
    assert response.status == 200 and reads == [activation_id, activation_id]


async def test_a_listing_of_large_records_lets_other_requests_run_between_them() -> None:
    """Encoding a record with megabytes of logs takes tens of milliseconds: `reply_array` gives the loop a turn after
    each large one, where a page of them was encoded back to back, nothing else served meanwhile."""
    turns = 0
    seen: list[int] = []

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def records() -> AsyncIterator[list[str]]:      # a store that has them all at once: no await between
        for _ in range(6):
            yield ["x" * 100] * 3000                      # ~300 KB encoded

    def to_json(item: list[str]) -> list[str]:
        seen.append(turns)
        return item

    class Sink:
        async def write(self, chunk: bytes) -> None:      # a client that reads at once: never waits to send
            sent.append(chunk)

    sent: list[bytes] = []
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        response = await reply_array(records(), to_json)
        assert isinstance(response.body, Payload)
        await response.body.write(Sink())              # type: ignore[arg-type]
    finally:
        task.cancel()
    assert len(json.loads(b"".join(sent))) == 6
    assert all(later > earlier for earlier, later in zip(seen, seen[1:])), seen


async def test_a_large_listing_of_docs_is_sent_as_it_is_encoded(guest: aiohttp.ClientSession) -> None:
    """`docs=true` answers past a megabyte are streamed, each record encoded on its own (api/body.reply_array),
    instead of held three times over; smaller ones keep their Content-Length. Either is the same JSON."""
    action = unique("loud")
    code = ("def main(args):\n    for n in range(3000):\n        print('%05d' % n + 'x' * 100)\n"
            "    return {'n': args['n']}\n")
    exec_ = {"kind": "python:default", "code": code}
    assert (await call(guest, "PUT", ns("actions", action), {"exec": exec_}))[0] == 200
    ids = [await invoke(guest, action, {"n": n}) for n in range(4)]          # ~320 KB of logs each
    await wait_listed(guest, set(ids))
    records = [(await call(guest, "GET", ns("activations", i)))[1] for i in reversed(ids)]     # newest first
    for limit, streamed in (("4", True), ("2", False)):
        async with guest.get(ns("activations"), params={"docs": "true", "name": action, "limit": limit}) as r:
            listed = await r.json()
            assert r.status == 200 and r.content_type == "application/json"
            assert ("Content-Length" not in r.headers) is streamed
            assert (r.headers.get("Transfer-Encoding") == "chunked") is streamed
            assert r.headers["Access-Control-Allow-Origin"] == "*"          # the middlewares' headers still come
        assert listed == records[:int(limit)]
        assert len(listed[0]["logs"]) == 3000
