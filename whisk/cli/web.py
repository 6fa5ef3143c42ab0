"""The annotations `--web` and `--web-secure` put on an action (wsk's action.go; `augmentWebArg`,
`augmentWebSecureArg` in `wsk`'s action.go). Annotations are `[{"key", "value"}]` lists throughout."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from whisk.cli.errors import usage_error

WEB_KEYS = ("web-export", "raw-http", "final")
SECURE_KEY = "require-whisk-auth"
_MODES = {"yes": (True, False, True), "true": (True, False, True), "raw": (True, True, True),
          "no": (False, False, False), "false": (False, False, False)}
MAX_JS_INT = (1 << 53) - 1

KeyValues = list[dict[str, Any]]


def _find(items: KeyValues, key: str) -> int:
    return next((i for i, kv in enumerate(items) if str(kv.get("key", "")).lower() == key.lower()), -1)


def value(items: KeyValues | None, key: str) -> Any:
    return next((kv.get("value") for kv in items or () if kv.get("key") == key), None)


def append_missing(items: KeyValues, extra: KeyValues) -> KeyValues:
    """`AppendKeyValueArr`: add the entries of `extra` whose key (case-insensitive) is not there yet."""
    out = list(items)
    for kv in extra:
        if _find(out, str(kv.get("key", ""))) == -1:
            out.append(kv)
    return out


def _without(items: KeyValues, key: str) -> KeyValues:
    """`deleteKey`: drop the first entry with this exact key."""
    index = next((i for i, kv in enumerate(items) if kv.get("key") == key), -1)
    return items if index < 0 else items[:index] + items[index + 1:]


def is_web(items: KeyValues | None) -> bool:
    return value(items, "web-export") is True


def _only(items: KeyValues | None, keys: tuple[str, ...]) -> KeyValues:
    return [kv for key in keys if (i := _find(items or [], key)) >= 0 for kv in [(items or [])[i]]]


@dataclass
class WebResult:
    annotations: KeyValues | None
    del_annotations: list[str] = field(default_factory=list)


def apply(annotations: KeyValues | None, *, web: str | None, web_secure: str | None,
          existing: dict[str, Any] | None) -> WebResult:
    """The annotations (None = send none) after --web and --web-secure; `existing` is the action being updated."""
    old = existing.get("annotations") if existing else None
    old = old if isinstance(old, list) else []
    if web is not None:
        mode = _MODES.get(web.lower())
        if mode is None:
            raise usage_error(f"Invalid argument '{web}' for --web flag. Valid input consist of 'yes', 'true', 'raw', "
                              "'false', or 'no'.")
        base = list(annotations or [])
        if annotations is None and existing is not None:
            base = append_missing(base, old)
        for key in WEB_KEYS:
            base = _without(base, key)
        annotations = base + [{"key": k, "value": v} for k, v in zip(WEB_KEYS, mode)]
        if existing is not None:
            annotations = append_missing(annotations, _only(old, (SECURE_KEY,)))
    result = WebResult(annotations)
    if web_secure is None:
        return result
    disabling = web is not None and web.lower() in ("false", "no")
    if not (is_web(annotations) or (existing is not None and is_web(old) and not disabling)):
        raise usage_error("The --web-secure option is only valid when the --web option is enabled.")
    current = list(annotations) if annotations is not None else None
    if existing is not None:
        if current is None:
            current = append_missing([], old)
        else:
            current = append_missing(append_missing(current, _only(old, WEB_KEYS)), _only(old, (SECURE_KEY,)))
    current = current or []
    secret = _secret(web_secure)
    old_secret = value(current, SECURE_KEY)
    if old_secret is not None and secret is False:
        result.del_annotations = [SECURE_KEY]
    if _is_int(old_secret) and _is_int(secret):
        pass                                    # keep the existing generated secret
    elif old_secret is not None and secret is False:
        current = _without(current, SECURE_KEY)
    else:
        index = _find(current, SECURE_KEY)
        if index >= 0:
            current[index] = {**current[index], "value": secret}
        else:
            current.append({"key": SECURE_KEY, "value": secret})
    result.annotations = current
    return result


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _secret(mode: str) -> Any:
    if mode.lower() == "true":
        return secrets.randbits(63) & MAX_JS_INT
    if mode.lower() == "false":
        return False
    return mode
