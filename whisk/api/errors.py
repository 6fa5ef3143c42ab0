"""The only module that answers domain errors over HTTP (docs/openwhisk.md §1.1), with the status
`entities.errors.http_status` gives each: every error, ours or aiohttp's own (404, 405, 413), answers
`{"error": <message>, "code": <transaction id>}` with Pekko's default texts; what aiohttp's parser refuses before any
route, api/early_errors.py answers the same way."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.typedefs import Handler

from whisk import logs
from whisk.api import headers as header_values
from whisk.api.body import BrokenBody, ClientGone, reply
from whisk.api.keys import RECEIVED_MS, TID, WEB
from whisk.config import is_action_address
from whisk.controller.web import ACTIVATION_HEADER, WEB_PREFIX
from whisk.entities.activation import random_hex32
from whisk.entities.document import now_ms
from whisk.entities.errors import RequestTimeout, WhiskError, http_status

log = structlog.get_logger(__name__)
# A 5xx while a dependency is away is every request's: its warnings are bounded (logs.Bounded), the access
# lines and the dependency's own lines say the rest.
_FAILED = logs.Bounded()

# Pekko's texts for its own rejections and default messages (OpenWhisk rewrites them into the JSON error body).
TEXT = {
    400: "The request content was malformed.",
    401: "The resource requires authentication, which was not supplied with the request",
    403: "The supplied authentication is not authorized to access this resource.",
    404: "The requested resource could not be found.",
    413: "The request content was too large to be handled.",
    415: "The request's Content-Type is not supported. Expected:\napplication/json",
    500: "There was an internal server error.",
}
REALM = 'Basic realm="OpenWhisk secure realm"'
# The controller's `pekko.http.server.parsing.max-uri-length = 8k`: a longer request target is Pekko's parse error,
# 414 before any route (the server reads request lines up to REQUEST_LINE_LIMIT so it gets here; past that the
# parser refuses it, api/early_errors.py).
MAX_URI_LENGTH = 8192
REQUEST_LINE_LIMIT = 64 * 1024
URI_TOO_LONG = f"URI length exceeds the configured limit of {MAX_URI_LENGTH} characters"
# Pekko's parser speaks HTTP/1.0 and 1.1 only (505 otherwise); aiohttp's also reads HTTP/0.9 and HTTP/2.0 lines.
HTTP_VERSIONS = (HttpVersion10, HttpVersion11)
VERSION_NOT_SUPPORTED = "The server does not support the HTTP protocol version used in the request."
REQUEST_ID = "X-Request-ID"
CLIENT_CLOSED = 499                       # nginx's status for a request whose client left before the answer


def new_tid() -> str:
    """32 random hex digits, from the activation ids' buffered urandom (OpenWhisk's alphabet is [A-Za-z0-9])."""
    return random_hex32()


def error_response(request: web.Request, status: int, message: str, headers: dict[str, str] | None = None,
                   *, pretty: bool = True) -> web.Response:
    """The JSON error body; pretty-printed on the web action route (its printer), unless `pretty` is False."""
    return reply({"error": message, "code": request.get(TID, "")}, status=status, headers=headers,
                 pretty=pretty and WEB in request)


def not_for_actions(handler: Handler) -> Handler:
    """A route that answers 403 to a call an action made through the invoker's relay (from ACTIONS_NETWORK):
    those that show every tenant's activity, or hand out a key, are for operators and browsers, not tenants' code."""
    async def refusing(request: web.Request) -> web.StreamResponse:
        if is_action_address(request.remote):
            return error_response(request, 403, TEXT[403])
        return await handler(request)
    return refusing


@web.middleware
async def transaction_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """X-Request-ID is the transaction id unless it starts with "sid_" (system ids); always echoed back (as text:
    it goes into every answer, log line and activation message of the request)."""
    given = request.headers.get(REQUEST_ID)
    tid = header_values.text(given) if given and not given.startswith("sid_") else new_tid()
    request[TID] = tid
    request[RECEIVED_MS] = now_ms()
    started = time.perf_counter()
    # Every log line of the request, and of the tasks it starts, carries its transaction id.
    with logs.log_context(tid=tid):
        status = 500
        activation_id: str | None = None
        response: web.StreamResponse
        try:
            if len(request.raw_path) > MAX_URI_LENGTH or request.version not in HTTP_VERSIONS:
                response = _refused_head(request)
            else:
                response = await handler(request)
            status = response.status
            # The activation the answer names: without it no line at info ties this request to the activation's
            # record, nor to the invoker's lines of it, which carry both ids.
            activation_id = response.headers.get(ACTIVATION_HEADER)
            response.headers[REQUEST_ID] = tid
            return response
        finally:
            # Written on the loop's next turn, once aiohttp has sent the response: the line's rendering and its
            # write to stderr stay off the caller's latency (call_soon keeps this context, hence the tid).
            asyncio.get_running_loop().call_soon(
                logs.access, request.method, request.path, status, round((time.perf_counter() - started) * 1000, 3),
                activation_id)


def _refused_head(request: web.Request) -> web.Response:
    """What Pekko's parser refuses and aiohttp's reads, refused before any route as the parser's own refusals are
    (api/early_errors.py): a request target over 8k (414; the request was read whole, so the connection goes on)
    and an HTTP version other than 1.0 and 1.1 (505, and the connection ends: an HTTP/0.9 or HTTP/2.0 client does
    not read HTTP/1.1's framing)."""
    if len(request.raw_path) > MAX_URI_LENGTH:
        return error_response(request, 414, URI_TOO_LONG)
    response = error_response(request, 505, VERSION_NOT_SUPPORTED, {"Connection": "close"})
    response.force_close()
    return response


@web.middleware
async def openwhisk_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except WhiskError as exc:
        status = http_status(exc)
        if status >= 500 and (bound := _FAILED.fields()) is not None:
            log.warning("api.error", status=status, error=str(exc), path=request.path, tid=request.get(TID), **bound)
        headers = {"WWW-Authenticate": REALM} if status == 401 else None
        response = error_response(request, status, str(exc) or TEXT.get(status, ""), headers)
        if isinstance(exc, (RequestTimeout, BrokenBody)) or not request.content.is_eof():
            # The rest of the body may still come (refused before it was read, a 413 by its Content-Length): the
            # connection ends, and the client is told so, rather than aiohttp reading and dropping it for 10 s.
            response.force_close()
        return response
    except ClientGone:
        # A dropped client is no server error: one line, and nginx's 499 in the access log (the answer is not sent).
        log.info("api.client.gone", path=request.path, method=request.method, tid=request.get(TID))
        return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
    except web.HTTPException as exc:
        if exc.status < 400:
            return _as_returned(exc)
        return _from_aiohttp(request, exc)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("api.failed", path=request.path, method=request.method, tid=request.get(TID))
        return error_response(request, 500, TEXT[500])


def _as_returned(exc: web.HTTPException) -> web.Response:
    """A redirect a route raised, returned instead: raised on, it would pass by the middlewares around this one and go
    out without its transaction id and CORS headers, logged as a 500."""
    return web.Response(status=exc.status, reason=exc.reason, headers=exc.headers, body=exc.body)


def _from_aiohttp(request: web.Request, exc: web.HTTPException) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        # HEAD is listed where it is a verb of the route's own (web actions' allowedOperations), as Pekko lists every
        # method directive that refused; elsewhere it is aiohttp's companion of a GET (Pekko's transparent HEAD).
        allowed = sorted(m for m in exc.allowed_methods if m != "HEAD" or request.path.startswith(WEB_PREFIX))
        message = f"HTTP method not allowed, supported methods: {', '.join(allowed)}"
        headers["Allow"] = ", ".join(allowed)
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        actual, allowed_size = _sizes(exc)
        message = f"Request larger than allowed: {actual} > {allowed_size} bytes." if actual else TEXT[413]
    else:
        message = TEXT.get(exc.status, exc.reason)
    return error_response(request, exc.status, message, headers or None)


def _sizes(exc: web.HTTPRequestEntityTooLarge) -> tuple[int | None, int | None]:
    # aiohttp's text: "Maximum request body size {max} exceeded, actual body size {actual}"
    words = (exc.text or "").replace(",", " ").split()
    numbers = [int(w) for w in words if w.isdigit()]
    return (numbers[1], numbers[0]) if len(numbers) >= 2 else (None, None)
