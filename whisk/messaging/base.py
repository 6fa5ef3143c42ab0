"""The message bus port (OpenWhisk's MessagingProvider, docs/openwhisk.md §5): topics carry JSON bytes.

Topics: `invoker{N}` (activation messages), `completed{C}` (acks), `health` (pings), `cacheInvalidation`,
`events`. Each consumer group receives every message of a topic once; two groups on one topic each get all.

A producer sends bytes or a `Message` (an object that encodes itself: activation messages and acks). A bus between
processes sends its bytes; the in-process bus hands the consumer the object itself, which the consumer reads with
the message class's `read` (the object as it is, or decoded from bytes). Such an object is never changed once sent:
producers build a new one for each activation or ack, and consumers only read it.

Whether the bus answers (`BusAnswers`, the gauge whisk_bus_up) is what its user sees of it: the invoker learns it
from its pings and acks, the sharding balancer from a check of its own every second. Both keep the same two times
and ask the same questions of them, each with its own idea of how late an answer may be.
"""

from __future__ import annotations

import time
from typing import Protocol

# Largest message a bus accepts: the payload limit plus OpenWhisk's serialization overhead (docs/openwhisk.md §5.1,
# E/ActivationEntityLimit.scala). Over it, `send` raises TooLarge and callers re-send a shrunk ack
# (docs/openwhisk.md §5.3).
MESSAGE_OVERHEAD_BYTES = 6068
MAX_MESSAGE_BYTES = 1_048_576 + MESSAGE_OVERHEAD_BYTES


class Message(Protocol):
    """A message that is sent as its JSON bytes."""

    def to_bytes(self) -> bytes: ...


def encoded(message: bytes | Message) -> bytes:
    return message if isinstance(message, bytes) else message.to_bytes()


class Feed(Protocol):
    """What `Bus.consume` returns: an async iterator of the messages, `handled` to count the message in hand as
    handled before asking for the next, and `aclose` to leave the group when the consumer is done."""

    def __aiter__(self) -> Feed: ...

    async def __anext__(self) -> bytes | Message: ...

    def handled(self) -> None: ...

    async def aclose(self) -> None: ...


class Bus(Protocol):
    async def ensure_topic(self, topic: str, *, partitions: int = 1) -> None:
        """Create the topic when absent (Kafka); a no-op where topics need no creation."""

    async def send(self, topic: str, message: bytes | Message) -> None:
        """Publish one message; raises TooLarge when its bytes exceed the bus's limit (and whatever its encoding
        raises: ValueError, RecursionError), BackendUnavailable when the bus does not answer."""

    def consume(self, topic: str, group: str, *, commit_at_once: bool = False) -> Feed:
        """Messages of `topic` for consumer group `group`, in order. The iterator asks for the next message only
        when the caller is ready for it (that is how an invoker pulls no more than its pool can take): a message
        is committed once the caller asks for the one after it, or says it handled it (`Feed.handled`).
        `commit_at_once`: each handled message is committed right away (in the background) rather than in batches,
        so that a consumer that dies hands its successor only what it never took (the invoker's feed: OpenWhisk's
        commits what it takes before running it, at most once)."""

    async def ping(self) -> None:
        """Raise BackendUnavailable when the bus does not answer."""


class BusAnswers:
    """The last time the bus answered one of this process's requests, and the last time it did not.

    `late_s`: how long after its last answer the bus counts as away though no request has failed yet, since a request
    to a broker that is stopped (not gone) hangs until the bus's own timeout. None: nothing asks the bus regularly, so
    silence says nothing.
    """

    __slots__ = ("answered_at", "failed_at", "late_s")

    def __init__(self, *, late_s: float | None) -> None:
        self.late_s = late_s
        self.answered_at = time.monotonic()   # the process starts on a bus that has just made its topics
        self.failed_at = float("-inf")        # and has never refused it

    def answered(self) -> float | None:
        """Note an answer; the seconds the bus was away if it had been (for a log line), else None."""
        now = time.monotonic()
        away_s = now - self.failed_at if self.answered_at < self.failed_at else None
        self.answered_at = now
        return away_s

    def failed(self) -> bool:
        """Note a failure; whether it is the first since an answer (for a log line)."""
        first = self.failed_at < self.answered_at
        self.failed_at = time.monotonic()
        return first

    def answers(self) -> bool:
        """The bus answered the last request, and lately."""
        return self.answered_at >= self.failed_at and self._lately(time.monotonic())

    def answered_throughout(self, span_s: float) -> bool:
        """No request failed during the last `span_s`, and the bus answered lately."""
        now = time.monotonic()
        return now - self.failed_at >= span_s and self._lately(now)

    def _lately(self, now: float) -> bool:
        return self.late_s is None or now - self.answered_at <= self.late_s
