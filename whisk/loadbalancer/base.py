"""The load balancer port, from the controller's side (OpenWhisk's LoadBalancer trait)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from whisk.loadbalancer.book import Entry
from whisk.messages import ActivationMessage


class LoadBalancer(Protocol):
    async def publish(self, msg: ActivationMessage, *, namespace_uuid: str, memory_mb: int, timeout_ms: int,
                      concurrency: int, blackbox: bool) -> asyncio.Future[Any] | None:
        """Send the activation to an invoker; for a blocking message, a future that resolves to the activation
        record (dict) or just its id (str) when the record must be read from the store. Raises NoInvokers,
        TooLarge, BackendUnavailable."""

    def in_flight(self, namespace_uuid: str) -> int:
        """Activations of a namespace published and not yet completed (the concurrency throttle reads this)."""

    def in_flight_total(self) -> int:
        """All activations this controller published and not yet completed (graceful drain waits for 0)."""

    def pending(self, activation_id: str) -> Entry | None:
        """The entry of an activation still in flight, if this controller published it."""

    def invokers(self) -> dict[str, str]:
        """{"invoker0": "up", ...} for GET /invokers."""
