"""The web action route (docs/openwhisk.md §1.12): `/api/v1/web/{namespace}/{package|default}/{action}[.ext][/path]` for
every method, credentials optional. The request becomes a `WebRequest`, `whisk.controller.web.WebActions` answers it,
and its `Answer` becomes the HTTP response (the action's status, headers and body, exactly). The API gateway's routes
(`whisk.api.apigw`) are served through `respond` too.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from whisk.api import headers as header_values
from whisk.api.body import read_body
from whisk.api.errors import error_response
from whisk.api.keys import IDENTITY, RECEIVED_MS, SERVICES, SETTINGS, TID, WEB
from whisk.controller.urlpath import rendered
from whisk.controller.web import WEB_PREFIX, WebFailure, WebRequest
from whisk.controller.webmedia import Answer
from whisk.entities.errors import BackendUnavailable, http_status


def to_response(request: web.Request, answer: Answer) -> web.Response:
    headers = CIMultiDict(answer.headers)
    if answer.error is not None:
        return error_response(request, answer.status, answer.error, headers)  # type: ignore[arg-type]
    if answer.content_type is not None:
        headers["Content-Type"] = answer.content_type
    return web.Response(status=answer.status, body=answer.body, headers=headers)


async def respond(request: web.Request, web_request: WebRequest) -> web.Response:
    """Serve a web request (also the gateway's forwarded ones); refusals before the answer's headers are known
    go to the error middleware, later ones are sent here with those headers."""
    request[WEB] = True
    services = request.app.get(SERVICES)
    if services is None:
        raise BackendUnavailable("Web actions are not available on this server.")
    try:
        answer = await services.web_actions.serve(web_request, request[TID], request.get(RECEIVED_MS))
    except WebFailure as failure:
        # A Pekko rejection (`bare`) is answered by OpenWhisk's rejection handler, outside the web route: compact.
        return error_response(request, http_status(failure.error), str(failure.error) or "",
                              CIMultiDict(failure.headers), pretty=not failure.bare)  # type: ignore[arg-type]
    return to_response(request, answer)




def raw_rest(request: web.Request, prefix: str, decoded: str) -> str:
    """The part of the request's path after `prefix` as the client encoded it: aiohttp's match_info is decoded, and
    a web action sees its path still encoded (`__ow_path`), an encoded "/" or "?" inside its segment. A path that
    reached the route only once decoded (an encoded letter of the prefix) is encoded again from `decoded`."""
    raw = request.rel_url.raw_path
    if raw.startswith(prefix):
        return raw[len(prefix):]
    return rendered(decoded)


async def web_action(request: web.Request) -> web.StreamResponse:
    request[WEB] = True
    tail = raw_rest(request, WEB_PREFIX, request.match_info["tail"])
    body = await read_body(request, request.app[SETTINGS].max_payload_size)
    return await respond(request, WebRequest(
        method=request.method.upper(), tail=tail, headers=tuple(header_values.items(request.headers.items())),
        query=tuple(request.query.items()), query_string=request.rel_url.raw_query_string, body=body,
        user=request.get(IDENTITY)))
