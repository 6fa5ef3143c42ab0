"""JSON text whisk accepts, from a client or from an action: the one strict parser.

Python's `json` reads more than JSON and more than whisk can carry on: `NaN`/`Infinity` and numbers too large for a
float, which it reads as Infinity (then stored, and served as invalid JSON forever), lone UTF-16 surrogates such as
`"\\ud800"` (no UTF-8 encoding exists, so the store or the answer fails later), and nesting deep enough that encoding
it again hits the recursion limit somewhere downstream (the bus, the store, the answer). All are refused here, at
the edge, with a reason.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import orjson

# Deepest nesting of objects and arrays accepted. Records, bus messages and answers wrap a value in a few more
# levels and are encoded with Python's recursive encoder (recursion limit 1000), so this leaves ample room.
MAX_DEPTH = 500

_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]|[\ud800-\udfff]")   # escaped, or in a str given


class NotJson(ValueError):
    """The text is not JSON whisk accepts; the message says why."""


class TooDeep(NotJson):
    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


def _no_constants(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value")


def _finite(text: str, _float: type[float] = float, _isinf: Callable[[float], bool] = math.isinf) -> float:
    """A number with a fraction or exponent, refused when a float cannot hold it (`1e400`): Python reads it as
    Infinity, which no JSON can carry (stored, it made every later read invalid JSON; invoked, the action got
    null). OpenWhisk keeps such numbers exactly (BigDecimal); whisk holds floats, so it refuses them. Underflow to
    0.0 and rounding to 17 digits are float semantics the runtimes share, and stay. Called for floats only: a text
    without one costs nothing more."""
    value = _float(text)
    if _isinf(value):
        raise NotJson(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def _integer(text: str, _int: type[int] = int) -> int:
    """An integer, refused past the digits Python converts (4,300 by default, `sys.get_int_max_str_digits`): json
    lets its ValueError through, which told the client to call `sys.set_int_max_str_digits()`. OpenWhisk keeps such
    numbers exactly (BigDecimal). Called on the strict path only (orjson sends every integer of 19 digits or more
    there), so an ordinary text costs nothing more."""
    try:
        return _int(text)
    except ValueError:
        raise NotJson(f"the integer {text[:40]}... has more digits than whisk reads "
                      f"({sys.get_int_max_str_digits()})") from None


# One decoder for every parse: json.loads with a keyword argument builds a new JSONDecoder on each call (~2 us).
_decoder = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite, parse_int=_integer)


def depth(value: Any) -> int:
    """How deeply objects and arrays nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def held_size(value: Any) -> int:
    """Roughly the bytes a JSON value holds: its strings' lengths (keys included) and a few bytes a node, without
    recursion. What a cache charges for a document: an action's code dwarfs everything else in it."""
    size, stack = 0, [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            size += 8 + sum(len(key) + 8 for key in node)
            stack.extend(node.values())
        elif type(node) is list:
            size += 8 + 8 * len(node)
            stack.extend(node)
        elif type(node) is str:
            size += len(node)
        else:
            size += 8
    return size


def copy_of(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists and immutable scalars only): what `copy.deepcopy` makes, at a
    fraction of its cost (no memo, no dispatch on types JSON does not have), and without recursion: a value nested
    MAX_DEPTH deep inside a stored document took two frames a level (a comprehension is a frame of its own before
    Python 3.12), past the recursion limit, so the cache could not hold the entity and every read of it failed."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    root: Any = {} if kind is dict else []
    stack = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if type(source) is dict else enumerate(source)
        is_list = type(target) is list
        for key, item in items:
            kind = type(item)
            if kind is dict or kind is list:
                item_copy: Any = {} if kind is dict else []
                stack.append((item, item_copy))
                item = item_copy
            if is_list:
                target.append(item)
            else:
                target[key] = item
    return root


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def pretty(value: Any) -> str:
    """JSON as OpenWhisk's web actions print it, with spray-json's PrettyPrinter: an object's members one a line,
    indented two spaces deeper than the object, as `"key": value`; an array on one line, `[a, b]`; an empty object
    `{`, an empty line and `}`; scalars as `compact` writes them. (Python's `indent=2` puts array items on lines
    of their own and writes `{}`.) Values nest at most MAX_DEPTH deep, well within the recursion limit."""
    out: list[str] = []
    _pretty(value, "", out)
    return "".join(out)


def _pretty(value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, dict):
        inner = indent + "  "
        out.append("{\n")
        for i, (key, item) in enumerate(value.items()):
            out.append(f",\n{inner}" if i else inner)
            out.append(_compact(key))
            out.append(": ")
            _pretty(item, inner, out)
        out.append(f"\n{indent}}}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _pretty(item, indent, out)
        out.append("]")
    else:
        out.append(_compact(value))


def compact(value: Any) -> str:
    """JSON as OpenWhisk prints it (spray's compactPrint): no spaces, non-ASCII kept. The value `encode` writes, as a
    str, though not always the same text: Python writes a small float's exponent with two digits (`1.5e-07`),
    orjson with one (`1.5e-7`)."""
    return _compact(value)


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON of a value whisk holds (read by `parse`, or built by whisk): the bus messages, records and
    proxy calls of every invoke. orjson writes these about 15x faster than `json` (docs/performance.md); what it
    refuses (integers beyond 64 bits, keys that are not strings) goes through `json`, as everything did before, so
    the same values encode, to the same JSON. (orjson writes NaN as null, but `parse` never lets NaN in.)"""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _compact(value).encode()


# Every integer orjson would read as a float (beyond 64 bits) is written with at least 19 digits.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_NUMBER = b"0" * 19


def decode(data: bytes) -> Any:
    """JSON that `encode` wrote (the bus messages): read by orjson (1.3 us against 2.9 for a 430-byte message) unless
    it holds a run of 19 digits, which could be an integer beyond 64 bits that orjson would turn into a float;
    whatever orjson refuses (NaN, a lone surrogate, bytes that are not UTF-8) is read by `json` as before."""
    if data.translate(_DIGITS_ONLY).find(_LONG_NUMBER) < 0:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def too_deep(value: Any) -> bool:
    return depth(value) > MAX_DEPTH


_LONG_DIGITS = re.compile(r"[0-9]{19}").search
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}").search
_STRICT = object()


def _by_orjson(raw: bytes | str) -> Any:
    """`raw` read by orjson, or _STRICT for the strict reading below. orjson refuses everything that reading refuses
    (NaN, Infinity, a number beyond a float, a lone surrogate, escaped or not, bytes that are not UTF-8, nesting
    past 1,024), and those go the strict way for its reason or its U+FFFD; it would read an integer beyond 64 bits
    as a float, and every such integer is written with 19 digits or more."""
    if isinstance(raw, str):
        if _LONG_DIGITS(raw) is not None:
            return _STRICT
        nesting = raw.count("[") + raw.count("{")
    else:
        if _LONG_DIGITS_BYTES(raw) is not None:
            return _STRICT
        nesting = raw.count(b"[") + raw.count(b"{")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _STRICT
    if nesting > MAX_DEPTH and too_deep(value):
        raise TooDeep()
    return value


def parse(raw: bytes | str) -> Any:
    """`raw` as a JSON value, or NotJson with the reason (not JSON, NaN/Infinity, a number beyond a float, a lone
    surrogate, nesting deeper than MAX_DEPTH)."""
    # orjson first: a request's payload and an action's answer, each invoke (0.5 against 1.6 us for a small object).
    value = _by_orjson(raw)
    if value is not _STRICT:
        return value
    # Bytes that are not UTF-8 (UTF-8-encoded surrogates included) become U+FFFD, as the JVM decodes them upstream.
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    try:
        value = _decoder.decode(text)
    except RecursionError:
        raise TooDeep() from None
    except NotJson:
        raise
    except ValueError as exc:
        raise NotJson(str(exc)) from None
    # Both checks below walk the value; the text scans (C speed) spare the walk to every ordinary text.
    if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(value):
        raise TooDeep()
    if _SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise NotJson("A string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which has no UTF-8 form") \
                from None
    return value
