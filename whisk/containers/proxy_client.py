"""The platform's side of the action proxy protocol (docs/openwhisk.md §4): `POST /init` and `POST /run` with a JSON
body over a unix socket, HTTP/1.1 with keep-alive.

A general HTTP client (aiohttp's) spends much of a warm invoke's CPU on request and response objects, tracing
hooks, a cookie jar and header multidicts that this conversation does not need. This client writes one request and
reads one response, and nothing else: a status line, headers for the body's framing (Content-Length, chunked, or to
the end of a closed connection) and `Connection`, the body. Idle connections are kept for the next call (one per
call in flight, so an action with concurrency > 1 has several).

Errors: `Unreachable` when no connection could be made (the proxy is not listening, or not yet); `TimeoutError`
past the caller's deadline; `Broken` when the connection failed or closed before a whole response; `Oversized` when
the body is longer than the caller's `max_body`, with its start and length: no more than that is held in memory, so
an action cannot make the platform buffer what it likes (its code shares the proxy's process and can write to the
connection itself). For the same reason a byte that arrives while no call waits ends the connection at once, an
answer whose framing (chunk lines, trailers) runs far past what it may carry ends its call, and each arrival is read
on from where the last one stopped (`_Progress`), never from the answer's start. A connection that
failed in any way, or whose answer was too long, is closed, never reused.
"""

from __future__ import annotations

import asyncio
import re
from typing import NamedTuple

