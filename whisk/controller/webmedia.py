"""Web action media (docs/openwhisk.md §1.12; OpenWhisk `CTL/WebActions.scala` `WhiskWebActionsApi`): reading a request
body into an action argument, and turning an activation's result into an HTTP answer for the extension asked for
(`.json`, `.html`, `.svg`, `.text`, `.http`). Pure functions; refusals are domain errors with OpenWhisk's texts.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from whisk.entities import charsets, json_value
from whisk.entities.activation import APPLICATION_ERROR, SUCCESS, ActivationResponse
from whisk.entities.errors import MALFORMED, Invalid, NotFound
from whisk.entities.exec import is_binary_code
from whisk.entities.json_value import compact, pretty

PROPERTY_NOT_FOUND = "Response does not include requested property."
ERROR_PROCESSING = "There was an error processing your request."
UNKNOWN_CONTENT_TYPE = "Response did not specify a known content-type."
CONTENT_TYPE_MISMATCH = "Response type in header did not match generated content type."
EXTENSIONS = (".http", ".json", ".html", ".svg", ".text")
DEFAULT_EXTENSION = ".http"


def invalid_media(media: str) -> Invalid:
    return Invalid(f"Response is not valid '{media}'.")


# --- media types -------------------------------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*((?:;\s*{_TOKEN}\s*=\s*(?:\"[^\"]*\"|[^;\s]*)\s*)*);?\s*")
_PARAM = re.compile(rf";\s*({_TOKEN})\s*=\s*(\"[^\"]*\"|[^;\s]*)")
# Registered non-binary application types (Pekko's MediaTypes with a charset); text/* is always textual.
_TEXTUAL = frozenset({"application/json", "application/javascript", "application/ecmascript", "application/xml",
                      "application/xhtml+xml", "application/x-www-form-urlencoded", "application/rss+xml",
                      "application/atom+xml", "application/soap+xml", "application/x-javascript"})
_BINARY_FAMILIES = frozenset({"image", "audio", "video", "font", "multipart"})


@dataclass(frozen=True, slots=True)
class MediaType:
    main: str
    sub: str
    params: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def parse(cls, text: str) -> MediaType | None:
        m = _MEDIA.fullmatch(text or "")
        if m is None:
            return None
        params = {k.lower(): v.strip('"') for k, v in _PARAM.findall(m.group(3))}
        return cls(m.group(1).lower(), m.group(2).lower(), params)

    @property
    def value(self) -> str:
        return f"{self.main}/{self.sub}"

    @property
    def charset(self) -> str | None:
        return self.params.get("charset")

    @property
    def is_json(self) -> bool:
        return self.value == "application/json" or self.sub.endswith("+json")

    @property
    def is_binary(self) -> bool:
        """Pekko's split: text/*, registered textual types and any type with a charset are text; the rest bytes."""
        if self.main in _BINARY_FAMILIES:
            return True
        if self.main == "text" or self.charset is not None or self.value in _TEXTUAL:
            return False
        return not (self.sub.endswith("+json") or self.sub.endswith("+xml"))

    def render(self) -> str:
        """The Content-Type of an answer: text types carry a charset (UTF-8 unless given); JSON has none."""
        if self.is_binary or (self.is_json and self.charset is None):
            return self.value if not self.params else self.value + "".join(f"; {k}={v}" for k, v in self.params.items())
        params = {"charset": "UTF-8", **self.params} if self.charset is None else self.params
        return self.value + "".join(f"; {k}={v}" for k, v in params.items())


# --- request bodies ---------------------------------------------------------------------------------------------

NO_BODY = object()   # an empty request body (distinct from a JSON null)
FORM = "application/x-www-form-urlencoded"


def decode_body(body: bytes, content_type: str | None, raw: bool) -> Any:
    """A request body as an action argument: JSON parsed, forms as objects of strings, other text as a string,
    bytes as base64. Raw actions get JSON and bytes base64-encoded and everything else as text. An empty body is
    NO_BODY when it has no type or, for a plain action, a JSON or form type; one of another type is an empty string,
    as Pekko hands OpenWhisk an empty entity of that type."""
    media = MediaType.parse(content_type) if content_type else None
    if not body and (media is None or (not raw and (media.is_json or media.value == FORM))):
        return NO_BODY
    if media is None:
        media = MediaType("application", "octet-stream")      # what Pekko assumes of an untyped entity
    if media.is_json and not raw:
        codec = _codec(media.charset) if media.charset else "utf-8"     # Pekko's JSON unmarshaller decodes with it
        try:
            return json_value.parse(body if codec == "utf-8" else body.decode(codec, "replace"))
        except json_value.NotJson as exc:
            raise Invalid(f"{MALFORMED}{exc}") from None
    if media.value == FORM and not raw:
        return dict(parse_qsl(body.decode(_codec(media.charset), "replace"), keep_blank_values=True))
    if media.is_binary or media.value == "application/json":
        return base64.b64encode(body).decode("ascii")
    return body.decode(_codec(media.charset), "replace")


