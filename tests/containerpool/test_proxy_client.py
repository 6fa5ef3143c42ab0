"""The platform's HTTP client for runtime proxies: framing of the answers a proxy may give (Content-Length, chunked,
to the end of the connection, after a 100 Continue), keep-alive reuse, and its three kinds of failure."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from whisk.containers.proxy_client import Broken, Oversized, ProxyClient, Unreachable

Answer = Callable[[bytes], bytes | None]


@asynccontextmanager
async def proxy(tmp_path: object, answer: Answer, *,
                close_after: bool = False) -> AsyncIterator[tuple[str, list[int]]]:
    """A unix-socket server that reads each request whole and writes `answer(body)` (None: close without one; with
    `close_after`, close after each answer). Yields its path and the number of requests seen on each connection."""
    path = os.path.join(str(tmp_path), "proxy.sock")
    per_connection: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        per_connection.append(0)
        index = len(per_connection) - 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                per_connection[index] += 1
                reply = answer(body)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if close_after:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_unix_server(serve, path)
    try:
        yield path, per_connection
    finally:
        server.close()
        await server.wait_closed()


def framed(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body), extra, body)


async def test_keeps_one_connection_for_calls_in_turn(tmp_path: object) -> None:
    async with proxy(tmp_path, lambda body: framed(body)) as (path, seen):
        client = ProxyClient(path)
        for n in range(3):
            assert await client.post("/run", b'{"n":%d}' % n, 5) == (200, b'{"n":%d}' % n)
        await client.close()
    assert seen == [3]


async def test_calls_at_once_use_a_connection_each(tmp_path: object) -> None:
    async with proxy(tmp_path, lambda body: framed(body)) as (path, seen):
        client = ProxyClient(path)
        answers = await asyncio.gather(*(client.post("/run", b"%d" % n, 5) for n in range(4)))
        assert answers == [(200, b"%d" % n) for n in range(4)]
        await client.close()
    assert sorted(seen) == [1, 1, 1, 1]


async def test_chunked_answer_and_trailers(tmp_path: object) -> None:
    chunked = (b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\n{\"a\":\r\n3\r\n42}\r\n0\r\nX-Trailer: y\r\n\r\n")
    async with proxy(tmp_path, lambda body: chunked) as (path, seen):
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5) == (502, b'{"a":42}')
        assert await client.post("/run", b"{}", 5) == (502, b'{"a":42}')
        await client.close()
    assert seen == [2]


async def test_interim_answer_is_skipped(tmp_path: object) -> None:
    async with proxy(tmp_path, lambda body: b"HTTP/1.1 100 Continue\r\n\r\n" + framed(b"{}")) as (path, _):
        client = ProxyClient(path)
        assert await client.post("/init", b"{}", 5) == (200, b"{}")
        await client.close()


async def test_connection_close_and_answers_framed_by_the_end(tmp_path: object) -> None:
    closing = framed(b"{}", b"Connection: close\r\n")
    async with proxy(tmp_path, lambda body: closing) as (path, seen):
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5) == (200, b"{}")
        assert await client.post("/run", b"{}", 5) == (200, b"{}")
        await client.close()
    assert seen == [1, 1]                       # not reused after "Connection: close"

    unframed = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"old\":true}"
    async with proxy(tmp_path, lambda body: unframed, close_after=True) as (path, seen):
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5) == (200, b'{"old":true}')
        assert await client.post("/run", b"{}", 5) == (200, b'{"old":true}')
        await client.close()
    assert seen == [1, 1]


async def test_failures(tmp_path: object) -> None:
    client = ProxyClient(os.path.join(str(tmp_path), "nobody.sock"))
    with pytest.raises(Unreachable):
        await client.post("/run", b"{}", 5)

    async with proxy(tmp_path, lambda body: None) as (path, _):      # closes without an answer
        with pytest.raises(Broken):
            await ProxyClient(path).post("/run", b"{}", 5)

    async with proxy(tmp_path, lambda body: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}") as (path, _):
        client = ProxyClient(path)
        with pytest.raises(TimeoutError):   # a body shorter than announced, on a connection left open
            await client.post("/run", b"{}", 0.2)
        await client.close()

    async with proxy(tmp_path, lambda body: b"nonsense\r\n\r\n") as (path, _):
        with pytest.raises(Broken):
            await ProxyClient(path).post("/run", b"{}", 5)

    async with proxy(tmp_path, lambda body: framed(b"{}")) as (path, seen):
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5) == (200, b"{}")
        await client.close()
        with pytest.raises(Broken):                # closed: no new calls
            await client.post("/run", b"{}", 5)


@pytest.mark.parametrize(("answer", "close_after"), [
    # The answer keeps the connection alive as far as its headers say, but the proxy closes it afterwards.
    pytest.param(framed(b"{}"), True, id="closed-while-idle"),
    # A proxy that writes more than its answer (a stray line, a second answer) leaves the connection unusable: the
    # next call must not read those bytes as its answer.
    pytest.param(framed(b"{}") + framed(b'{"stray": true}'), False, id="bytes-after-the-answer"),
])
async def test_a_connection_that_cannot_carry_the_next_call_is_not_reused(tmp_path: object, answer: bytes,
                                                                          close_after: bool) -> None:
    async with proxy(tmp_path, lambda body: answer, close_after=close_after) as (path, seen):
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5) == (200, b"{}")
        await asyncio.sleep(0.05)          # the end of the connection, or the stray bytes, arrive while it is idle
        assert await client.post("/run", b"{}", 5) == (200, b"{}")
        await client.close()
    assert seen == [1, 1]                  # each call on a connection of its own


@pytest.mark.parametrize("framing", ["content-length", "chunked", "to-the-end"])
async def test_an_answer_over_max_body_is_cut_at_once_and_its_connection_dropped(tmp_path: object,
                                                                               framing: str) -> None:
    """Past max_body the call ends with the body's start and length as soon as that start has come: no more is
    held, and nothing waits for the rest (which may never come)."""
    data = b"x" * 5000
    if framing == "content-length":
        first = b"HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n" + data
    elif framing == "chunked":
        first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (500, data[i:i + 500]) for i in range(0, 5000, 500))
    else:
        first = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + data
    # `proxy` writes the start of the answer and nothing more, keeping the connection open (as an action that took
    # the connection over could).
    async with proxy(tmp_path, lambda body: first) as (path, seen):
        client = ProxyClient(path)
        with pytest.raises(Oversized) as caught:
            await asyncio.wait_for(client.post("/run", b"{}", 30, max_body=1000), 5)
        assert caught.value.status == 200 and caught.value.head == b"x" * 1000
        if framing == "to-the-end":                     # at least what had come when the cut was made
            assert caught.value.size > 1000
        else:
            assert caught.value.size == {"content-length": 50_000_000, "chunked": 1500}[framing]
        with pytest.raises(Oversized):                  # a connection of its own: the first one was dropped
            await asyncio.wait_for(client.post("/run", b"{}", 30, max_body=1000), 5)
        await client.close()
    assert seen == [1, 1]


async def test_an_answer_within_max_body_is_whole(tmp_path: object) -> None:
    async with proxy(tmp_path, lambda body: framed(b'"' + b"y" * 998 + b'"')) as (path, seen):
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5, max_body=1000) == (200, b'"' + b"y" * 998 + b'"')
        assert await client.post("/run", b"{}", 5, max_body=1000) == (200, b'"' + b"y" * 998 + b'"')
        await client.close()
    assert seen == [2]


@pytest.mark.parametrize("answer", [
    # A negative chunk size moved the parse backwards, for ever, on the event loop (an action can write its own
    # connection's answer: its code shares the proxy's process).
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-6\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",       # a chunk without its CRLF
    b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n{}",
])
async def test_framing_numbers_are_strict(tmp_path: object, answer: bytes) -> None:
    async with proxy(tmp_path, lambda body: answer) as (path, _):
        client = ProxyClient(path)
        with pytest.raises(Broken):
            await client.post("/run", b"{}", 5)
        await client.close()


def test_a_chunked_body_arriving_in_pieces_is_read_on_from_where_it_stopped() -> None:
    """Each arrival goes on from the last whole chunk: 20,000 one-byte chunks read byte by byte would take the loop
    minutes if every arrival parsed the body from its start."""
    from whisk.containers.proxy_client import _parse, _Progress
    body = b"x" * 20_000
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"1\r\n%c\r\n" % c for c in body) + b"0\r\n\r\n"
    buffer, progress = bytearray(), _Progress()
    parsed = None
    for i in range(0, len(wire), 7):
        buffer += wire[i:i + 7]
        parsed = _parse(buffer, False, None, progress)
        assert parsed is None or i + 7 >= len(wire)
    assert parsed is not None and parsed.body == body and parsed.used == len(wire)


_MANY_LINES = 16_000                # short lines filling most of what a head (or trailers) may take, 64 KB


@pytest.mark.parametrize("head, tail", [
    # A head of many header lines, then its body a byte at a time: each arrival parsed the whole head again (17 ms
    # here), so that an action trickling its own answer held the event loop, and every tenant's work, for as long
    # as its timeout.
    (b"HTTP/1.1 200 OK\r\n" + b"a:\r\n" * _MANY_LINES + b"Content-Length: 2000\r\n\r\n", b"x" * 2000),
    # Many interim answers, then the real head a byte at a time: each arrival read every interim answer again.
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 2400,
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + b"b: " + b"y" * 1900 + b"\r\n\r\n{}"),
    # A chunked body's many trailer lines, then the last one a byte at a time: each arrival read them all again.
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n" + b"t:\r\n" * 15_000,
     b"u: " + b"z" * 1900 + b"\r\n\r\n"),
])
def test_an_answer_arriving_a_byte_at_a_time_is_read_on_from_where_it_stopped(head: bytes, tail: bytes) -> None:
    from whisk.containers.proxy_client import _parse, _Progress
    buffer, progress = bytearray(head), _Progress()
    started = time.perf_counter()
    assert _parse(buffer, False, 1 << 20, progress) is None
    parsed = None
    for i in range(len(tail)):
        buffer += tail[i:i + 1]
        parsed = _parse(buffer, False, 1 << 20, progress)
        assert parsed is None or i == len(tail) - 1
    elapsed = time.perf_counter() - started
    assert parsed is not None and parsed.status == 200 and parsed.used == len(buffer)
    assert elapsed < 2.0, f"{len(tail)} arrivals took the loop {elapsed:.1f} s"     # parsed again: 6-12 s here


async def test_bytes_written_to_an_idle_connection_are_not_held(tmp_path: object) -> None:
    """An action can write to the platform's connection while it is idle (or its container paused), as much as it
    likes: the connection is dropped at the first byte, and nothing of it is kept."""
    later: list[asyncio.Task] = []

    async def flood(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        for _ in range(64):
            writer.write(b"x" * 65536)
            await writer.drain()

    path = os.path.join(str(tmp_path), "proxy.sock")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n{}")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(framed(b"{}"))
            later.append(asyncio.ensure_future(flood(writer)))

    server = await asyncio.start_unix_server(serve, path)
    try:
        client = ProxyClient(path)
        assert await client.post("/run", b"{}", 5) == (200, b"{}")
        idle = client._idle[0]
        await asyncio.sleep(0.3)
        assert idle.closed and len(idle.buffer) == 0
        assert await client.post("/run", b"{}", 5) == (200, b"{}")    # on a new connection
        await client.close()
    finally:
        for task in later:
            task.cancel()
        server.close()


@pytest.mark.parametrize("answer", [
    # Trailers past 64 KB (each arrival read them again from their start).
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + (b"X-T: " + b"t" * 93 + b"\r\n") * 1000,
    # Chunk size lines whose extensions are far longer than any body the call takes.
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"1;" + b"e" * 60000 + b"\r\nx\r\n") * 20,
])
async def test_framing_beyond_what_an_answer_may_carry_ends_the_call(tmp_path: object, answer: bytes) -> None:
    async with proxy(tmp_path, lambda body: answer) as (path, _):
        client = ProxyClient(path)
        with pytest.raises(Broken):
            await asyncio.wait_for(client.post("/run", b"{}", 30, max_body=1000), 5)
        await client.close()
