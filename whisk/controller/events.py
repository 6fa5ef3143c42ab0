"""The user events a controller publishes on the `events` topic (docs/openwhisk.md §9.2), beside the invoker's own.

The invoker reports every primitive activation it runs. The controller reports what only it sees: the records of
the sequences and compositions it runs and of the actions it serves itself (the alarms feeds), the invocations and
trigger fires its throttles refuse (`Metric` events named `TimedRateLimit` and `ConcurrentRateLimit`), and the
namespace's activations in flight with each invocation its concurrency throttle admits (`ConcurrentInvocations`,
counting that one), as OpenWhisk's entitlement check sends them. Events are best effort:
they are sent in the background, so a slow or absent bus never delays an answer, and a failed send is logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from whisk.entities.activation import Activation
from whisk.entities.errors import WhiskError
from whisk.messages import EVENTS_TOPIC, activation_event, metric_event
from whisk.messaging.base import Bus

log = structlog.get_logger(__name__)

TIMED_RATE_LIMIT = "TimedRateLimit"
CONCURRENT_RATE_LIMIT = "ConcurrentRateLimit"
CONCURRENT_INVOCATIONS = "ConcurrentInvocations"


class UserEvents:
    def __init__(self, bus: Bus | None, *, controller: int) -> None:
        self._bus = bus                 # None: user events are off (WHISK_USER_EVENTS)
        self._source = f"controller{controller}"
        self._sending: set[asyncio.Task[None]] = set()

    def activation(self, record: Activation, user: dict[str, Any]) -> None:
        if self._bus is not None:
            self._send(activation_event(record, source=self._source, user=user))

    @property
    def enabled(self) -> bool:
        return self._bus is not None

    def refused(self, metric: str, user: dict[str, Any]) -> None:
        self.metric(metric, 1, user)

    def metric(self, metric: str, value: int, user: dict[str, Any]) -> None:
        if self._bus is not None:
            self._send(metric_event(metric, value, source=self._source, user=user))

    def _send(self, message: bytes) -> None:
        task = asyncio.create_task(self._publish(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, message: bytes) -> None:
        assert self._bus is not None
        try:
            await self._bus.send(EVENTS_TOPIC, message)
        except WhiskError as exc:
            log.warning("controller.event.failed", error=str(exc))

    async def close(self) -> None:
        """Let the events already started reach the bus before it closes."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
