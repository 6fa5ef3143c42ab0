"""The pre-pass `wsk` runs on the raw argv before parsing flags (wsk's commands.go parseArgs), and the JSON it yields.

`-p/--param K V`, `-a/--annotation K V`, `-F/--feed-param K V`, `-T/--trigger-param K V` take two following
tokens and `-P/--param-file F`, `-A/--annotation-file F` one (the file is read at once); they are removed wherever
they stand. Each becomes a JSON object fragment; the fragments of one kind merge left to right (later keys win).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisk.cli.errors import USAGE, CliError

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


def _fragment(key: str, value: str) -> str:
    """`{"K": V}`: V raw when it parses as JSON, else as a string (escaped properly, unlike `wsk`)."""
    try:
        loads(value)
    except ValueError:
        value = json.dumps(value, ensure_ascii=False)
    return "{" + json.dumps(key, ensure_ascii=False) + ": " + value + "}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise CliError(f"File '{path}' is not a valid file or it does not exist", USAGE, usage=True) from None
    except IsADirectoryError:                       # Go: os.Stat succeeds, the read fails
        raise CliError(f"Unable to read the file '{path}': read {path}: is a directory", usage=True) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"Unable to read the file '{path}': {exc}", usage=True) from None


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
                getattr(out, kind).append(_read(argv[i + 1]))
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


def merge(fragments: list[str], *, annotation: bool = False) -> dict[str, Any]:
    """One object from the fragments (later keys win); each must be a JSON object."""
    merged: dict[str, Any] = {}
    for text in fragments:
        try:
            value = loads(text)
        except ValueError as exc:
            raise _bad(fragments, str(exc), annotation) from None
        if not isinstance(value, dict):
            raise _bad(fragments, f"cannot unmarshal {type(value).__name__} into an object", annotation)
        merged.update(value)
    return merged


def _bad(fragments: list[str], detail: str, annotation: bool) -> CliError:
    noun = "annotation" if annotation else "parameter"
    return CliError(f"Invalid {noun} argument '{_go_strings(fragments)}': {detail}", usage=True)


def key_values(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The entity wire form: `[{"key": K, "value": V}, ...]`."""
    return [{"key": k, "value": v} for k, v in values.items()]
