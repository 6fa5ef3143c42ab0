"""Subjects, namespaces and their API keys (docs/openwhisk.md §1.2, §2.8): create, delete, list, authenticate,
bootstrap.

Keys are stored hashed (`whisk.entities.identity.hash_key`). Successful authentications are cached for a short
time, so the hot path is one dict lookup; a cached identity lives at most `cache_ttl_s` after an admin change made
by another process (this process's own changes drop its entries at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from whisk.entities.errors import Conflict, Invalid, NotFound
from whisk.entities.identity import (GUEST_KEY, GUEST_NAMESPACE, GUEST_UUID, SUBJECT_MIN_LENGTH, SYSTEM_KEY,
                                     SYSTEM_NAMESPACE, SYSTEM_UUID, Identity, canonical_uuid, check_key,
                                     check_namespace, check_subject, check_uuid, generate_key, generate_uuid,
                                     hash_key, key_matches)
from whisk.entities.limits import SystemLimits, UserLimits
from whisk.store.base import SubjectStore

__all__ = ["GUEST_KEY", "GUEST_UUID", "SYSTEM_KEY", "SYSTEM_UUID", "Subjects"]

log = structlog.get_logger(__name__)

CACHE_TTL_S = 30.0
CACHE_MAX = 10_000


class Subjects:
    def __init__(self, store: SubjectStore, system: SystemLimits | None = None, *, cache_ttl_s: float = CACHE_TTL_S,
                 on_new_owner: Callable[[str], None] | None = None) -> None:
        self._store = store
        self._system = system or SystemLimits()
        self._ttl = cache_ttl_s
        self._cache: dict[tuple[str, str], tuple[Identity, float]] = {}
        # The uuid each namespace had when last seen. A namespace deleted (`whisk admin user delete`, another
        # process) and made again has a new one: `on_new_owner(namespace)` then lets the entity cache forget what
        # it still holds of the old owner's.
        self._owners: dict[str, str] = {}
        self._on_new_owner = on_new_owner

    # --- admin ----------------------------------------------------------------------------------------------------
    async def create(self, namespace: str, subject: str | None = None, uuid: str | None = None,
                     key: str | None = None) -> tuple[str, str]:
        """Give `namespace` to `subject` (default: a subject named like the namespace) with a new or given key;
        returns (uuid, key). Conflict if the namespace or the uuid is taken, or the subject is blocked."""
        check_namespace(namespace)
        subject = check_subject(subject if subject is not None else _default_subject(namespace))
        uuid = canonical_uuid(uuid) if uuid is not None else generate_uuid()
        key = check_key(key) if key is not None else generate_key()
        if await self._store.find_namespace_by_name(namespace) is not None:
            raise Conflict(f"Namespace '{namespace}' already exists.")
        if await self._store.find_namespace(uuid) is not None:
            raise Conflict(f"The uuid '{uuid}' is already in use.")
        key_hash, key_salt = hash_key(key)
        doc = await self._store.get_subject(subject) or {"_id": subject, "subject": subject, "namespaces": []}
        if doc.get("blocked"):
            # wskadmin's refusal: the new key would open nothing now, and silently everything once unblocked
            raise Conflict("The subject you want to edit is blocked.")
        doc["namespaces"] = [*doc.get("namespaces", []),
                             {"name": namespace, "uuid": uuid, "key_hash": key_hash, "key_salt": key_salt}]
        await self._store.put_subject(doc)
        log.info("subjects.created", subject=subject, namespace=namespace)
        return uuid, key

    async def revoke(self, namespace: str, subject: str | None = None, uuid: str | None = None,
                     key: str | None = None) -> tuple[str, str]:
        """A new key (given or generated) for an existing namespace, its uuid and everything it holds kept
        (`wskadmin user create --revoke`): the old key stops working on every server within `cache_ttl_s`. Keys
        are stored hashed, so this is the only way back for a tenant who lost theirs. Returns (uuid, key)."""
        found = await self._store.find_namespace_by_name(namespace)
        if found is None:
            raise NotFound(f"Namespace '{namespace}' does not exist.")
        doc, entry = found
        owner = doc.get("subject", doc.get("_id"))
        if subject is not None and subject != owner:
            raise Conflict(f"Namespace '{namespace}' belongs to subject '{owner}'.")
        if uuid is not None and canonical_uuid(uuid) != entry.get("uuid"):
            raise Invalid(f"The namespace's uuid is '{entry.get('uuid')}': a new key keeps it.")
        if doc.get("blocked"):
            raise Conflict("The subject you want to edit is blocked.")
        key = check_key(key) if key is not None else generate_key()
        key_hash, key_salt = hash_key(key)
        await self._store.put_subject({**doc, "namespaces": [
            {**n, "key_hash": key_hash, "key_salt": key_salt} if n.get("name") == namespace else n
            for n in doc.get("namespaces", [])]})
        self._cache = {k: v for k, v in self._cache.items() if k[0] != entry.get("uuid")}
        log.info("subjects.key_revoked", subject=owner, namespace=namespace)
        return entry["uuid"], key

    async def delete(self, namespace: str) -> dict[str, int] | None:
        """Remove the namespace (and its subject when it owned nothing else) with everything it holds: entities,
        activation records and limits, so that a namespace created later under the same name starts empty.
        Returns how many entities and activations went; None if there was no such namespace."""
        found = await self._store.find_namespace_by_name(namespace)
        if found is None:
            return None
        doc, entry = found
        purged = await self._store.purge_namespace(namespace)      # first: a failure leaves the namespace whole
        rest = [n for n in doc.get("namespaces", []) if n.get("name") != namespace]
        if rest:
            await self._store.put_subject({**doc, "namespaces": rest})
        else:
            await self._store.delete_subject(doc["_id"] if "_id" in doc else doc["subject"])
        again = await self._store.purge_namespace(namespace)        # anything written meanwhile
        purged = {k: purged.get(k, 0) + again.get(k, 0) for k in ("entities", "activations")}
        self._cache = {k: v for k, v in self._cache.items() if k[0] != entry.get("uuid")}
        log.info("subjects.deleted", namespace=namespace, **purged)
        return purged

    async def set_blocked(self, subject: str, blocked: bool) -> bool:
        """Block or unblock a subject with all its namespaces (`wskadmin user block|unblock`): its keys no longer
        authenticate, its web actions, API routes and alarms no longer run. False if there is no such subject.
        Servers apply it when their cached identity of the key expires (`cache_ttl_s`)."""
        doc = await self._store.get_subject(subject)
        if doc is None:
            return False
        doc = {k: v for k, v in doc.items() if k != "blocked"}
        await self._store.put_subject({**doc, "blocked": True} if blocked else doc)
        uuids = {entry.get("uuid") for entry in doc.get("namespaces", [])}
        self._cache = {k: v for k, v in self._cache.items() if k[0] not in uuids}
        log.info("subjects.blocked" if blocked else "subjects.unblocked", subject=subject)
        return True

    async def whois(self, uuid: str, key: str) -> dict[str, Any] | None:
        """The subject and namespace a key opens, and whether the subject is blocked (`wskadmin user whois`); None
        if no namespace has this key. The key is checked against its hash, never read back."""
        found = await self._store.find_namespace(uuid)
        if found is None or not key_matches(key, found[1].get("key_hash", ""), found[1].get("key_salt", "")):
            return None
        doc, entry = found
        return {"subject": doc.get("subject", doc.get("_id")), "namespace": entry.get("name"),
                "blocked": bool(doc.get("blocked"))}

    async def list(self) -> list[dict[str, Any]]:
        """Every namespace with its subject and uuid (never keys), and whether the subject is blocked."""
        out = []
        for doc in await self._store.list_subjects():
            for entry in doc.get("namespaces", []):
                out.append({"subject": doc.get("subject", doc.get("_id")), "namespace": entry.get("name"),
                            "uuid": entry.get("uuid"), "blocked": bool(doc.get("blocked"))})
        return sorted(out, key=lambda r: (r["namespace"] or "", r["subject"] or ""))

    async def bootstrap(self) -> None:
        """The well-known `guest` and `whisk.system` namespaces (docs/openwhisk.md §1.2), unless they exist."""
        for namespace, uuid, key in ((GUEST_NAMESPACE, GUEST_UUID, GUEST_KEY),
                                     (SYSTEM_NAMESPACE, SYSTEM_UUID, SYSTEM_KEY)):
            if await self._store.find_namespace_by_name(namespace) is None:
                try:
                    await self.create(namespace, uuid=uuid, key=key)
                except Conflict:
                    pass                      # another controller bootstrapped it first

    # --- authentication -------------------------------------------------------------------------------------------
    def verified(self, uuid: str, key: str) -> Identity | None:
        """The identity of (uuid, key) if this server has checked it lately (no store access, no key check)."""
        cached = self._cache.get((uuid, key))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

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

    # --- namespace limits (wskadmin limits) -------------------------------------------------------------------
    async def set_limits(self, namespace: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge `changes` into the namespace's limits document, as `wskadmin limits set` does: fields not given
        keep their value. Raises Invalid for a value the controller would not read (it would then ignore the
        whole document) or one that means nothing (`UserLimits.check`). Servers see the change when their cached
        identity of the namespace expires."""
        check_namespace(namespace)             # a name no namespace can have would hold limits for nothing
        doc = {**(await self._store.get_limits(namespace) or {}), **changes}
        UserLimits.from_json(doc).check()
        await self._store.put_limits(namespace, doc)
        return doc

    async def exists(self, namespace: str) -> bool:
        return await self._store.find_namespace_by_name(namespace) is not None

    async def get_limits(self, namespace: str) -> dict[str, Any] | None:
        return await self._store.get_limits(namespace)

    async def delete_limits(self, namespace: str) -> bool:
        return await self._store.delete_limits(namespace)

    async def _identity(self, doc: dict[str, Any], entry: dict[str, Any], key: str | None) -> Identity:
        namespace = entry["name"]
        before = self._owners.get(namespace)
        if before != entry["uuid"]:
            if before is not None:                # the old owner's keys, still cached here, are void too
                self._cache = {k: v for k, v in self._cache.items() if v[0].namespace != namespace}
                if self._on_new_owner is not None:
                    self._on_new_owner(namespace)
            if len(self._owners) >= CACHE_MAX:
                self._owners.clear()
            self._owners[namespace] = entry["uuid"]
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
