"""The platform's side of the action proxy protocol (docs/openwhisk.md §4): `POST /init` and `POST /run` with a JSON
body over a unix socket, HTTP/1.1 with keep-alive.

A general HTTP client (aiohttp's) spends much of a warm invoke's CPU on request and response objects, tracing
hooks, a cookie jar and header multidicts that this conversation does not need. This client writes one request and
reads one response, and nothing else: a status line, headers for the body's framing (Content-Length, chunked, or to
the end of a closed connection) and `Connection`, the body. Idle connections are kept for the next call (one per
call in flight, so an action with concurrency > 1 has several).

Errors: `Unreachable` when no connection could be made (the proxy is not listening, or not yet); `TimeoutError`
past the caller's deadline; `Broken` when the connection failed or closed before a whole response. A connection
that failed in any way is closed, never reused.
"""

from __future__ import annotations

import asyncio

# Header block the proxy's answer may have (status line and headers; the body is not bounded here).
_MAX_HEAD = 64 * 1024


class Unreachable(ConnectionError):
    """No connection to the proxy's socket."""


class Broken(ConnectionError):
    """The connection failed, or ended before a whole response."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class ProxyClient:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._idle: list[_Connection] = []
        self._closed = False

    async def post(self, path: str, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; the response's status and body."""
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
            connection.writer.transport.abort()

        timer = loop.call_at(deadline, expire)
        try:
            connection.writer.write(b"POST %s HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                                    b"Accept: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                    % (path.encode(), len(body), body))
            status, data, keep = await _response(connection.reader)
        except BaseException as exc:
            connection.close()
            if expired and isinstance(exc, Exception):
                raise TimeoutError(f"no answer within {timeout_s:g} s") from exc
            raise
        finally:
            timer.cancel()
        if keep and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()
        return status, data

    def _reusable(self) -> _Connection | None:
        """An idle connection the proxy has not closed meanwhile (ours never do; a proxy may)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=_MAX_HEAD)
        except OSError as exc:
            raise Unreachable(f"{self.socket_path}: {exc}") from exc
        return _Connection(reader, writer)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one response: (status, body, whether the connection may carry another request)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            if not 100 <= status < 200:        # an interim answer (100 Continue): the real one follows
                break
        length: int | None = None
        chunked = False
        connection = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                connection = value.strip().lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if chunked:
            body = await _chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length) if length else b""
        else:                                  # framed by the end of the connection
            body = await reader.read(-1)
            keep = False
        return status, body, keep
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError) as exc:
        raise Broken(f"no complete response: {exc!r}") from exc


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":     # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
