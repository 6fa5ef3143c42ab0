"""The pre-pass `wsk` runs on the raw argv before parsing flags (wsk's commands.go parseArgs), and the JSON it yields.

`-p/--param K V`, `-a/--annotation K V`, `-F/--feed-param K V`, `-T/--trigger-param K V` take two following
tokens and `-P/--param-file F`, `-A/--annotation-file F` one (the file is read at once); they are removed wherever
they stand. Each becomes a JSON object fragment; the fragments of one kind merge left to right (later keys win).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisk.cli.errors import CliError, path_error, usage_error

_PAIRS = {"-p": "params", "--param": "params", "-a": "annotations", "--annotation": "annotations",
          "-F": "feed_params", "--feed-param": "feed_params",
          "-T": "trigger_params", "--trigger-param": "trigger_params"}
_FILES = {"-P": "params", "--param-file": "params", "-A": "annotations", "--annotation-file": "annotations"}


@dataclass
class Extracted:
    """argv without the pre-pass tokens, and the raw JSON fragments of each kind, in order."""

    argv: list[str]
    params: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    feed_params: list[str] = field(default_factory=list)
    trigger_params: list[str] = field(default_factory=list)


def _no_constants(name: str) -> Any:
    raise ValueError(f"invalid character {name!r} looking for beginning of value")  # Go's JSON has no NaN


def loads(text: str) -> Any:
    """Strict JSON (no NaN/Infinity), as Go decodes it."""
    return json.loads(text, parse_constant=_no_constants)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return number


def _valid_json(value: str) -> bool:
    """`wsk`'s isValidJSON: json.Unmarshal into interface{}, where every number is a float64, so one beyond its
    range (`1e400`) is not JSON and the value goes as a string."""
    try:
        json.loads(value, parse_constant=_no_constants, parse_float=_finite, parse_int=_finite)
    except ValueError:
        return False
    return True


def _fragment(key: str, value: str) -> str:
    """`{"K": V}`: V raw when it parses as JSON, else as a string (escaped properly, unlike `wsk`)."""
    if not _valid_json(value):
        value = json.dumps(value, ensure_ascii=False)
    return "{" + json.dumps(key, ensure_ascii=False) + ": " + value + "}"


@contextmanager
def reading(path: str) -> Iterator[None]:
    """`wsk`'s ReadFile errors for a file named on the command line and read in the block (a missing file: exit
    2)."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError):
        raise usage_error(f"File '{path}' is not a valid file or it does not exist") from None
    except IsADirectoryError:                       # Go: os.Stat succeeds, the read fails
        raise CliError(f"Unable to read the file '{path}': read {path}: is a directory", usage=True) from None
    except OSError as exc:
        raise CliError(f"Unable to read the file '{path}': {path_error('open', path, exc)}", usage=True) from None
    except UnicodeDecodeError as exc:
        raise CliError(f"Unable to read the file '{path}': {exc}", usage=True) from None


def read_file(path: str) -> str:
    """A file named on the command line, read whole as text."""
    with reading(path):
        return Path(path).read_text(encoding="utf-8")


def _invalid(kind: str, message: str) -> CliError:
    if kind in ("params", "annotations"):
        noun = "annotation" if kind == "annotations" else "parameter"
        message = f"The {noun} arguments are invalid: {message}"
    return CliError(f"Failed to parse arguments: {message}", usage=True)


def extract(argv: list[str]) -> Extracted:
    """Remove the pre-pass tokens from argv (reading -P/-A files now, as `wsk` does)."""
    out = Extracted(argv=[])
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _PAIRS:
            kind = _PAIRS[token]
            if len(argv) - i < 3:
                raise _invalid(kind, f"Arguments for '{token}' must be a key/value pair")
            getattr(out, kind).append(_fragment(argv[i + 1], argv[i + 2]))
            i += 3
        elif token in _FILES:
            kind = _FILES[token]
            if len(argv) - i < 2:
                raise _invalid(kind, f"An argument must be provided for '{token}'")
            try:
                getattr(out, kind).append(read_file(argv[i + 1]))
            except CliError as exc:                  # as `wsk`'s Execute: every pre-pass failure is wrapped
                raise exc.within("Failed to parse arguments") from None
            i += 2
        elif token == "--":
            out.argv.extend(argv[i:])
            break
        else:
            out.argv.append(token)
            i += 1
    return out


def _go_strings(fragments: list[str]) -> str:
    return "[]string{" + ", ".join(json.dumps(f, ensure_ascii=False) for f in fragments) + "}"


_GO_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "bool"}
_WHITESPACE = " \t\n\r"


def _go_char(c: str) -> str:
    """A character as Go's encoding/json quotes it in a syntax error."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    return "'" + json.dumps(c)[1:-1] + "'"


def _container(text: str, pos: int) -> str:
    """The innermost open `{` or `[` before pos, strings skipped."""
    stack: list[str] = []
    in_string = escaped = False
    for c in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _go_syntax_error(exc: json.JSONDecodeError) -> str:
    """Python's decode error as Go's json.Decoder words it (the common cases)."""
    at_end = exc.pos >= len(exc.doc)
    c = "" if at_end else exc.doc[exc.pos]
    if exc.msg.startswith("Unterminated string") or (at_end and not exc.msg.startswith("Invalid")):
        return "unexpected EOF"
    if exc.msg == "Expecting value":
        return f"invalid character {_go_char(c)} looking for beginning of value"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character {_go_char(c)} looking for beginning of object key string"
    if exc.msg == "Expecting ':' delimiter":
        return f"invalid character {_go_char(c)} after object key"
    if exc.msg == "Expecting ',' delimiter":
        where = "object key:value pair" if _container(exc.doc, exc.pos) == "{" else "array element"
        return f"invalid character {_go_char(c)} after {where}"
    if exc.msg.startswith("Invalid control character"):
        return f"invalid character {_go_char(c)} in string literal"
    if exc.msg.startswith("Invalid \\escape"):
        return f"invalid character {_go_char(exc.doc[exc.pos + 1:exc.pos + 2])} in string escape code"
    return exc.msg


def merge(fragments: list[str], *, annotation: bool = False) -> dict[str, Any]:
    """One object from the fragments (later keys win), decoded as `wsk`'s getJSONFromStrings does with a Go
    json.Decoder: only the first JSON value of each fragment counts (what follows it is ignored), `null` empties
    what came before, anything else that is not an object is refused with Go's message."""
    merged: dict[str, Any] = {}
    decoder = json.JSONDecoder(parse_constant=_no_constants)
    for text in fragments:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        if start == len(text):
            raise _bad(fragments, "EOF", annotation)
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise _bad(fragments, _go_syntax_error(exc), annotation) from None
        except ValueError as exc:
            raise _bad(fragments, str(exc), annotation) from None
        if value is None:
            merged = {}
        elif isinstance(value, dict):
            merged.update(value)
        else:
            kind = _GO_TYPES.get(type(value), "value")
            raise _bad(fragments, f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}",
                       annotation)
    return merged


def _bad(fragments: list[str], detail: str, annotation: bool) -> CliError:
    noun = "annotation" if annotation else "parameter"
    return CliError(f"Invalid {noun} argument '{_go_strings(fragments)}': {detail}", usage=True)


def key_values(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The entity wire form: `[{"key": K, "value": V}, ...]`."""
    return [{"key": k, "value": v} for k, v in values.items()]
