"""The KV store of the Consul double (Consul's /v1/kv API): entries with base64 values, CAS, flags, prefix reads.

Sessions are not implemented, so every `acquire`/`release` names an unknown session and gets Consul's answer for
that (500). Indexes come from the double's one raft-like counter; the KV table index moves on every change.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.consul_double_decode import ConsulError, bad_request

MAX_VALUE = 512 * 1024


@dataclass(slots=True)
class Entry:
    key: str
    value: bytes | None
    flags: int
    create_index: int
    modify_index: int
    lock_index: int = 0

    def json(self) -> dict[str, Any]:
        return {"LockIndex": self.lock_index, "Key": self.key, "Flags": self.flags,
                "Value": base64.b64encode(self.value).decode() if self.value else None,
                "CreateIndex": self.create_index, "ModifyIndex": self.modify_index}


def _uint(query: Mapping[str, str], name: str, what: str) -> int | None:
    if name not in query:
        return None
    try:
        value = int(query[name])
        if value < 0 or value >= 2**64:
            raise ValueError
        return value
    except ValueError:
        raise bad_request(f"Invalid {what}") from None


class KVStore:
    def __init__(self, next_index: Callable[[], int]) -> None:
        self._next_index = next_index
        self._entries: dict[str, Entry] = {}
        self.table_index = 1

    def read(self, key: str, query: Mapping[str, str]) -> tuple[int, Any]:
        """(index, JSON body) for GET, or (index, None) for a 404."""
        recurse, keys = "recurse" in query, "keys" in query
        if not key and not (recurse or keys):
            raise bad_request("Missing key name")
        if not (recurse or keys):
            entry = self._entries.get(key)
            return (entry.modify_index, [entry.json()]) if entry else (self.table_index, None)
        found = sorted((e for k, e in self._entries.items() if k.startswith(key)), key=lambda e: e.key)
        index = max((e.modify_index for e in found), default=self.table_index)
        if keys:
            separator = query.get("separator", "")
            names: list[str] = []
            for e in found:
                rest = e.key[len(key):]
                cut = rest.find(separator) if separator else -1
                name = e.key if cut < 0 else e.key[:len(key) + cut + len(separator)]
                if not names or names[-1] != name:
                    names.append(name)
            if not names:
                return (self.table_index, []) if not key else (self.table_index, None)
            return index, names
        return (index, [e.json() for e in found]) if found else (self.table_index, None)

    def put(self, key: str, query: Mapping[str, str], raw_query: str, body: bytes) -> bool:
        if not key:
            raise bad_request("Missing key name")
        if sum(flag in query for flag in ("cas", "acquire", "release")) > 1:
            raise bad_request(f"Conflicting flags: {raw_query}")
        flags = _uint(query, "flags", "flags") or 0
        cas = _uint(query, "cas", "cas")
        if len(body) > MAX_VALUE:
            raise ConsulError(413, f"Request body({len(body)} bytes) too large, max size: {MAX_VALUE} bytes. See "
                                   "https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.")
        for flag in ("acquire", "release"):
            if flag in query:                         # no sessions exist in the double
                raise ConsulError(500, f'Invalid session "{query[flag]}"')
        entry = self._entries.get(key)
        if cas is not None and (entry.modify_index if entry else 0) != cas:
            return False
        index = self._next_index()
        if entry is None:
            self._entries[key] = Entry(key, body or None, flags, index, index)
        else:
            entry.value, entry.flags, entry.modify_index = body or None, flags, index
        self.table_index = index
        return True

    def delete(self, key: str, query: Mapping[str, str]) -> bool:
        recurse = "recurse" in query
        if recurse and "cas" in query:
            raise bad_request("Conflicting flags: cas=" + query["cas"] + "&recurse")
        if not key and not recurse:
            raise bad_request("Missing key name")
        cas = _uint(query, "cas", "cas")
        if recurse:
            doomed = [k for k in self._entries if k.startswith(key)]
        else:
            entry = self._entries.get(key)
            if cas is not None and (entry is None or cas == 0 or entry.modify_index != cas):
                return False
            doomed = [key] if entry else []
        if doomed:
            for k in doomed:
                del self._entries[k]
            self.table_index = self._next_index()
        return True
