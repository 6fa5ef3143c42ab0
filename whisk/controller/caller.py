"""Who starts an activation: the authenticated identity as the activation message carries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whisk.entities.identity import Identity


@dataclass(frozen=True, slots=True)
class Caller:
    """The invoking subject, its namespace and the two invocation limits the throttles apply to it, as the activation
    message carries them (docs/openwhisk.md §5.2), and what of its namespace's limits the invoker needs: whether it
    keeps activation records (`storeActivations`), its bounds on action limits and its payload limit, which the
    message's `user.limits` carries to the invoker as OpenWhisk's does."""

    subject: str
    namespace: str
    uuid: str
    api_key: str
    invocations_per_minute: int
    concurrent_invocations: int
    store_activations: bool = True
    # `NamespaceLimits.invoker_limits`: the bounds the invoker checks each action it runs for this caller against
    # (docs/openwhisk.md §5.3), and the payload limit its results are held to.
    invoker_limits: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        limits: dict[str, Any] = dict(self.invoker_limits)
        if not self.store_activations:
            limits["storeActivations"] = False
        return {"subject": self.subject, "namespace": {"name": self.namespace, "uuid": self.uuid},
                "authkey": {"api_key": self.api_key}, "rights": ["READ", "PUT", "DELETE", "ACTIVATE"],
                "limits": limits}


def caller_for(identity: Identity) -> Caller:
    """The activation message's user for an identity (without a key when it was looked up by namespace)."""
    return Caller(subject=identity.subject, namespace=identity.namespace, uuid=identity.uuid,
                  api_key=identity.api_key or "", invocations_per_minute=identity.limits.invocations_per_minute,
                  concurrent_invocations=identity.limits.concurrent_invocations,
                  store_activations=identity.limits.store_activations,
                  invoker_limits=identity.limits.invoker)
