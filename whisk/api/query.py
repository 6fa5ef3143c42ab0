"""Query parameters with OpenWhisk's validation messages (docs/openwhisk.md §1.4; `CTL/RestAPIs.scala` list limits,
Pekko's boolean parameters). A bad value is Pekko's malformed-parameter rejection: 400 naming the parameter."""

from __future__ import annotations

import re

from aiohttp import web

from whisk.entities.errors import Invalid

MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 30
_INT = re.compile(r"[+-]?\d+")      # any number of digits: Java takes leading zeros, only the range counts
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def malformed(name: str, message: str) -> Invalid:
    return Invalid(f"The query parameter '{name}' was malformed:\n{message}")


def _java_int(text: str, bits: int) -> int | None:
    """Java's Integer.parseInt (32 bits) or Long.parseLong (64): optional sign, digits, the type's range."""
    if not _INT.fullmatch(text):
        return None
    try:
        value = int(text)
    except ValueError:           # more digits than Python converts (thousands): far out of range anyway
        return None
    return value if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else None


def _int(text: str) -> int | None:
    return _java_int(text, 32)


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """Pekko's `'name ? default` over its Boolean unmarshaller: true/yes/on/1, false/no/off/0 (any case); an empty
    value is its NoContentException, which the default recovers."""
    text = request.query.get(name)
    if not text:
        return default
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise malformed(name, f"'{text}' is not a valid Boolean value")


def wait_ms(request: web.Request, max_ms: int) -> int:
    """`timeout` of an invoke (`CTL/Actions.scala` stringToFiniteDuration): Integer.parseInt in 1..max, else
    malformed with "Timeout must be number of milliseconds up to <max>."; absent means the maximum."""
    text = request.query.get("timeout")
    if text is None:
        return max_ms
    value = _int(text)
    if value is None or not 0 < value <= max_ms:
        raise malformed("timeout", f"Timeout must be number of milliseconds up to {max_ms}.")
    return value


def list_limit(request: web.Request, collection: str) -> int:
    text = request.query.get("limit")
    if text is None:
        return DEFAULT_LIST_LIMIT
    value = _int(text)
    if value is None:
        raise malformed("limit", f"The value '{text}' is not an integer for {collection}.")
    if value == 0:
        return MAX_LIST_LIMIT
    if not 0 < value <= MAX_LIST_LIMIT:
        raise malformed("limit", f"The value '{value}' is not in the range of 0 to {MAX_LIST_LIMIT} for {collection}.")
    return value


def list_skip(request: web.Request, collection: str) -> int:
    text = request.query.get("skip")
    if text is None:
        return 0
    value = _int(text)
    if value is None:
        raise malformed("skip", f"The value '{text}' is not an integer for {collection}.")
    if value < 0:
        raise malformed("skip", f"The value '{value}' is not greater than or equal to 0 for {collection}.")
    return value


def paging(request: web.Request, collection: str) -> tuple[int, int, bool]:
    """(skip, limit, count) of a collection list."""
    return list_skip(request, collection), list_limit(request, collection), flag(request, "count")


def epoch_ms(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    value = _java_int(text, 64)
    if value is None:
        raise malformed(name, f"Parameter is not a valid value for epoch seconds: {text}")
    return value
