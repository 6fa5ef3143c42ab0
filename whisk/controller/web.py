"""Web actions (docs/openwhisk.md §1.12; OpenWhisk `CTL/WebActions.scala`): an action annotated `web-export: true`
answers `/api/v1/web/{namespace}/{package|default}/{action}[.ext][/path]` for any method, with or without credentials.

The steps: find the namespace's owner and the exported action (anything missing is 404); check the owner's right to
activate it where it lives (403 for a binding to a package made private since: OpenWhisk checks it after the
export); charge the owner's throttles (the owner pays); check the body against the owner's payload limit; answer
CORS and OPTIONS unless the action handles them (`web-custom-options`); enforce `require-whisk-auth`; build the
arguments from the request (`__ow_*`, query, body; or `__ow_query`/`__ow_body` for `raw-http`); invoke blocking;
project the result and transcode it for the extension (`webmedia`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from whisk.controller.caller import caller_for
from whisk.controller.entities import Entities, ResolvedAction
from whisk.controller.launcher import Launcher
from whisk.controller.subjects import Subjects
from whisk.controller.throttle import InvocationThrottle
from whisk.controller.urlpath import path_segment, rendered_query
from whisk.controller.webmedia import (DEFAULT_EXTENSION, ENTITY_HEADERS, EXTENSIONS, NO_BODY, UNACCEPTED, Answer,
                                       accepts, decode_body, project, transcode)
from whisk.entities.action import RAW_HTTP, REQUIRE_WHISK_AUTH, RESERVED, WEB_CUSTOM_OPTIONS, WEB_EXPORT
from whisk.entities.errors import (Conflict, Invalid, NotAcceptable, NotFound, TooLarge, Unauthenticated,
                                   Unprocessable, WhiskError)
from whisk.entities.identity import Identity, check_key, check_uuid
from whisk.entities.names import is_name
from whisk.entities.parameters import Parameters

ACTIVATION_HEADER = "x-openwhisk-activation-id"
WEB_PREFIX = "/api/v1/web/"
RESERVED_ARGS = frozenset({"__ow_method", "__ow_headers", "__ow_path", "__ow_user", "__ow_query", "__ow_body"})
CORS_METHODS = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
CORS_ALLOW_HEADERS = "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
NOT_READY = "Response not yet ready."
# `terminate(Unauthorized)` in WebActions.scala: the status's default message (Pekko), not the auth rejection text.
UNAUTHORIZED = "Authentication is possible but has failed or not yet been provided."
REQUIRE_AUTH_HEADER = "x-require-whisk-auth"
DEFAULT_PACKAGE = "default"
NO_ROUTE = "The requested resource could not be found."       # Pekko's text for a path no route matches


class WebFailure(Exception):
    """A refusal after the answer's headers (CORS, activation id) are known: the edge sends `error` with them."""

    def __init__(self, error: WhiskError, headers: list[tuple[str, str]], *, bare: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.headers = headers
        self.bare = bare            # a Pekko rejection: answered with none of the route's headers, not even CORS


@dataclass(frozen=True, slots=True)
class WebRequest:
    method: str                                  # upper case
    tail: str                                    # "ns/pkg/action[.ext][/more/path]", after /api/v1/web/
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]           # decoded pairs
    query_string: str                            # as sent
    body: bytes
    user: Identity | None                        # the caller, when valid credentials came along

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass(frozen=True, slots=True)
class Target:
    namespace: str
    package: str | None
    name: str
    extension: str
    path: str                                    # `__ow_path`: what follows the action segment, "" if nothing


def no_route() -> WebFailure:
    """A path the web route does not match (OpenWhisk's `namespace/package/action` segments, each a name): Pekko's
    rejection, answered as the REST API answers one (its text, compact, none of the route's headers)."""
    return WebFailure(NotFound(NO_ROUTE), [], bare=True)


