"""Parameters and annotations: key/value lists (docs/openwhisk.md §2.2; OpenWhisk `E/Parameter.scala`).

On the wire a JSON array of `{"key", "value", "init"?, "encryption"?}`; semantically a map where later duplicates
win. Merging is always "right side wins" (`a | b`). Size is Σ(len(key) + len(compact JSON of value)) in UTF-8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from whisk.entities.errors import Invalid
from whisk.entities.json_value import compact

MALFORMED = "parameters malformed!"


def truthy(value: Any) -> bool:
    """OpenWhisk's annotation truthiness: bool itself, number ≠ 0, non-empty string, null false, else true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True


def annotation_value(doc: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value of annotation `key` in a stored document's key/value list (later duplicates win)."""
    found = default
    for a in doc.get("annotations") or ():
        if a.get("key") == key:
            found = a.get("value")
    return found


@dataclass(frozen=True, slots=True)
class Param:
    value: Any = None
    init: bool = False
    encryption: str | None = None

    @property
    def defined(self) -> bool:
        return self.value is not None


class Parameters(Mapping[str, Any]):
    """An immutable ordered map of key → value, remembering each key's `init` and `encryption` flags."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Param] | None = None) -> None:
        self._items: dict[str, Param] = dict(items or {})

    # --- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, value: Any) -> Parameters:
        if not isinstance(value, list):
            raise Invalid(MALFORMED)
        items: dict[str, Param] = {}
        for entry in value:
            # OpenWhisk's "invalid parameter" (no object) is caught by the Try that answers MALFORMED; a null
            # `encryption` is read only beside an `init`.
            if not isinstance(entry, dict):
                raise Invalid(MALFORMED)
            key, init, encryption = entry.get("key"), entry.get("init", False), entry.get("encryption")
            if not isinstance(key, str) or "value" not in entry or not isinstance(init, bool):
                raise Invalid(MALFORMED)
            if not (encryption is None or isinstance(encryption, str)) or (
                    "encryption" in entry and encryption is None and "init" not in entry):
                raise Invalid(MALFORMED)
            items.pop(key, None)    # a later duplicate wins and takes the later position
            items[key] = Param(entry["value"], init, encryption)
        return cls(items)

    @classmethod
    def of(cls, mapping: Mapping[str, Any] | None = None, **values: Any) -> Parameters:
        """Plain values, no flags: `Parameters.of({"a": 1})` or `Parameters.of(a=1)`."""
        merged = dict(mapping or {}) | values
        return cls({k: Param(v) for k, v in merged.items()})

    # --- views ----------------------------------------------------------------------------------------------------
    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for key, p in self._items.items():
            item: dict[str, Any] = {"key": key, "value": p.value}
            if p.init:
                item["init"] = True
            if p.encryption is not None:
                item["encryption"] = p.encryption
            out.append(item)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: p.value for k, p in self._items.items()}

    def param(self, key: str) -> Param | None:
        return self._items.get(key)

    def is_truthy(self, key: str, default: bool = False) -> bool:
        p = self._items.get(key)
        return truthy(p.value) if p is not None else default

    def defined_keys(self) -> set[str]:
        return {k for k, p in self._items.items() if p.defined}

    def init_keys(self) -> set[str]:
        return {k for k, p in self._items.items() if p.init}

    @property
    def size(self) -> int:
        return sum(len(k.encode()) + len(compact(p.value).encode()) for k, p in self._items.items())

    # --- combination ----------------------------------------------------------------------------------------------
    def merge(self, other: Parameters | None) -> Parameters:
        """Right side wins, key by key (flags travel with the winning value)."""
        if not other:
            return self
        return Parameters(self._items | other._items)

    __or__ = merge

    def without(self, *keys: str) -> Parameters:
        return Parameters({k: p for k, p in self._items.items() if k not in keys})

    def with_value(self, key: str, value: Any) -> Parameters:
        return self.merge(Parameters({key: Param(value)}))

    # --- Mapping protocol -----------------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._items[key].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Parameters):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(compact(self.to_json()))

    def __repr__(self) -> str:
        return f"Parameters({compact(self.to_json())})"


EMPTY = Parameters()
