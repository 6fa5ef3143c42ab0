"""A request aiohttp cannot parse (here a header value over its 8 KB limit) is the client's mistake: 400 as Pekko
answers it, and one warning line in the server's log, never an ERROR with a traceback that any caller could repeat
to flood the log."""

from __future__ import annotations

import asyncio
import os
import tempfile
from urllib.parse import urlsplit

from tests.support.http import GUEST_BASIC
from tests.support.processes import whisk_server
from tests.support.waiting import until


async def _raw(url: str, request: bytes) -> bytes:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_oversized_header_is_400_and_one_warning_line() -> None:
    data = tempfile.mkdtemp(prefix="whisk-parse-")
    log_path = os.path.join(data, "server.log")
    async with whisk_server({"WHISK_DATA_DIR": data}, log_path=log_path) as url:
        head = b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n"
        answer = await _raw(url, head)
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", answer[:200]
        # The server still answers the next caller.
        answer = await _raw(url, b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"200", answer[:200]
    log = open(log_path, encoding="utf-8", errors="replace").read()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    rejected = [line for line in log.splitlines() if "http.rejected" in line]
    assert len(rejected) == 1 and "warning" in rejected[0] and "status=400" in rejected[0], log[-3000:]


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


def _text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
