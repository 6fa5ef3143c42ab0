"""Subjects, namespaces and their API keys (spec §1.2, §2.8): create, delete, list, authenticate, bootstrap.

Keys are stored hashed (`whisk.entities.identity.hash_key`). Successful authentications are cached for a short
time, so the hot path is one dict lookup; a cached identity lives at most `cache_ttl_s` after an admin change made
by another process (this process's own changes drop its entries at once).
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from whisk.entities.errors import Conflict, Invalid
from whisk.entities.identity import (GUEST_KEY, GUEST_NAMESPACE, GUEST_UUID, SUBJECT_MIN_LENGTH, SYSTEM_KEY,
                                     SYSTEM_NAMESPACE, SYSTEM_UUID, Identity, check_key, check_namespace,
                                     check_subject, check_uuid, generate_key, generate_uuid, hash_key, key_matches)
from whisk.entities.limits import SystemLimits, UserLimits
from whisk.store.base import SubjectStore

__all__ = ["GUEST_KEY", "GUEST_UUID", "SYSTEM_KEY", "SYSTEM_UUID", "Subjects"]

log = structlog.get_logger(__name__)

CACHE_TTL_S = 30.0
CACHE_MAX = 10_000


class Subjects:
    def __init__(self, store: SubjectStore, system: SystemLimits | None = None, *, cache_ttl_s: float = CACHE_TTL_S) -> None:
        self._store = store
        self._system = system or SystemLimits()
        self._ttl = cache_ttl_s
        self._cache: dict[tuple[str, str], tuple[Identity, float]] = {}

    # --- admin ----------------------------------------------------------------------------------------------------
    async def create(self, namespace: str, subject: str | None = None, uuid: str | None = None,
                     key: str | None = None) -> tuple[str, str]:
        """Give `namespace` to `subject` (default: a subject named like the namespace) with a new or given key;
        returns (uuid, key). Conflict if the namespace or the uuid is taken."""
        check_namespace(namespace)
        subject = check_subject(subject if subject is not None else _default_subject(namespace))
        uuid = check_uuid(uuid) if uuid is not None else generate_uuid()
        key = check_key(key) if key is not None else generate_key()
        if await self._store.find_namespace_by_name(namespace) is not None:
            raise Conflict(f"Namespace '{namespace}' already exists.")
        if await self._store.find_namespace(uuid) is not None:
            raise Conflict(f"The uuid '{uuid}' is already in use.")
        key_hash, key_salt = hash_key(key)
        doc = await self._store.get_subject(subject) or {"_id": subject, "subject": subject, "namespaces": []}
        doc["namespaces"] = [*doc.get("namespaces", []),
                             {"name": namespace, "uuid": uuid, "key_hash": key_hash, "key_salt": key_salt}]
        await self._store.put_subject(doc)
        log.info("subjects.created", subject=subject, namespace=namespace)
        return uuid, key

    async def delete(self, namespace: str) -> bool:
        """Remove the namespace (and its subject when it owned nothing else); False if there was no such namespace."""
        found = await self._store.find_namespace_by_name(namespace)
        if found is None:
            return False
        doc, entry = found
        rest = [n for n in doc.get("namespaces", []) if n.get("name") != namespace]
        if rest:
            await self._store.put_subject({**doc, "namespaces": rest})
        else:
            await self._store.delete_subject(doc["_id"] if "_id" in doc else doc["subject"])
        self._cache = {k: v for k, v in self._cache.items() if k[0] != entry.get("uuid")}
        log.info("subjects.deleted", namespace=namespace)
        return True

    async def list(self) -> list[dict[str, Any]]:
        """Every namespace with its subject and uuid (never keys)."""
        out = []
        for doc in await self._store.list_subjects():
            for entry in doc.get("namespaces", []):
                out.append({"subject": doc.get("subject", doc.get("_id")), "namespace": entry.get("name"),
                            "uuid": entry.get("uuid")})
        return sorted(out, key=lambda r: (r["namespace"] or "", r["subject"] or ""))

    async def bootstrap(self) -> None:
        """The well-known `guest` and `whisk.system` namespaces (spec §1.2), unless they exist."""
        for namespace, uuid, key in ((GUEST_NAMESPACE, GUEST_UUID, GUEST_KEY),
                                     (SYSTEM_NAMESPACE, SYSTEM_UUID, SYSTEM_KEY)):
            if await self._store.find_namespace_by_name(namespace) is None:
                try:
                    await self.create(namespace, uuid=uuid, key=key)
                except Conflict:
                    pass                      # another controller bootstrapped it first

    # --- authentication -------------------------------------------------------------------------------------------
    async def authenticate(self, uuid: str, key: str) -> Identity | None:
        """The identity owning (uuid, key), or None; keys of other lengths never match (OpenWhisk's Secret)."""
        cached = self._cache.get((uuid, key))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if len(key) != 64 or not uuid:
            return None
        found = await self._store.find_namespace(uuid)
        if found is None:
            return None
        doc, entry = found
        if doc.get("blocked") or not key_matches(key, entry.get("key_hash", ""), entry.get("key_salt", "")):
            return None
        identity = await self._identity(doc, entry, key)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[(uuid, key)] = (identity, time.monotonic() + self._ttl)
        return identity

    async def identity_of(self, namespace: str) -> Identity | None:
        """The owner of a namespace, without its key (web actions and rules run as the owner)."""
        found = await self._store.find_namespace_by_name(namespace)
        if found is None or found[0].get("blocked"):
            return None
        return await self._identity(found[0], found[1], None)

    async def limits_of(self, namespace: str) -> UserLimits:
        return UserLimits.lenient(await self._store.get_limits(namespace))

    async def _identity(self, doc: dict[str, Any], entry: dict[str, Any], key: str | None) -> Identity:
        namespace = entry["name"]
        limits = (await self.limits_of(namespace)).effective(self._system)
        return Identity(doc.get("subject", doc.get("_id", namespace)), namespace, entry["uuid"], limits, key)


def _default_subject(namespace: str) -> str:
    return namespace if len(namespace) >= SUBJECT_MIN_LENGTH else f"{namespace}-subject"


def parse_api_key(text: str) -> tuple[str, str]:
    """"uuid:key" → (uuid, key); Invalid otherwise (the alarms feeds read the caller's `authKey` with it)."""
    uuid, sep, key = text.partition(":")
    if not sep:
        raise Invalid("an API key has the form uuid:key")
    return check_uuid(uuid), check_key(key)
