"""LeanBalancer (spec §9.3): every activation goes to the one invoker, over the bus, with the same in-flight
bookkeeping and completion-ack timeouts as the sharding balancer but no slots and no health protocol."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from whisk.loadbalancer.book import ActivationBook, Booked, Entry
from whisk.messages import Acknowledgement, ActivationMessage, completed_topic, invoker_topic
from whisk.messaging.base import Bus

log = structlog.get_logger(__name__)


class LeanBalancer(Booked):
    def __init__(self, bus: Bus, *, controller: int, invoker: int = 0, timeout_factor: float = 2.0,
                 timeout_addon_s: float = 60.0, on_release: Callable[[Entry, str], None] | None = None) -> None:
        self._bus = bus
        self._controller = controller
        self._invoker = invoker
        self._book = ActivationBook(timeout_factor=timeout_factor, timeout_addon_s=timeout_addon_s,
                                    on_release=on_release)
        self._acks: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LeanBalancer:
        await self._bus.ensure_topic(completed_topic(self._controller))
        await self._bus.ensure_topic(invoker_topic(self._invoker))
        self._acks = asyncio.create_task(self._consume_acks(), name="lean-balancer-acks")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._acks is not None:
            self._acks.cancel()
            await asyncio.gather(self._acks, return_exceptions=True)
        self._book.fail_all("controller shutting down")

    async def _consume_acks(self) -> None:
        async for data in self._bus.consume(completed_topic(self._controller), f"completed{self._controller}"):
            try:
                self._book.acknowledge(Acknowledgement.from_bytes(data))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("loadbalancer.ack.malformed", error=str(exc))

    async def publish(self, msg: ActivationMessage, *, namespace_uuid: str, memory_mb: int, timeout_ms: int,
                      concurrency: int, blackbox: bool) -> asyncio.Future[Any] | None:
        entry = self._book.add(Entry(
            activation_id=msg.activation_id, namespace_uuid=namespace_uuid, namespace=msg.user["namespace"]["name"],
            action_path=msg.action_path, invoker=self._invoker, memory_mb=memory_mb, concurrency=concurrency,
            blocking=msg.blocking, started=time.monotonic(), started_ms=msg.received_ms,
            action_version=str(msg.action.get("version", ""))), timeout_ms)
        try:
            await self._bus.send(invoker_topic(self._invoker), msg.to_bytes())
        except BaseException:
            self._book.discard(msg.activation_id)   # never sent: no slot to hold, nothing to wait for
            raise
        return entry.result

    def invokers(self) -> dict[str, str]:
        return {}