def parse_target(tail: str) -> Target:
    """`tail`: the request's path after /api/v1/web/, percent-encoded as sent. Each segment is decoded on its own,
    so an encoded "/" stays inside its segment (a name it cannot be), and `__ow_path` keeps its escapes."""
    parts = tail.split("/")
    if len(parts) < 3:
        raise no_route()
    namespace, package, segment = (unquote(part) for part in parts[:3])
    name, extension = segment, DEFAULT_EXTENSION
    for ext in EXTENSIONS:
        if segment.endswith(ext):
            name, extension = segment[:-len(ext)], ext
            break
    if not (is_name(namespace) and is_name(package) and is_name(name)):
        raise no_route()
    rest = parts[3:]
    return Target(namespace, None if package == DEFAULT_PACKAGE else package, name, extension,
                  "/" + "/".join(path_segment(part) for part in rest) if rest else "")


def cors_headers(request: WebRequest) -> list[tuple[str, str]]:
    return cors_allowing(request.header("access-control-request-headers"))


def cors_allowing(asked: str | None) -> list[tuple[str, str]]:
    """A web action's default CORS headers, allowing the headers a preflight asks for (`asked`) or OpenWhisk's list."""
    return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", CORS_METHODS),
            ("Access-Control-Allow-Headers", asked if asked is not None else CORS_ALLOW_HEADERS)]


def authorized(annotations: Parameters, request: WebRequest) -> bool:
    """`require-whisk-auth`: a string or number must equal the X-Require-Whisk-Auth header; `true` needs valid
    OpenWhisk credentials; absent or false leaves the action open; any other value (null too) refuses."""
    if REQUIRE_WHISK_AUTH not in annotations:
        return True
    required = annotations[REQUIRE_WHISK_AUTH]
    if required is False:
        return True
    if required is True:
        return request.user is not None
    if isinstance(required, str | int | float):
        given = request.header(REQUIRE_AUTH_HEADER)
        # In constant time, as keys are compared: `==` ends at the first wrong character, which a caller can time.
        return given is not None and hmac.compare_digest(_bytes(given), _bytes(str(required)))
    return False                                 # null, an object, an array: "something is not right" upstream


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")      # compare_digest takes ASCII text only


