"""A request aiohttp cannot parse is the client's mistake: answered before any route as every other error,
`{"error", "code": <transaction id>}` with the status that fits and the connection closed (api/early_errors.py), on
every server whisk runs (the API, the playground's, an invoker's), and one warning line in the server's log, never an
ERROR with a traceback that any caller could repeat to flood the log."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from urllib.parse import urlsplit


from tests.support.http import GUEST_BASIC
from tests.support.processes import free_port, whisk_server
from tests.support.waiting import until

VERSION = "The server does not support the HTTP protocol version used in the request."
# (request, status, error): each refused before any route.
REFUSED = [
    (b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
     431, "HTTP header exceeds the configured limit of 8190 characters"),
    (b"GET /api/v1 HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
     431, "HTTP message contains more than the configured limit of 128 headers"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, "URI length exceeds the configured limit of 8192 characters"),
    (b"GET /api/v1 HTTP/1.2\r\nHost: x\r\n\r\n", 505, VERSION),
    (b"GET /api/v1 HTTP/2.0\r\nHost: x\r\n\r\n", 505, VERSION),      # aiohttp reads it: refused by whisk
    (b"GET /api/v1\r\n\r\n", 505, VERSION),                               # HTTP/0.9, read by aiohttp too
    (b"FOO /api/v1 HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported HTTP method: FOO"),
    (b"GARBAGE\r\n\r\n", 400, "Illegal request: Invalid method encountered"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400,
     "Unsupported HTTP method: the request began as TLS does (HTTPS sent to an HTTP port?)"),
    (b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "Illegal request: Invalid header token"),
    (b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400,
     "Illegal request: Invalid header value char"),
    (b"GET /api/v1 HTTP/1.1\r\n\r\n", 400, "Illegal request: Missing 'Host' header in request."),
    (b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400,
     "Illegal request: Invalid character in Content-Length"),
    (b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
     "Illegal request: Duplicate Content-Length"),
    (b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "Illegal request: Transfer-Encoding can't be present with Content-Length"),
    (b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400,
     "Illegal request: Invalid character in chunk size"),
    (b"GET /api/v1\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Illegal request-target: Invalid char in url path"),
]


async def _raw(url: str, request: bytes) -> bytes:
    """The whole answer, up to the server's closing of the connection."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def _assert_refused(raw: bytes, status: int, error: str) -> None:
    """OpenWhisk's error shape, the request's transaction id as its code and in X-Request-ID, and the connection
    closed: the parser has lost its place, so nothing after the refusal is read."""
    got, headers, body = _answer(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json", raw[:300]
    assert headers.get("connection", "").lower() == "close", raw[:300]
    answer = json.loads(body)
    assert answer == {"error": error, "code": headers["x-request-id"]}, raw[:300]
    assert re.fullmatch(r"[0-9a-f]{32}", answer["code"]), answer


async def test_every_refusal_before_any_route_is_json_on_the_api_and_the_playground() -> None:
    playground = free_port()
    async with whisk_server({"WHISK_PLAYGROUND_PORT": str(playground)}) as url:
        for origin in (url, f"http://127.0.0.1:{playground}"):
            for request, status, error in REFUSED:
                _assert_refused(await _raw(origin, request), status, error)
            # The server still answers the next caller.
            answer = await _raw(origin, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _answer(answer)[0] in (200, 404), answer[:300]


async def test_an_invokers_server_refuses_the_same_way() -> None:
    async with whisk_server({"WHISK_ROLE": "invoker", "WHISK_TRUST_ALL_CODE": "true"}) as url:
        for request, status, error in REFUSED[:8]:
            _assert_refused(await _raw(url, request), status, error)


async def test_a_target_over_8k_is_414_as_json_and_the_connection_goes_on() -> None:
    """Pekko's `max-uri-length = 8k`: a request aiohttp read whole, so the connection may serve the next."""
    async with whisk_server() as url:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
    first, _, second = raw.partition(b"HTTP/1.1 200 OK")
    status, headers, body = _answer(first)
    assert status == 414 and headers.get("connection", "").lower() != "close", raw[:600]
    length = int(headers["content-length"])
    assert json.loads(body[:length]) == {"error": "URI length exceeds the configured limit of 8192 characters",
                                         "code": headers["x-request-id"]}
    assert second, raw[:600]


async def test_a_body_whose_chunked_framing_breaks_mid_way_is_400_at_once() -> None:
    """A chunk size that is no number, after a head the route already has: aiohttp's parser gives up on the body
    without ending it, and the route waited for the rest until WHISK_HTTP_BODY_TIMEOUT_S, then answered 408. It is
    400 at once, and the connection closes (the rest of the stream cannot be framed)."""
    async with whisk_server({"WHISK_HTTP_BODY_TIMEOUT_S": "30"}) as url:
        for path, auth in (("/api/v1/namespaces/_/triggers/t", b"Authorization: " + GUEST_BASIC + b"\r\n"),
                           ("/api/v1/web/guest/default/none.json", b"")):
            parts = urlsplit(url)
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\n".encode() + auth +
                             b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n")
                await writer.drain()
                await asyncio.sleep(0.3)          # the route is reading the body by now
                writer.write(b"zz\r\nabc\r\n0\r\n\r\n")
                await writer.drain()
                raw = await asyncio.wait_for(reader.read(), 5)
            finally:
                writer.close()
            _assert_refused(raw, 400, "Illegal request: the body could not be read to its end")


async def test_a_body_refused_before_it_has_all_come_closes_the_connection() -> None:
    """413 for a Content-Length over the limit is answered before the body is read: the client is told the
    connection ends (Connection: close), so that it stops sending, rather than believing the connection stays open
    while aiohttp reads and drops the rest for up to 10 s (its lingering close) and then closes it."""
    async with whisk_server() as url:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(b"PUT /api/v1/namespaces/_/triggers/t HTTP/1.1\r\nHost: x\r\nAuthorization: " + GUEST_BASIC +
                         b"\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{")
            await writer.drain()
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            raw += await asyncio.wait_for(reader.readexactly(int(_answer(raw)[1]["content-length"])), 5)
        finally:
            writer.close()
    status, headers, body = _answer(raw)
    assert status == 413 and headers.get("connection", "").lower() == "close", raw[:400]
    assert json.loads(body)["code"] == headers["x-request-id"]


async def test_oversized_header_is_431_and_one_warning_line() -> None:
    data = tempfile.mkdtemp(prefix="whisk-parse-")
    log_path = os.path.join(data, "server.log")
    async with whisk_server({"WHISK_DATA_DIR": data}, log_path=log_path) as url:
        head = b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n"
        answer = await _raw(url, head)
        _assert_refused(answer, 431, "HTTP header exceeds the configured limit of 8190 characters")
        tid = _answer(answer)[1]["x-request-id"]
        # The server still answers the next caller.
        answer = await _raw(url, b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"200", answer[:200]
    log = open(log_path, encoding="utf-8", errors="replace").read()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    rejected = [line for line in log.splitlines() if "http.rejected" in line]
    assert len(rejected) == 1 and "warning" in rejected[0] and "status=431" in rejected[0], log[-3000:]
    assert tid in rejected[0], rejected


async def test_a_client_that_leaves_mid_body_is_one_info_line_and_499() -> None:
    """A client that closes its connection before its body has all come is no server error: one info line and
    nginx's 499 in the access log, never `api.failed` with a traceback and a 500."""
    data = tempfile.mkdtemp(prefix="whisk-gone-")
    log_path = os.path.join(data, "server.log")
    async with whisk_server({"WHISK_DATA_DIR": data}, log_path=log_path) as url:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(b"PUT /api/v1/namespaces/_/triggers/t HTTP/1.1\r\nHost: x\r\nAuthorization: " + GUEST_BASIC +
                     b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":")
        await writer.drain()
        writer.close()
        await until("the access line", lambda: [line for line in _text(log_path).splitlines()
                                                if "http.access" in line and "/triggers/t" in line])
    log = _text(log_path)
    assert "Traceback" not in log and "api.failed" not in log, log[-3000:]
    (gone,) = [line for line in log.splitlines() if "api.client.gone" in line]
    (access,) = [line for line in log.splitlines() if "http.access" in line and "/triggers/t" in line]
    assert "info" in gone and "status=499" in access, log[-3000:]


async def test_a_flood_of_malformed_requests_is_a_bounded_number_of_lines() -> None:
    """Each answered, but a warning each would let any client write the log as fast as it sends: after a burst the
    lines are left out, and the next one written says how many were."""
    data = tempfile.mkdtemp(prefix="whisk-flood-")
    log_path = os.path.join(data, "server.log")
    async with whisk_server({"WHISK_DATA_DIR": data, "WHISK_LOG_LEVEL": "warning"}, log_path=log_path) as url:
        for _ in range(100):
            _assert_refused(await _raw(url, REFUSED[3][0]), 505, VERSION)
        await asyncio.sleep(1.1)                                  # room for one more line
        _assert_refused(await _raw(url, REFUSED[3][0]), 505, VERSION)
    rejected = [line for line in _text(log_path).splitlines() if "http.rejected" in line]
    assert 20 <= len(rejected) <= 25, len(rejected)
    left_out = int(re.search(r"not_logged=(\d+)", rejected[-1]).group(1))     # type: ignore[union-attr]
    assert len(rejected) + left_out == 101, rejected[-1]


def _text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
