"""Fields every entity shares (docs/openwhisk.md §2.1; OpenWhisk `E/WhiskEntity.scala`) and the readers of PUT bodies.

Readers raise Invalid with the message OpenWhisk's JSON readers give; the API prefixes it with "The request content
was malformed:" as Pekko does for a body that does not deserialize.
"""

from __future__ import annotations

import time
from typing import Any

from whisk.entities.errors import Invalid
from whisk.entities.json_value import compact
from whisk.entities.parameters import Parameters
from whisk.entities.semver import SemVer


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def body_object(value: Any) -> dict[str, Any]:
    """A PUT body that is no object: spray-json's text when OpenWhisk reads it as LimitedWhiskEntityPut, whose
    first field is `exec` (`CTL/Entities.scala`), for every collection."""
    if not isinstance(value, dict):
        raise Invalid("Object expected in field 'exec'")
    return value


def opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):                  # spray-json's BooleanJsonFormat
        raise Invalid(f"Expected JsBoolean, but got {compact(value)[:80]}")
    return value


def opt_version(body: dict[str, Any]) -> SemVer | None:
    value = body.get("version")
    return None if value is None else SemVer.from_json(value)


def opt_params(body: dict[str, Any], key: str) -> Parameters | None:
    value = body.get(key)
    return None if value is None else Parameters.from_json(value)


def opt_strings(body: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list):                  # spray-json's arrayFormat, then its StringJsonFormat
        raise Invalid(f"Expected Array as JsArray, but got {compact(value)[:80]}")
    for v in value:
        if not isinstance(v, str):
            raise Invalid(f"Expected String as JsString, but got {compact(v)[:80]}")
    return tuple(value)


def common_json(namespace: str, name: str, version: SemVer, publish: bool, annotations: Parameters,
                updated: int) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "version": str(version), "publish": publish,
            "annotations": annotations.to_json(), "updated": updated}


def stored(doc: dict[str, Any], entity_type: str, doc_id: str, rev: str | None) -> dict[str, Any]:
    """Add the store's fields to an entity's JSON."""
    doc = dict(doc, _id=doc_id, entityType=entity_type)
    if rev is not None:
        doc["_rev"] = rev
    return doc


def read_version(doc: dict[str, Any]) -> SemVer:
    try:
        return SemVer.parse(doc.get("version") or "0.0.1")
    except Invalid:
        return SemVer()


def read_params(doc: dict[str, Any], key: str) -> Parameters:
    try:
        return Parameters.from_json(doc.get(key) or [])
    except Invalid:
        return Parameters()