# Header block the proxy's answer may have (status line and headers), and a chunked body's trailers.
_MAX_HEAD = 64 * 1024
# All of one answer that is held, past its head: its body's framing may take this many times the body it may carry
# (chunk size lines; one-byte chunks would take more, which no proxy writes), and with no `max_body` the answer may
# carry UNBOUNDED_BODY. The action's code shares the proxy's process and can write anything to the connection.
_FRAMING = 4
UNBOUNDED_BODY = 64 * 1024 * 1024
# Strict framing numbers: int() would also take signs, underscores and "0x", and a negative size moves backwards.
_LENGTH = re.compile(rb"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class Unreachable(ConnectionError):
    """No connection to the proxy's socket."""


class Broken(ConnectionError):
    """The connection failed, or ended before a whole response."""


class Oversized(Exception):
    """The answer's body is longer than the caller takes: its status, its first `max_body` bytes and its length (as
    declared, or at least what had come)."""

    def __init__(self, status: int, head: bytes, size: int) -> None:
        super().__init__(f"an answer of {size} bytes")
        self.status = status
        self.head = head
        self.size = size


class _Connection(asyncio.Protocol):
    """One connection as a protocol: bytes are parsed as they arrive and the response is handed to the waiting call
    in the same callback (no StreamReader, no reader task)."""

    __slots__ = ("transport", "buffer", "waiter", "max_body", "closed", "eof", "progress")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[_Answer] | None = None
        self.max_body: int | None = None
        self.closed = False
        self.eof = False
        self.progress = _Progress()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            # Nothing was asked: a proxy never writes unasked, but an action can write to this connection while it
            # is idle (or paused), as much as it likes. It can carry no call now.
            self.closed = True
            self.abort()
            return
        self.buffer += data
        self._settle(False)

    def eof_received(self) -> bool:
        self.eof = True
        if self.waiter is not None:
            self._settle(True)
        return False                           # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(Broken(f"no complete response: the connection ended ({exc!r})"))

    def _fail(self, exc: Exception) -> None:
        """End the waiting call, if any, with `exc`."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _settle(self, at_end: bool) -> None:
        """Hand the response over once it is whole (or fail the call when it cannot be)."""
        try:
            parsed = _parse(self.buffer, at_end, self.max_body, self.progress)
        except Broken as exc:
            self._fail(exc)
            self.close()
            return
        if parsed is None:
            if at_end:
                self._fail(Broken("no complete response: the proxy closed the connection"))
            elif len(self.buffer) > _MAX_HEAD + _FRAMING * (self.max_body or UNBOUNDED_BODY):
                self._fail(Broken("no complete response: its framing is far longer than any answer it may carry"))
                self.abort()
            return
        del self.buffer[:parsed.used]
        self.progress.clear()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(parsed._replace(keep=parsed.keep and not at_end and not self.buffer))

    def request(self, data: bytes, max_body: int | None) -> asyncio.Future[_Answer]:
        assert self.transport is not None
        waiter: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.max_body = max_body
        self.transport.write(data)
        return waiter

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ProxyClient:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(self, path: str, body: bytes, timeout_s: float, max_body: int | None = None) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; the response's status and body (Oversized past `max_body` bytes)."""
        if self._closed:
            raise Broken("the client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        connection = self._reusable()
        if connection is None:                 # a container's first call, or one more at once: rare
            async with asyncio.timeout_at(deadline):
                connection = await self._connect()
        # The deadline of the exchange is a timer that cuts the connection (never reused after a timeout anyway):
        # a quarter of what asyncio.timeout costs, on every call.
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            connection.abort()

        timer = loop.call_at(deadline, expire)
        try:
            answer = await connection.request(
                b"POST %s HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body), max_body)
        except BaseException as exc:
            connection.close()
            if expired and isinstance(exc, Exception):
                raise TimeoutError(f"no answer within {timeout_s:g} s") from exc
            raise
        finally:
            timer.cancel()
        if answer.keep and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()
        if answer.size is not None:
            raise Oversized(answer.status, answer.body, answer.size)
        return answer.status, answer.body

    def _reusable(self) -> _Connection | None:
        """An idle connection the proxy has not closed (ours never do; a proxy may) nor written to meanwhile."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and not connection.eof and not connection.buffer:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            _, connection = await asyncio.get_running_loop().create_unix_connection(_Connection, self.socket_path)
        except OSError as exc:
            raise Unreachable(f"{self.socket_path}: {exc}") from exc
        return connection

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Head(NamedTuple):
    status: int
    length: int | None       # Content-Length, if any
    chunked: bool
    keep: bool
    offset: int              # in the buffer: where the body starts


class _Progress:
    """How far an answer has been read, so that each arrival goes on from there: its head once parsed (past interim
    answers), a chunked body's chunks, its trailers. Parsed again from the start, an answer arriving a byte at a time
    (which an action can write itself) would cost the loop time quadratic in its size: a head of 16,000 short
    header lines took 17 ms an arrival, the whole event loop for a trickle of one byte every 17 ms."""

    __slots__ = ("head_at", "head", "offset", "parts", "total", "trailers")

    def __init__(self) -> None:
        self.head_at = 0                       # in the buffer: where the next head starts (past interim answers)
        self.head: _Head | None = None
        self.offset = 0                        # where the next chunk's size line (or trailer) starts (0: none read)
        self.parts: list[bytes] = []
        self.total = 0
        self.trailers = 0                      # where the trailers start, once the last chunk is read (0: not yet)

    def clear(self) -> None:
        self.head_at, self.head = 0, None
        if self.offset:
            self.offset, self.parts, self.total, self.trailers = 0, [], 0, 0


class _Answer(NamedTuple):
    status: int
    body: bytes              # the whole body, or its first max_body bytes when `size` is set
    keep: bool               # the connection may carry another request
    used: int                # bytes of the buffer this answer took
    size: int | None = None  # the body's length (declared, or at least what came) when over max_body


def _parse(buffer: bytearray, at_end: bool, max_body: int | None = None,
           progress: _Progress | None = None) -> _Answer | None:
    """One response from the start of `buffer`, or None while incomplete. `at_end`: the proxy has closed its side
    (a body framed by the end is whole). Past `max_body`, the answer is its start (`size` set) as soon as that has
    come. Broken when the bytes cannot be a response. `progress` carries what earlier calls read of it."""
    if progress is None:
        progress = _Progress()
    head = progress.head
    if head is None:
        head = progress.head = _head(buffer, progress)
        if head is None:
            return None
    status, length, chunked, keep, offset = head
    cap = max_body if max_body is not None else -1
    if chunked:
        return _chunked(buffer, offset, status, keep, cap, progress)
    if length is not None:
        if 0 <= cap < length:                  # declared too long: its start is all that is read
            if len(buffer) - offset < cap:
                return None
            return _Answer(status, bytes(buffer[offset:offset + cap]), False, len(buffer), length)
        if len(buffer) - offset < length:
            return None
        return _Answer(status, bytes(buffer[offset:offset + length]), keep, offset + length)
    if 0 <= cap < len(buffer) - offset:        # framed by the end of the connection, and already too long
        return _Answer(status, bytes(buffer[offset:offset + cap]), False, len(buffer), len(buffer) - offset)
    if not at_end:
        return None
    return _Answer(status, bytes(buffer[offset:]), False, len(buffer))


def _head(buffer: bytearray, progress: _Progress) -> _Head | None:
    """The head of the answer (past interim answers, each read once), or None while it is incomplete."""
    offset = progress.head_at
    while True:
        end = buffer.find(b"\r\n\r\n", offset)
        if end < 0:
            if len(buffer) - offset > _MAX_HEAD:
                raise Broken("no complete response: a header block over 64 KB")
            return None
        lines = buffer[offset:end].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise Broken(f"no complete response: a bad status line {lines[0][:100]!r}") from None
        offset = end + 4
        if not 100 <= status < 200:            # an interim answer (100 Continue): the real one follows
            break
        if offset > _MAX_HEAD:
            raise Broken("no complete response: interim answers over 64 KB")
        progress.head_at = offset
    length: int | None = None
    chunked = False
    connection = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            text = value.strip()
            if _LENGTH.fullmatch(text.encode("latin-1")) is None:
                raise Broken(f"no complete response: a bad Content-Length {text[:40]!r}")
            length = int(text)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            connection = value.strip().lower()
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return _Head(status, length, chunked, keep, offset)


def _chunked(buffer: bytearray, offset: int, status: int, keep: bool, cap: int, chunks: _Progress
             ) -> _Answer | None:
    """The chunked body from `offset`, resumed where `chunks` left it; every step moves forward."""
    if chunks.trailers:
        return _trailers(buffer, status, keep, chunks)
    if chunks.offset:
        offset = chunks.offset
    parts = chunks.parts
    total = chunks.total
    while True:
        end = buffer.find(b"\r\n", offset)
        if end < 0:
            if len(buffer) - offset > _MAX_HEAD:
                raise Broken("no complete response: a chunk size line over 64 KB")
            return None
        token = bytes(buffer[offset:end]).split(b";", 1)[0].strip()
        if _CHUNK_SIZE.fullmatch(token) is None:
            raise Broken("no complete response: a bad chunk size")
        size = int(token, 16)
        offset = end + 2
        if 0 <= cap < total + size:            # this chunk goes past the cap: its start up to the cap is enough
            need = cap - total
            if len(buffer) < offset + need:
                return None
            return _Answer(status, b"".join([*parts, bytes(buffer[offset:offset + need])]), False, len(buffer),
                           total + size)
        if size == 0:                          # the last chunk: trailers, then the blank line
            chunks.parts, chunks.total = parts, total
            chunks.offset = chunks.trailers = offset
            return _trailers(buffer, status, keep, chunks)
        if len(buffer) < offset + size + 2:
            return None
        if buffer[offset + size:offset + size + 2] != b"\r\n":
            raise Broken("no complete response: a chunk not ended by CRLF")
        parts.append(bytes(buffer[offset:offset + size]))
        total += size
        offset += size + 2
        chunks.offset, chunks.total = offset, total         # this chunk is read: the next arrival starts after it


def _trailers(buffer: bytearray, status: int, keep: bool, chunks: _Progress) -> _Answer | None:
    """A chunked body's trailers, each line read once, up to the blank line that ends the answer."""
    offset = chunks.offset
    while True:
        end = buffer.find(b"\r\n", offset)
        if end < 0:
            if len(buffer) - chunks.trailers > _MAX_HEAD:        # bounded as a head is
                raise Broken("no complete response: trailers over 64 KB")
            return None
        if end == offset:
            return _Answer(status, b"".join(chunks.parts), keep, end + 2)
        offset = chunks.offset = end + 2
