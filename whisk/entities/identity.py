"""Identities, subjects and API keys (docs/openwhisk.md §1.2, §2.8; OpenWhisk `E/Identity.scala`, `E/Secret.scala`,
`E/Subject.scala`).

An API key is "uuid:key" with a 64-character key. Stored keys are hashed: sha256 over a per-key random salt and the
key, compared with `hmac.compare_digest`, so the subjects store never holds a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from whisk.entities.errors import Invalid
from whisk.entities.limits import NamespaceLimits, SystemLimits, UserLimits
from whisk.entities.names import namespace_segment

KEY_LENGTH = 64
SUBJECT_MIN_LENGTH = 5
_ALPHANUMERIC = string.ascii_letters + string.digits

# The well-known development keys (ansible/files/auth.guest, auth.whisk.system; standalone's whisk.users).
GUEST_NAMESPACE = "guest"
GUEST_UUID = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"
GUEST_KEY = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
SYSTEM_NAMESPACE = "whisk.system"
SYSTEM_UUID = "789c46b1-71f6-4ed5-8c54-816aa4f8c502"
SYSTEM_KEY = "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"

RIGHTS = ("READ", "PUT", "DELETE", "ACTIVATE")


def generate_key() -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(KEY_LENGTH))


def generate_uuid() -> str:
    return str(uuidlib.uuid4())


def check_key(key: str) -> str:
    if not isinstance(key, str) or len(key) != KEY_LENGTH:
        raise Invalid(f"secret must be exactly {KEY_LENGTH} characters")
    return key


def check_uuid(text: str) -> str:
    try:
        uuidlib.UUID(text)
    except (ValueError, TypeError, AttributeError):
        raise Invalid(f"not a uuid: {text!r}") from None
    return text


def canonical_uuid(text: str) -> str:
    """A valid uuid in its one spelling (lower case, hyphens), as wskadmin stores it: the same uuid written
    otherwise must not pass for another one."""
    return str(uuidlib.UUID(check_uuid(text)))


def check_subject(subject: str) -> str:
    if not isinstance(subject, str) or len(subject) < SUBJECT_MIN_LENGTH:
        raise Invalid(f"subject must be at least {SUBJECT_MIN_LENGTH} characters")
    # A subject is its document's id in CouchDB's subjects database, beside the design documents (CouchDB reserves
    # ids starting with "_") and the limits documents ("NS/limits"), which it would replace.
    if subject.startswith("_") or subject.endswith("/limits"):
        raise Invalid("a subject may neither start with '_' nor end with '/limits'")
    return subject


def check_namespace(namespace: str) -> str:
    return namespace_segment(namespace)


def hash_key(key: str, salt: str | None = None) -> tuple[str, str]:
    """(hash, salt), both hex; a fresh random salt unless one is given."""
    salt = salt if salt is not None else secrets.token_hex(16)
    digest = hashlib.sha256(bytes.fromhex(salt) + key.encode()).hexdigest()
    return digest, salt


def key_matches(key: str, key_hash: str, key_salt: str) -> bool:
    try:
        candidate, _ = hash_key(key, key_salt)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, key_hash)


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: its subject, the namespace it owns, the key's uuid and the limits in force for the
    namespace (system defaults overlaid by its limits document). `key` is the secret when the caller presented it
    (Basic auth); None when the identity was looked up by namespace (web actions, rule firing)."""

    subject: str
    namespace: str
    uuid: str
    limits: NamespaceLimits = UserLimits().effective(SystemLimits())
    key: str | None = None

    @property
    def api_key(self) -> str | None:
        return f"{self.uuid}:{self.key}" if self.key is not None else None

    def owns(self, namespace: str) -> bool:
        return namespace == self.namespace

    def to_json(self) -> dict[str, Any]:
        """OpenWhisk's Identity JSON (used in activation messages)."""
        return {"subject": self.subject, "namespace": {"name": self.namespace, "uuid": self.uuid},
                "authkey": {"api_key": self.api_key or ""}, "rights": list(RIGHTS),
                "limits": self.limits.overrides.to_json()}