def _codec(charset: str | None) -> str:
    """The declared charset if it is a real text charset, else UTF-8 (what OpenWhisk reads a text body as)."""
    return (charsets.codec(charset) if charset else None) or "utf-8"


# --- results ----------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Answer:
    """An HTTP answer made from a result: status, headers (never Content-Type), body and its Content-Type; or,
    with `error`, OpenWhisk's error body with that message (e.g. 202 "Response not yet ready.")."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    content_type: str | None = None
    error: str | None = None


def project(response: ActivationResponse) -> Any:
    """What a web action answers with: the result on success, the value of its `error` on an application error;
    other failures are refused."""
    code, result = response.status_code, response.result
    if code == SUCCESS:
        return result if result is not None else {}
    if code == APPLICATION_ERROR:
        if isinstance(result, dict) and "error" in result:
            return result["error"]
        raise NotFound(PROPERTY_NOT_FOUND)
    raise Invalid(ERROR_PROCESSING)


# --- content negotiation ------------------------------------------------------------------------------------------

# Request headers Pekko keeps in the entity (its framing) or OpenWhisk drops (its own Timeout-Access), so an action
# never sees them in `__ow_headers`.
ENTITY_HEADERS = frozenset({"content-length", "transfer-encoding", "timeout-access"})
UNACCEPTED = "Resource representation is only available with these types:\n"


def accepts(accept: str | None, content_type: str) -> bool:
    """Whether an Accept header allows a content type, as Pekko's `complete` negotiates: no header (or none that
    parses) takes anything; a range with q=0 takes nothing; `*/*`, `type/*` and `type/sub` match on the type only."""
    media = MediaType.parse(content_type)
    if not accept or media is None:
        return True
    ranges = [r for r in (MediaType.parse(part) for part in accept.split(",")) if r is not None]
    if not ranges:
        return True
    for r in ranges:
        try:
            if float(r.params.get("q", "1")) <= 0:
                continue
        except ValueError:
            continue
        if r.main == "*" or (r.main == media.main and r.sub in ("*", media.sub)):
            return True
    return False


def transcode(extension: str, value: Any) -> Answer:
    return _TRANSCODERS[extension](value)


def _as_json(value: Any) -> Answer:
    if not isinstance(value, dict | list):
        raise invalid_media("application/json")
    return Answer(200, body=pretty(value).encode(), content_type="application/json")     # as Pekko's printer


def _field(value: Any, *names: str) -> Any:
    """An object's first present field among `names` (OpenWhisk: `body` orElse `html`), else the value itself."""
    if isinstance(value, dict):
        for name in names:
            if name in value:
                return value[name]
        return None
    return value


def _as_html(value: Any) -> Answer:
    html = _field(value, "body", "html")
    if not isinstance(html, str):
        raise invalid_media("text/html")
    return Answer(200, body=html.encode(), content_type="text/html; charset=UTF-8")


def _as_svg(value: Any) -> Answer:
    svg = _field(value, "body", "svg")
    if not isinstance(svg, str):
        raise invalid_media("image/svg+xml")
    return Answer(200, body=svg.encode(), content_type="image/svg+xml")


def _as_text(value: Any) -> Answer:
    if isinstance(value, dict):
        if "body" not in value and "text" not in value:
            raise NotFound(PROPERTY_NOT_FOUND)
        value = value["body"] if "body" in value else value["text"]
    if isinstance(value, dict | list):
        text = pretty(value)
    elif isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool):
        text = compact(value)
    else:
        text = str(value)
    return Answer(200, body=text.encode(), content_type="text/plain; charset=UTF-8")


# --- .http: the result says status, headers and body -------------------------------------------------------------

_HEADER_NAME = re.compile(_TOKEN)
# Control characters (CR, LF, NUL, ...; not TAB) cannot travel in a header value (RFC 9110 §5.5): sending one would
# split the header or drop the connection, so such a response is not valid HTTP.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers the server computes itself; an action's copy would contradict the body actually sent.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
# Headers the server writes of its own, which Pekko's renderer drops from an action's ("illegal RawHeader"): a `Date`
# that is no HTTP date would mislead caches.
_SERVERS_OWN = frozenset({"date", "server"})
# Stricter than OpenWhisk, which passes it on: `Service-Worker-Allowed` would let a script a web action serves
# register as the service worker of the whole origin (scope `/`), and so control every page the API host serves,
# other tenants' web actions among them. Without it a web action's worker stays within its own path
# (`/api/v1/web/NAMESPACE/PACKAGE/`).
_WITHHELD = frozenset({"service-worker-allowed"})
# What of an action's headers is not passed on: the content type (sent as the body's own), framing, the server's own,
# withheld ones.
_NOT_PASSED = _FRAMING | _SERVERS_OWN | _WITHHELD | {"content-type"}
# Stricter than OpenWhisk (Pekko sends any size): the headers an action sends, as written ("Name: value" and CRLF,
# UTF-8), stay within half of what nginx in front reads of an answer's head (`proxy_buffer_size 64k`,
# config/nginx/); the rest is for the route's own headers, which echo a request's (CORS, X-Request-ID). nginx takes a
# head larger than its buffer for a failing controller: a 502, and that controller out of its upstreams for a while.
MAX_HEADER_BYTES = 32 * 1024


