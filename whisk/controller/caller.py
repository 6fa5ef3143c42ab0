"""Who starts an activation: the authenticated identity as the activation message carries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Caller:
    """The invoking subject, its namespace and the two invocation limits the throttles apply to it, as the activation
    message carries them (docs/openwhisk.md §5.2), and whether its namespace keeps activation records (the limit
    `storeActivations`, which the message's `user.limits` carries to the invoker as OpenWhisk's does)."""

    subject: str
    namespace: str
    uuid: str
    api_key: str
    invocations_per_minute: int
    concurrent_invocations: int
    store_activations: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "namespace": {"name": self.namespace, "uuid": self.uuid},
                "authkey": {"api_key": self.api_key}, "rights": ["READ", "PUT", "DELETE", "ACTIVATE"],
                "limits": {} if self.store_activations else {"storeActivations": False}}
