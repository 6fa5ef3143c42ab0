"""Idle and slow connections are closed, with raw sockets on loopback: never-used and idle keep-alive connections,
request heads that trickle in, and bodies that stall (408 with OpenWhisk's error body); a request whose answer
takes longer than the idle timeout is not cut."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest_asyncio

from tests.support.processes import GUEST_AUTH, whisk_server

IDLE_S, BODY_S = 1.0, 1.0
AUTH = "Basic " + base64.b64encode(GUEST_AUTH.encode()).decode()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def address() -> AsyncIterator[tuple[str, int]]:
    data = tempfile.mkdtemp(prefix="whisk-conn-")
    env = {"WHISK_DATA_DIR": data, "WHISK_HTTP_IDLE_TIMEOUT_S": str(IDLE_S), "WHISK_HTTP_BODY_TIMEOUT_S": str(BODY_S)}
    async with whisk_server(env, log_path=os.path.join(data, "server.log")) as url:
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 80


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection, which must happen within `seconds`."""
    received = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            received += chunk
    return received


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: {AUTH}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_never_used_connections_are_closed(address: tuple[str, int]) -> None:
    began = time.monotonic()
    connections = [await asyncio.open_connection(*address) for _ in range(100)]
    try:
        received = await asyncio.gather(*(closed_within(reader, IDLE_S + 5) for reader, _ in connections))
    finally:
        for _, writer in connections:
            writer.close()
    assert received == [b""] * 100
    assert time.monotonic() - began >= IDLE_S * 0.9


async def test_an_idle_keep_alive_connection_is_closed(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request("GET", "/api/v1/namespaces"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()     # kept alive
        assert json.loads(await read_body(reader, head)) == ["guest"]
        assert await closed_within(reader, IDLE_S + 5) == b""               # then nothing, and closed
    finally:
        writer.close()


async def test_a_request_head_trickling_in_is_cut_off(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    began = time.monotonic()
    try:
        head = request("GET", "/api/v1/namespaces", X_Padding="p" * 200)
        for byte in head[:-4]:                          # never completes: a byte every fifth of the idle timeout
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(IDLE_S / 5)
            if reader.at_eof() or time.monotonic() - began > IDLE_S + 5:
                break
        assert await closed_within(reader, IDLE_S + 5) == b""
        assert time.monotonic() - began < IDLE_S + 5
    finally:
        writer.close()


async def test_a_stalled_body_is_a_408(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        full = request("PUT", "/api/v1/namespaces/_/triggers/stalled?overwrite=true", b'{"parameters": []}')
        writer.write(full[:-8])                         # the head and most of the body, then nothing
        began = time.monotonic()
        received = await closed_within(reader, BODY_S + 15)
        assert time.monotonic() - began >= BODY_S * 0.9
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), received
        error = json.loads(body)
        assert set(error) == {"error", "code"} and "stopped arriving" in error["error"]
    finally:
        writer.close()


async def test_a_slow_answer_is_not_cut(address: tuple[str, int]) -> None:
    """The idle timeout is about the client: an action that runs past it still answers on the same connection."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        code = "import time\ndef main(args):\n    time.sleep(%s)\n    return {'slept': True}\n" % (IDLE_S * 2.5)
        writer.write(request("PUT", "/api/v1/namespaces/_/actions/sleepy?overwrite=true",
                             json.dumps({"exec": {"kind": "python:3", "code": code}}).encode()))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await read_body(reader, head)
        writer.write(request("POST", "/api/v1/namespaces/_/actions/sleepy?blocking=true&result=true", b"{}"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(await read_body(reader, head)) == {"slept": True}
    finally:
        writer.close()


async def read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    length = next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return await reader.readexactly(int(length))