def whisk_credentials(value: str) -> bool:
    """Whether an Authorization header value is Basic `uuid:key` in the shape of a whisk API key."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        uuid, sep, key = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        check_uuid(uuid)
        check_key(key)
    except (binascii.Error, UnicodeDecodeError, ValueError, Invalid):
        return False
    return bool(sep)


def header_map(request: WebRequest) -> dict[str, str]:
    """`__ow_headers` as Pekko hands them over: lower-case names, without the entity's framing headers (which
    Pekko keeps in the entity), plus the entity's content type (application/octet-stream for an untyped body).
    Stricter than OpenWhisk, which passes them on: an `Authorization` header that holds whisk credentials (the
    caller's API key, which the controller already read into `__ow_user`) never reaches the action, whose owner may
    be any other namespace."""
    shown = {k.lower(): v for k, v in request.headers
             if k.lower() not in ENTITY_HEADERS
             and not (k.lower() == "authorization" and (request.user is not None or whisk_credentials(v)))}
    if request.body and "content-type" not in shown:
        shown["content-type"] = "application/octet-stream"
    return shown


def arguments(request: WebRequest, path: str, body: Any, raw: bool) -> dict[str, Any]:
    """The action's arguments (later keys win): request context, then query, then a JSON object body's fields."""
    args: dict[str, Any] = {"__ow_method": request.method.lower(), "__ow_headers": header_map(request),
                            "__ow_path": path}
    if request.user is not None:
        args["__ow_user"] = request.user.namespace
    if raw:
        args["__ow_query"] = rendered_query(request.query_string)
    else:
        args.update(dict(request.query))
    if body is NO_BODY:
        if raw:
            args["__ow_body"] = ""
    elif isinstance(body, dict) and not raw:
        args.update(body)
    else:
        args["__ow_body"] = body
    return args


def check_overrides(request: WebRequest, body: Any, frozen: frozenset[str] | set[str]) -> None:
    keys = {k for k, _ in request.query} | (set(body) if isinstance(body, dict) else set())
    if keys & frozen:
        raise Invalid(RESERVED)


def merge_headers(defaults: list[tuple[str, str]], given: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`given` wins over a default of the same name."""
    names = {k.lower() for k, _ in given}
    return [(k, v) for k, v in defaults if k.lower() not in names] + given


class WebActions:
    def __init__(self, launcher: Launcher, entities: Entities, subjects: Subjects, throttle: InvocationThrottle,
                 max_wait_ms: int) -> None:
        self._launcher = launcher
        self._throttle = throttle
        self._entities = entities
        self._subjects = subjects
        self._max_wait_ms = max_wait_ms

    async def serve(self, request: WebRequest, tid: str, received_ms: int | None = None) -> Answer:
        """The answer to one web request; refusals raise domain errors, or WebFailure once headers are decided.
        `received_ms`: when the request came (`Launcher.start`)."""
        target = parse_target(request.tail)
        owner = await self._subjects.identity_of(target.namespace)
        if owner is None:
            raise NotFound()
        resolved = await self._find(owner, target)
        annotations = resolved.action.annotations
        if annotations.get(WEB_EXPORT) is not True:
            raise NotFound()
        try:
            await self._entities.entitle_located(owner, resolved)
            await self._entities.entitle_components(owner, resolved)
        except NotFound:
            raise NotFound() from None
        self._throttle.check(caller_for(owner))
        limit = owner.limits.max_payload_size
        if len(request.body) > limit:
            raise TooLarge(f"Request larger than allowed: {len(request.body)} > {limit} bytes.")
        custom_options = annotations.get(WEB_CUSTOM_OPTIONS) is True
        cors = [] if custom_options else cors_headers(request)
        if request.method == "OPTIONS" and not custom_options:
            return Answer(200, cors)
        try:
            if request.method != "OPTIONS" and not authorized(annotations, request):
                raise Unauthenticated(UNAUTHORIZED)
            answer = await self._run(request, target, owner, resolved, tid, received_ms)
        except WhiskError as exc:
            raise WebFailure(exc, cors) from None
        except WebFailure as failure:
            if not failure.bare:
                failure.headers = merge_headers(cors, failure.headers)
            raise
        answer.headers = merge_headers(cors, answer.headers)
        return answer

    async def _find(self, owner: Identity, target: Target) -> ResolvedAction:
        try:
            return await self._entities.locate_action(owner, target.namespace, target.package, target.name)
        except (NotFound, Conflict, Invalid, Unprocessable):
            raise NotFound() from None

    async def _run(self, request: WebRequest, target: Target, owner: Identity, resolved: ResolvedAction,
                   tid: str, received_ms: int | None) -> Answer:
        raw = resolved.action.annotations.get(RAW_HTTP) is True
        body = decode_body(request.body, request.header("content-type"), raw)
        if not raw:
            check_overrides(request, body, RESERVED_ARGS | resolved.action.final_keys)
        args = arguments(request, target.path, body, raw)
        outcome = await self._launcher.start(owner, resolved, args, blocking=True, wait_ms=self._max_wait_ms,
                                             tid=tid, received_ms=received_ms)
        activation = [(ACTIVATION_HEADER, outcome.activation_id)]
        if outcome.record is None:
            return Answer(202, activation, error=NOT_READY)
        try:
            answer = transcode(target.extension, project(outcome.record.response))
        except WhiskError as exc:
            raise WebFailure(exc, activation) from None
        if answer.content_type is not None and not accepts(request.header("accept"), answer.content_type):
            # Pekko negotiates every `complete` with an entity: 406, naming the type it has (`.text` is a String
            # marshalled as text/plain with an open charset). That is a rejection, which the route's header
            # directives (CORS, the activation id) never see.
            offered = "text/plain" if target.extension == ".text" else answer.content_type
            raise WebFailure(NotAcceptable(UNACCEPTED + offered), [], bare=True)
        answer.headers = activation + answer.headers
        return answer
