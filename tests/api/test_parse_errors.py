"""A request aiohttp cannot parse (here a header value over its 8 KB limit) is the client's mistake: 400 as Pekko
answers it, and one warning line in the server's log, never an ERROR with a traceback that any caller could repeat
to flood the log."""

from __future__ import annotations

import asyncio
import os
import tempfile
from urllib.parse import urlsplit

from tests.support.processes import whisk_server


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
