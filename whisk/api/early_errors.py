"""Errors found before any route runs: a request aiohttp's parser refuses (a head over its limits, a malformed
request line or header, a bad Content-Length or chunked encoding, an HTTP version it does not speak) is answered as
every other error is, `{"error": <message>, "code": <transaction id>}` (docs/openwhisk.md §1.1 and §1.15), with the
status that fits and `Connection: close`: the parser has lost its place in the stream, so the connection ends.

aiohttp has no hook for these answers (aio-libs/aiohttp#3287): its connection handler writes them in plain text in
`RequestHandler.handle_error`. `Site` listens as aiohttp's TCPSite does, but makes each connection's handler a
`JsonErrors`, which overrides only that method; the application, its runner and every request that parses are
untouched, so the hot path is aiohttp's own."""

from __future__ import annotations

import asyncio
import re
import ssl
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, HttpProcessingError, InvalidURLError, LineTooLong

from whisk import logs
from whisk.api.body import BrokenBody, reply
from whisk.api.errors import REQUEST_ID, TEXT, URI_TOO_LONG, VERSION_NOT_SUPPORTED, new_tid
from whisk.config import listen_hosts, url_host

log = structlog.get_logger("whisk.http")
# Any client can send malformed requests as fast as it likes: their warnings are bounded (logs.Bounded).
_REJECTED = logs.Bounded()

# The method token llhttp quotes in its message (`b'FOO /x HTTP/1.1'`): a method Pekko reads and does not know is
# 501; its `max-method-length` is 16.
_METHOD = re.compile(r"b'([!#$%&*+\-.^_`|~0-9A-Za-z]{1,16}) ")


def describe(exc: HttpProcessingError, *, max_line_size: int, max_field_size: int,
             max_headers: int) -> tuple[int, str]:
    """The status and message for a request the parser refused, as Pekko's parser would answer it (its
    HttpRequestParser): a request target over the line limit 414, a header over its limit or too many 431 (RFC
    6585), an HTTP version other than 1.0 and 1.1 505, a method it does not know 501, anything else 400."""
    if isinstance(exc, LineTooLong):
        # The request line and a header field have limits of their own; the servers keep them apart (roles.py).
        if exc.args[1:2] == (max_line_size,) and max_line_size != max_field_size:
            return 414, URI_TOO_LONG
        return 431, f"HTTP header exceeds the configured limit of {max_field_size} characters"
    summary = _summary(exc.message)
    if summary == "Too many headers received":
        return 431, f"HTTP message contains more than the configured limit of {max_headers} headers"
    if isinstance(exc, BadHttpMethod):
        if "HTTPS" in exc.message:
            return 400, "Unsupported HTTP method: the request began as TLS does (HTTPS sent to an HTTP port?)"
        method = _METHOD.search(exc.message)
        if method:
            return 501, f"Unsupported HTTP method: {method.group(1)}"
    elif isinstance(exc, BadStatusLine) and "Invalid HTTP version" in exc.message:
        return 505, VERSION_NOT_SUPPORTED
    elif isinstance(exc, InvalidURLError):
        return 400, f"Illegal request-target: {summary}"
    return 400, f"Illegal request: {summary}" if summary else "Illegal request"


def _summary(message: str) -> str:
    """aiohttp's message without the bytes it quotes and the caret under them, on one line:
    "Bad status line:\\n  Invalid HTTP version:\\n\\n  b'GET / HTTP/1.2'\\n  ^" is "Bad status line: Invalid HTTP
    version"."""
    kept = [line.strip().rstrip(":").strip() for line in message.splitlines()]
    return ": ".join(line for line in kept if line and not line.startswith(("b'", 'b"', "^", "bytearray(")))


def refusal(status: int, message: str) -> web.Response:
    """The answer to a request refused before any route: its own transaction id (the request's headers are not
    to be trusted, or not read), echoed as every answer's is, and the connection closed after it."""
    tid = new_tid()
    response = reply({"error": message, "code": tid}, status=status, headers={REQUEST_ID: tid, "Connection": "close"})
    response.force_close()
    return response


BROKEN_BODY = "Illegal request: the body could not be read to its end"
_received = web.RequestHandler.data_received


class JsonErrors(web.RequestHandler):
    """aiohttp's connection handler, answering what its parser refused as whisk's errors. It also answers what a
    handler raised past the middlewares (none lets anything through; aiohttp logs it with its traceback)."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        # aiohttp's C parser, refusing the rest of a body whose head it has handed on (a chunk size that is no
        # number), queues its refusal behind the request reading that body, and neither ends nor fails the body: the
        # route waited for the rest until WHISK_HTTP_BODY_TIMEOUT_S, then answered 408. A message queued while that
        # body is still open can only be the refusal (the next request's head comes after the body's end), so the
        # body fails at once: the route answers 400 and closes the connection (api/body.py). aiohttp's own
        # attributes, as no hook shows either; data that comes between requests (a whole small request) skips this.
        request = self._current_request
        if request is None:
            return _received(self, data)          # not super(): this runs for every read of every connection
        queued = len(self._messages)
        _received(self, data)
        if len(self._messages) > queued and not request.content.is_eof() and request.content.exception() is None:
            request.content.set_exception(BrokenBody(BROKEN_BODY))

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            super().handle_error(request, status, exc, message)   # logs; raises if an answer was begun already
            return refusal(status, TEXT.get(status) or HTTPStatus(status).phrase)
        status, text = describe(exc, max_line_size=self.max_line_size, max_field_size=self.max_field_size,
                                max_headers=self.max_headers)
        response = refusal(status, text)
        # The client's mistake, which any caller can repeat: one line, never a traceback. Anything that is no HTTP
        # (TLS, a scanner's probe) only at debug, as aiohttp logs it.
        fields = {"status": status, "reason": text[:200], "remote": request.remote, "tid": response.headers[REQUEST_ID]}
        if isinstance(exc, BadHttpMethod) and status == 400:
            log.debug("http.rejected", **fields)
        elif (bound := _REJECTED.fields()) is not None:
            log.warning("http.rejected", **fields, **bound)
        return response


class Site(web.BaseSite):
    """A TCP site as aiohttp's TCPSite, whose connections are `JsonErrors` handlers (or `handler`, a subclass) made
    with `options` (aiohttp's RequestHandler arguments: limits, timeouts, access log) and tracked by the runner's
    server, as its own are."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 128, handler: type[JsonErrors] = JsonErrors, **options: Any) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._handler = handler
        self._where = (host, port)         # WHISK_HOST: the addresses are config.listen_hosts(host)
        self._tls = ssl_context
        self._queue = backlog
        self._options = options
        self._owner = runner

    @property
    def name(self) -> str:
        host, port = self._where
        return f"{'https' if self._tls else 'http'}://{url_host(host)}:{port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._owner.server
        assert server is not None                 # the runner was set up: BaseSite refuses to be made before
        options, handler = self._options, self._handler

        def connection() -> JsonErrors:
            return handler(server, loop=loop, **options)
        host, port = self._where
        # BaseSite.stop closes what `_server` holds.
        hosts = listen_hosts(host)                # a single host as given: asyncio reads "" as every address
        self._server = await loop.create_server(connection, hosts if len(hosts) > 1 else host, port, ssl=self._tls,
                                                backlog=self._queue, reuse_address=True)

