"""How `wsk` prints entities (wsk's util.go): typed entities keep the Go client's struct field order and its
`omitempty` rules; untyped payloads (parameter values, invoke replies, results) print with keys sorted.

A shape is a tuple of fields; `render` turns a server reply into ordered dicts ready for `output.dumps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EMPTY, NIL, NEVER = "empty", "nil", "never"   # omitempty on a value / on a pointer, or always present


@dataclass(frozen=True, slots=True)
class F:
    key: str
    omit: str = EMPTY
    zero: Any = None                     # Go's zero value, printed for a missing `never` field or a FIELD filter
    shape: tuple[F, ...] | None = None   # a nested typed struct
    many: bool = False                   # a list of `shape`


def untyped(value: Any) -> Any:
    """A copy with every object's keys sorted, as Go prints a map; without recursion, as the server keeps values
    nested 500 levels deep (two frames a level went past Python's recursion limit)."""
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    pending = [(value, root)]
    while pending:
        source, target = pending.pop()
        items = ((k, source[k]) for k in sorted(source)) if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, dict | list):
                copy: Any = {} if isinstance(item, dict) else []
                pending.append((item, copy))
                item = copy
            if isinstance(target, list):
                target.append(item)
            else:
                target[key] = item
    return root


def _is_empty(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) == 0
    return type(value) in (int, float) and value == 0


def _one(field: F, value: Any) -> Any:
    if field.shape is None:
        return untyped(value)
    if field.many:
        return [render(v, field.shape) for v in value] if isinstance(value, list) else None
    return render(value, field.shape) if isinstance(value, dict) else None


def render(value: Any, shape: tuple[F, ...]) -> Any:
    if not isinstance(value, dict):
        return untyped(value)
    out: dict[str, Any] = {}
    for field in shape:
        raw = value.get(field.key)
        converted = _one(field, raw) if raw is not None else None
        if field.omit == NEVER:
            if converted is None:
                converted = render({}, field.shape) if field.shape and not field.many else field.zero
            out[field.key] = converted
        elif field.omit == NIL:
            if converted is not None:
                out[field.key] = converted
        elif not _is_empty(converted):
            out[field.key] = converted
    return out


def field_names(shape: tuple[F, ...]) -> dict[str, F]:
    """FIELD filters match the Go struct field names case-insensitively."""
    return {f.key.lower(): f for f in shape}


def field_value(value: dict[str, Any], field: F) -> Any:
    """One field as `wsk ... get NAME FIELD` prints it: the Go value, zero when absent."""
    raw = value.get(field.key)
    if raw is None:
        return render({}, field.shape) if field.shape and not field.many and field.omit == NEVER else field.zero
    return _one(field, raw)


KEY_VALUE = (F("key", NEVER, ""), F("value", NEVER, None))
LIMITS = (F("timeout", NIL), F("memory", NIL), F("logs", NIL), F("concurrency", NIL))
EXEC = (F("kind", zero=""), F("code", NIL), F("image", zero=""), F("init", zero=""), F("main", zero=""),
        F("components"), F("binary", NIL))
ACTION = (
    F("namespace", zero=""), F("name", zero=""), F("version", zero=""), F("exec", NIL, shape=EXEC),
    F("annotations", shape=KEY_VALUE, many=True), F("delAnnotations"),
    F("parameters", shape=KEY_VALUE, many=True), F("limits", NIL, shape=LIMITS), F("error", zero=""),
    F("code", zero=0), F("publish", NIL), F("updated", zero=0), F("env", shape=KEY_VALUE, many=True),
)
TRIGGER = (
    F("namespace", zero=""), F("name", NEVER, ""), F("version", zero=""), F("activationId", zero=""),
    F("annotations", shape=KEY_VALUE, many=True), F("parameters", shape=KEY_VALUE, many=True),
    F("limits", NIL, shape=LIMITS), F("publish", NIL), F("rules"), F("updated", zero=0),
)
RULE = (
    F("namespace", zero=""), F("name", zero=""), F("version", zero=""), F("annotations", shape=KEY_VALUE, many=True),
    F("status", NEVER, ""), F("trigger", NEVER), F("action", NEVER), F("publish", NIL), F("updated", zero=0),
)
BINDING = (F("namespace", zero=""), F("name", zero=""))
PACKAGE = (
    F("namespace", zero=""), F("name", zero=""), F("version", zero=""), F("publish", NIL),
    F("annotations", shape=KEY_VALUE, many=True), F("parameters", shape=KEY_VALUE, many=True),
    F("binding", NIL, shape=BINDING), F("actions", shape=ACTION, many=True), F("feeds", shape=ACTION, many=True),
    F("updated", zero=0),
)
RESPONSE = (F("status", NEVER, ""), F("statusCode", NEVER, 0), F("success", NEVER, False), F("result", NIL))
ACTIVATION = (
    F("namespace", NEVER, ""), F("name", NEVER, ""), F("version", NEVER, ""), F("subject", NEVER, ""),
    F("activationId", NEVER, ""), F("cause", zero=""), F("start", NEVER, 0), F("end", NEVER, 0),
    F("duration", NEVER, 0), F("statusCode", NEVER, 0), F("response", NEVER, shape=RESPONSE),
    F("logs", NEVER, None), F("annotations", NEVER, None, shape=KEY_VALUE, many=True), F("publish", NIL),
)

# The client recomputes an activation's top-level statusCode from response.status (Go client `Activations.Get`).
STATUS_CODES = {"application error": 1, "action developer error": 2, "whisk internal error": 3}


def activation(record: dict[str, Any]) -> dict[str, Any]:
    response = record.get("response")
    status = response.get("status") if isinstance(response, dict) else None
    return render({**record, "statusCode": STATUS_CODES.get(status, 0) if isinstance(status, str) else 0}, ACTIVATION)


def annotation(entity: dict[str, Any], key: str) -> Any:
    """The value of the first annotation `key` (None when absent)."""
    for item in entity.get("annotations") or ():
        if isinstance(item, dict) and item.get("key") == key:
            return item.get("value")
    return None
