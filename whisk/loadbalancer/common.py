"""What every balancer over the bus shares (OpenWhisk's CommonLoadBalancer): the book of activations in flight,
publishing a message to the invoker a subclass places it on, consuming the acks on `completed{C}`, and closing.

A subclass says where a message goes (`_place`) and may watch what happens: `_dispatched` after a send,
`_intercepted` for acks that are not the book's (the sharding balancer's health test actions), `_released` when
an entry closes, and `_loops` for its own background tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Self

import structlog

from whisk.entities.errors import BackendUnavailable
from whisk.loadbalancer.base import BUS_UNAVAILABLE, Entry, Released
from whisk.loadbalancer.book import ActivationBook
from whisk.messages import Acknowledgement, ActivationMessage, completed_topic, invoker_topic
from whisk.messaging.base import Bus

log = structlog.get_logger(__name__)


class CommonBalancer:
    def __init__(self, bus: Bus, *, controller: int, timeout_factor: float, timeout_addon_s: float,
                 on_release: Released | None, timeout_std_s: float = 60.0) -> None:
        self._bus = bus
        self._controller = controller
        self._on_release = on_release
        self._book = ActivationBook(timeout_factor=timeout_factor, timeout_addon_s=timeout_addon_s,
                                    timeout_std_s=timeout_std_s, on_release=self._released)
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()

    # -- what a subclass decides ----------------------------------------------------------------------------------

    def _place(self, msg: ActivationMessage, *, memory_mb: int, concurrency: int, blackbox: bool) -> int:
        """The invoker for this activation."""
        raise NotImplementedError

    def _dispatched(self, invoker: int, activation_id: str) -> None:
        """The message is on the invoker's topic."""

    def _intercepted(self, ack: Acknowledgement) -> bool:
        """True for an ack the subclass consumed itself (it then never reaches the book)."""
        return False

    def _released(self, entry: Entry, outcome: str) -> None:
        """An entry closed ("success", "system_error", "timeout", "lost", "stopped" or "discarded"): tell the
        controller."""
        if self._on_release is not None:
            self._on_release(entry, outcome)

    async def _prepare(self) -> None:
        """Topics and documents the balancer needs before it takes work."""

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        """Background loops besides the ack consumer, run until close."""
        return []

    # -- life -------------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._bus.ensure_topic(completed_topic(self._controller))
        await self._prepare()
        name = type(self).__name__
        self._tasks = [asyncio.create_task(self._consume_acks(), name=f"{name}-acks")]
        self._tasks += [asyncio.create_task(loop, name=f"{name}-{getattr(loop, '__name__', 'loop').strip('_')}")
                        for loop in self._loops()]
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = self._tasks + list(self._sends)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self.stop()

    def stop(self) -> None:
        self._book.fail_all("controller shutting down")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """A send in the background, cancelled on close."""
        task = asyncio.get_running_loop().create_task(work)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    # -- the LoadBalancer port --------------------------------------------------------------------------------------

    async def publish(self, msg: ActivationMessage, *, namespace_uuid: str, memory_mb: int, timeout_ms: int,
                      concurrency: int, blackbox: bool) -> asyncio.Future[Any] | None:
        invoker = self._place(msg, memory_mb=memory_mb, concurrency=concurrency, blackbox=blackbox)
        entry = self._book.add(Entry(
            activation_id=msg.activation_id, namespace_uuid=namespace_uuid, namespace=msg.user["namespace"]["name"],
            action_path=msg.action_path, invoker=invoker, memory_mb=memory_mb, concurrency=concurrency,
            blocking=msg.blocking,
            action_version=str(msg.action.get("version", ""))), timeout_ms)
        try:
            await self._bus.send(invoker_topic(invoker), msg)
        except BaseException as exc:
            self._book.discard(msg.activation_id)   # never sent: give the slot back, wait for nothing
            if isinstance(exc, BackendUnavailable):
                log.warning("loadbalancer.send_failed", invoker=invoker, error=str(exc))
                raise BackendUnavailable(BUS_UNAVAILABLE) from exc
            raise
        # Which invoker's log holds the rest of this activation (its lines carry the same tid and activation_id).
        log.debug("loadbalancer.published", invoker=invoker)
        if self._book.get(msg.activation_id) is entry:
            # Not when its completion came first (the invoker answered before the broker's answer to the send):
            # the balancer would wait on the invoker for work it has done.
            self._dispatched(invoker, msg.activation_id)
        return entry.result

    def in_flight(self, namespace_uuid: str) -> int:
        return self._book.in_flight(namespace_uuid)

    def controllers(self) -> int:
        return 1

    def pending(self, activation_id: str) -> Entry | None:
        return self._book.get(activation_id)

    def entries(self) -> list[Entry]:
        return self._book.entries()

    @property
    def forced_total(self) -> int:
        return self._book.forced_total

    @property
    def book(self) -> ActivationBook:
        return self._book

    # -- acks -------------------------------------------------------------------------------------------------------

    async def _consume_acks(self) -> None:
        async for data in self._bus.consume(completed_topic(self._controller), f"completed{self._controller}"):
            try:
                ack = Acknowledgement.read(data)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("loadbalancer.ack.malformed", error=str(exc))
                continue
            if not self._intercepted(ack):
                self._book.acknowledge(ack)