def _header_values(name: str, value: Any) -> list[tuple[str, str]]:
    """A header's values: a list (nested lists too, flattened in order, without recursion: a result may nest 500
    deep) gives one header per value."""
    out: list[tuple[str, str]] = []
    pending = [value]
    while pending:
        value = pending.pop()
        if isinstance(value, bool):
            out.append((name, compact(value)))
        elif isinstance(value, str):
            if _CONTROL.search(value):
                raise invalid_media("message/http")
            out.append((name, value))
        elif isinstance(value, int | float):
            out.append((name, str(value)))
        elif isinstance(value, list):
            pending.extend(reversed(value))
        else:
            raise invalid_media("message/http")
    return out


def _headers(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        raise invalid_media("message/http")
    out: list[tuple[str, str]] = []
    for name, v in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise invalid_media("message/http")
        out.extend(_header_values(name, v))
    return out


_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def _status(value: Any) -> int:
    """`statusCode`: a whole number, or a string Java's Integer.parseInt reads (no blanks); any code of 100-599 goes,
    registered or not (Pekko's `StatusCodes.custom`), anything else is not valid HTTP. An informational code
    (1xx) is not a final response: a client given one waits for another that never comes, so it is refused too."""
    if isinstance(value, bool):
        raise invalid_media("message/http")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        if not _JAVA_INT.fullmatch(value):
            raise invalid_media("message/http")
        value = int(value)
    if not isinstance(value, int) or not 200 <= value <= 599:
        raise invalid_media("message/http")
    return value


def _as_http(value: Any) -> Answer:
    if not isinstance(value, dict):
        raise invalid_media("message/http")
    headers = _headers(value["headers"]) if "headers" in value else []
    code = _status(value["statusCode"]) if "statusCode" in value else None
    declared = next((v for k, v in headers if k.lower() == "content-type"), None)
    kept = [(k, v) for k, v in headers if k.lower() not in _NOT_PASSED]
    size = sum(len(k.encode()) + len(v.encode("utf-8", "surrogateescape")) + 4 for k, v in kept)
    if size > MAX_HEADER_BYTES:
        raise Invalid(f"Response headers larger than allowed: {size} > {MAX_HEADER_BYTES} bytes.")
    body = value.get("body")
    if body is None or body == "":
        return Answer(code or 204, kept)
    if isinstance(body, str):
        media = MediaType.parse(declared) if declared is not None else MediaType("text", "html")
        if media is None:
            raise Invalid(UNKNOWN_CONTENT_TYPE)
        if not media.is_binary:
            # Text goes out in UTF-8 whatever charset the action declared, and says so: OpenWhisk's type comes from
            # Pekko's `MediaType.parse`, which keeps no charset, then `ContentType(mediaType, () => UTF-8)`.
            # (A declared ISO-8859-1 was written in it, so a character outside it was a 400, where OpenWhisk
            # answers.) `application/json` has UTF-8 fixed, named by no parameter.
            params = {k: v for k, v in media.params.items() if k != "charset"}
            if media.value != "application/json":
                params["charset"] = "UTF-8"
            media = MediaType(media.main, media.sub, params)
        return Answer(code or 200, kept, _text_body(body, media), media.render())
    media = MediaType.parse(declared) if declared is not None else MediaType("application", "json")
    if media is None or not media.is_json:
        raise Invalid(CONTENT_TYPE_MISMATCH)
    # Serialized JSON is UTF-8, typed without parameters as OpenWhisk types it (spray's `application/json`, or the
    # `+json` type with UTF-8 fixed): a declared `charset=ISO-8859-1` would mislabel the UTF-8 bytes.
    return Answer(code or 200, kept, pretty(body).encode(), media.value)


def _text_body(body: str, media: MediaType) -> bytes:
    """A string body: bytes types carry base64 (as does, for old actions, a base64-looking JSON string)."""
    if media.is_binary or (media.is_json and is_binary_code(body)):
        try:
            return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(CONTENT_TYPE_MISMATCH) from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:                   # a lone surrogate
        raise Invalid(CONTENT_TYPE_MISMATCH) from None


_TRANSCODERS = {".json": _as_json, ".html": _as_html, ".svg": _as_svg, ".text": _as_text, ".http": _as_http}
