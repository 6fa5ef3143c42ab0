"""The in-process bus (standalone, tests): one append-only log per topic, one read position per consumer group.

What it keeps, compared with Kafka (OpenWhisk's consumers use `auto.offset.reset=earliest`):
- A topic exists from `ensure_topic`, its first `send` or its first `consume`; from then on it keeps every message.
  A group that starts consuming later begins at the oldest message still kept, as a new Kafka group does.
- Kafka drops messages by age (retention); here a message is dropped once every group that has joined the topic
  has committed it, so a group that joins after the others finished sees only what is left (in standalone each
  topic has one group, so this never shows).
- `retention` caps what a topic keeps for a slow group: past it the oldest messages go, as Kafka's size-based
  retention does, and a group behind them skips ahead. A topic no group has joined keeps the last `unread` to
  twice `unread` messages (10,000): only this process can join it, and `events` without a reader would otherwise
  hold up to 200,000 messages (some 100 MB).
- Commits are Kafka's: a message counts as handled once the consumer asks for the next one. When the last
  consumer of a group closes, the group rewinds to its last commit, so a re-created consumer gets the
  uncommitted message again (at least once). Group positions live as long as the bus object: none survive a restart.
- Several consumers of one group on one topic share its messages (each goes to one of them), as consumers of a
  group share partitions.

Messages are kept and handed out as the caller sent them, bytes or a message object (`whisk.messaging.base.Message`),
with no copy and no decoding: a consumer of activations or acks gets the very object the producer built. An object
is encoded once, to hold it to the size limit a bus between processes would apply (and to raise what its encoding
raises), and the bytes are dropped. Passing the objects instead of their bytes took 7-8 % off the event loop's CPU
per warm invoke (docs/performance.md); in exchange an activation waiting on its topic holds its object (up to ~3.3 KB
for a small one) rather than its bytes (~0.6 KB), a backlog the throttles bound.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

from whisk.entities.errors import BackendUnavailable, TooLarge
from whisk.messaging.base import MAX_MESSAGE_BYTES, Message, encoded


class _Group:
    __slots__ = ("position", "committed", "consumers")

    def __init__(self, start: int) -> None:
        self.position = start  # next offset to hand out
        self.committed = start  # every offset below it has been handled
        self.consumers: weakref.WeakSet[MemoryConsumer] = weakref.WeakSet()


class _Topic:
    __slots__ = ("log", "base", "groups", "waiters")

    def __init__(self) -> None:
        self.log: list[bytes | Message] = []
        self.base = 0  # offset of log[0]
        self.groups: dict[str, _Group] = {}
        self.waiters: list[asyncio.Future[None]] = []

    @property
    def end(self) -> int:
        return self.base + len(self.log)

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def trim(self, retention: int) -> None:
        floor = min((g.committed for g in self.groups.values()), default=self.base)
        floor = max(floor, self.end - retention)
        drop = floor - self.base
        # Drop in bulk (at least half the list) so that a steady stream costs amortized O(1) per message.
        if drop > 0 and drop * 2 >= len(self.log):
            del self.log[:drop]
            self.base = floor


class MemoryBus:
    """The Bus port in process; an async context manager whose exit ends every consumer's iteration."""

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES, retention: int = 100_000,
                 unread: int = 10_000) -> None:
        self._max = max_message_bytes
        self._retention = retention
        self._unread = unread
        self._topics: dict[str, _Topic] = {}
        self._closed = False

    async def __aenter__(self) -> MemoryBus:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        for topic in self._topics.values():
            topic.wake()

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic()
        return topic

    async def ensure_topic(self, topic: str, *, partitions: int = 1) -> None:
        """Partitions do not apply: each topic is one ordered log."""
        self._check_open()
        self._topic(topic)

    async def send(self, topic: str, message: bytes | Message) -> None:
        self._check_open()
        size = len(encoded(message))
        if size > self._max:
            raise TooLarge(f"The message of {size} bytes exceeds the bus limit of {self._max} bytes.")
        t = self._topics.get(topic) or self._topic(topic)
        t.log.append(message)
        keep = self._retention if t.groups else self._unread
        if len(t.log) >= 2 * keep:
            t.trim(keep)
        if t.waiters:
            t.wake()

    def consume(self, topic: str, group: str, *, commit_at_once: bool = False) -> MemoryConsumer:
        """Every handled message is committed at once here, whatever `commit_at_once` says."""
        self._check_open()
        t = self._topic(topic)
        g = t.groups.get(group)
        if g is None:
            g = t.groups[group] = _Group(t.base)
        elif not g.consumers:
            g.position = g.committed  # no live consumer: hand out the uncommitted message again
        consumer = MemoryConsumer(self, t, g)
        g.consumers.add(consumer)
        return consumer

    async def ping(self) -> None:
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("The message bus is closed.")


class MemoryConsumer:
    """One consumer of a group: `async for message in consumer`; `aclose()` leaves the group."""

    __slots__ = ("_bus", "_topic", "_group", "_taken", "_closed", "__weakref__")

    def __init__(self, bus: MemoryBus, topic: _Topic, group: _Group) -> None:
        self._bus = bus
        self._topic = topic
        self._group = group
        self._taken = -1  # offset handed out and not yet committed
        self._closed = False

    def __aiter__(self) -> MemoryConsumer:
        return self

    async def __anext__(self) -> bytes | Message:
        topic, group = self._topic, self._group
        self.handled()  # the caller asks for the next message: the one it holds is handled
        while not (self._closed or self._bus._closed):
            position = group.position
            if position < topic.base:  # dropped by retention while this group lagged
                position = topic.base
            if position < topic.end:
                group.position = position + 1
                self._taken = position
                return topic.log[position - topic.base]
            waiter = asyncio.get_running_loop().create_future()
            topic.waiters.append(waiter)
            await waiter
        raise StopAsyncIteration

    def handled(self) -> None:
        """The message in hand is handled: committed."""
        if self._taken >= 0:
            if self._taken >= self._group.committed:
                self._group.committed = self._taken + 1
                self._topic.trim(self._bus._retention)
            self._taken = -1

    async def aclose(self) -> None:
        """Leave the group without committing the message in hand; a waiting `__anext__` ends."""
        if self._closed:
            return
        self._closed = True
        group = self._group
        group.consumers.discard(self)
        if not group.consumers:
            group.position = group.committed
        self._topic.wake()
