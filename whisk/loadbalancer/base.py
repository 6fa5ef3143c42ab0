"""The load balancer port, from the controller's side (OpenWhisk's LoadBalancer trait), and the types it speaks:
the `Entry` of an activation in flight, `Forced` for a waiter whose activation was completed without an ack, and
the `Released` callback through which the controller learns that an entry closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from whisk.messages import ActivationMessage

# What a caller is told when the bus refused its activation's message; the bus's own words (the topic, the client's
# exception) go to the log, as the stores keep theirs ("The database is unavailable.").
BUS_UNAVAILABLE = "The message bus is unavailable."


@dataclass(slots=True)
class Entry:
    activation_id: str
    namespace_uuid: str
    namespace: str
    action_path: str
    invoker: int
    memory_mb: int
    concurrency: int
    blocking: bool
    action_version: str = ""                       # the action's version, for GET /activation
    result: asyncio.Future[Any] | None = None      # the record (an Activation in process, else its dict) or its id
    closed: asyncio.Future[None] | None = None     # a blocking entry's: done when it closes (its record is stored)
    timer: asyncio.TimerHandle | None = None


class Forced(Exception):
    """No completion or active ack arrived in time (docs/openwhisk.md §5.5)."""


# (the entry, its outcome: "success", "system_error", "timeout", "lost" (forced: its invoker went silent), "stopped"
# (forced: this controller stopped) or "discarded")
Released = Callable[[Entry, str], None]


class LoadBalancer(Protocol):
    async def publish(self, msg: ActivationMessage, *, namespace_uuid: str, memory_mb: int, timeout_ms: int,
                      concurrency: int, blackbox: bool) -> asyncio.Future[Any] | None:
        """Send the activation to an invoker; for a blocking message, a future that resolves to the activation
        record (dict) or just its id (str) when the record must be read from the store. Raises NoInvokers,
        TooLarge, BackendUnavailable."""

    def in_flight(self, namespace_uuid: str) -> int:
        """Activations of a namespace published and not yet completed (the concurrency throttle reads this)."""

    def controllers(self) -> int:
        """How many controllers share the invokers and each namespace's throttles (1 unless sharding)."""

    def pending(self, activation_id: str) -> Entry | None:
        """The entry of an activation still in flight, if this controller published it."""

    def entries(self) -> list[Entry]:
        """Every activation in flight (GET /activation, metrics)."""

    @property
    def forced_total(self) -> int:
        """Completions forced since start with no completion ack: the ack timeout ran out, or the invoker went silent
        (metrics)."""

    def invokers(self) -> dict[str, str]:
        """{"invoker0": "up", ...} for GET /invokers."""

    def stop(self) -> None:
        """The stop's grace is over: close every activation still in flight (outcome "stopped"), so that their
        blocking callers, woken with Forced, answer with the records the controller stores for them while the HTTP
        server still lets them answer."""
