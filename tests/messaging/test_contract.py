"""One contract for every Bus adapter, run against each real backend: memory in process, Kafka on Apache Kafka.

Topics get unique names per test, since the broker lives for the whole session.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from whisk.entities.errors import BackendUnavailable, TooLarge
from whisk.messages import Acknowledgement
from whisk.messaging.base import MAX_MESSAGE_BYTES, Bus
from whisk.messaging.memory import MemoryBus

WAIT_S = 20.0  # a deadline, not a pause: every wait below ends as soon as its message arrives


def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def group_name() -> str:
    """Unique per test: on Kafka a group spans topics, and one shared name would rebalance across tests."""
    return f"g-{uuid.uuid4().hex[:12]}"


async def take(consumer: AsyncIterator[bytes], n: int) -> list[bytes]:
    return [await asyncio.wait_for(anext(consumer), WAIT_S) for _ in range(n)]


async def close(consumer: AsyncIterator[bytes]) -> None:
    await consumer.aclose()  # type: ignore[attr-defined]


async def test_order_per_topic(bus: Bus) -> None:
    a, b = topic_name(), topic_name()
    for topic in (a, b):
        await bus.ensure_topic(topic)
    for i in range(50):
        await bus.send(a, b"a%d" % i)
        await bus.send(b, b"b%d" % i)
    ca, cb = bus.consume(a, group_name()), bus.consume(b, group_name())
    try:
        assert await take(ca, 50) == [b"a%d" % i for i in range(50)]
        assert await take(cb, 50) == [b"b%d" % i for i in range(50)]
    finally:
        await close(ca)
        await close(cb)


async def test_send_to_missing_topic_creates_it(bus: Bus) -> None:
    topic = topic_name()
    await bus.send(topic, b"first")
    consumer = bus.consume(topic, group_name())
    try:
        assert await take(consumer, 1) == [b"first"]
    finally:
        await close(consumer)


async def test_two_groups_each_get_everything(bus: Bus) -> None:
    topic = topic_name()
    await bus.ensure_topic(topic)
    sent = [b"m%d" % i for i in range(20)]
    for m in sent[:10]:
        await bus.send(topic, m)
    g1, g2 = bus.consume(topic, group_name()), bus.consume(topic, group_name())
    try:
        first = await take(g1, 10)
        for m in sent[10:]:
            await bus.send(topic, m)
        assert first + await take(g1, 10) == sent
        assert await take(g2, 20) == sent
    finally:
        await close(g1)
        await close(g2)


async def test_waiting_consumer_gets_a_later_message(bus: Bus) -> None:
    topic = topic_name()
    await bus.ensure_topic(topic)
    consumer = bus.consume(topic, group_name())
    try:
        pending = asyncio.ensure_future(anext(consumer))
        await bus.send(topic, b"late")
        assert await asyncio.wait_for(pending, WAIT_S) == b"late"
    finally:
        await close(consumer)


async def taken_then_resumed(bus: Bus, sent: int, taken: int, *, handled: bool) -> tuple[list[bytes], list[bytes]]:
    """Send `sent` messages to a new topic, take `taken` with a consumer of a new group (saying the one in hand is
    handled if asked) and close it: what it took, and all the group's next consumer takes."""
    topic = topic_name()
    await bus.ensure_topic(topic)
    for i in range(sent):
        await bus.send(topic, b"m%d" % i)
    group = group_name()
    first = bus.consume(topic, group)
    try:
        took = await take(first, taken)
        if handled:
            first.handled()
    finally:
        await close(first)
    again = bus.consume(topic, group)
    try:
        return took, await take(again, sent - taken + (0 if handled else 1))
    finally:
        await close(again)


async def test_group_resumes_after_its_last_commit(bus: Bus) -> None:
    """A message counts as handled once the caller asks for the next one: the one in hand when the consumer
    closes comes again to the group's next consumer (at least once), and nothing before it does. Memory keeps
    group positions in the bus object (lost with the process); Kafka keeps them in the broker, so a new bus
    resumes too (test_kafka.py)."""
    took, then = await taken_then_resumed(bus, 6, 3, handled=False)
    assert took == [b"m0", b"m1", b"m2"]                 # m0, m1 committed; m2 in hand
    assert then == [b"m2", b"m3", b"m4", b"m5"]


async def test_the_message_in_hand_said_handled_is_committed_on_close(bus: Bus) -> None:
    """`handled()` counts the message in hand as handled before the next is asked for (the invoker's, once it has
    started it): closing commits it with the others, so the group's next consumer starts after it."""
    took, then = await taken_then_resumed(bus, 3, 2, handled=True)
    assert took == [b"m0", b"m1"] and then == [b"m2"]


async def test_backpressure_nothing_taken_beyond_what_was_asked(bus: Bus) -> None:
    """A consumer that has not asked for more takes nothing more: after one message, nine are still the group's,
    and a message sent meanwhile reaches the group only when asked for."""
    topic = topic_name()
    await bus.ensure_topic(topic)
    for i in range(10):
        await bus.send(topic, b"m%d" % i)
    group = group_name()
    slow = bus.consume(topic, group)
    try:
        assert await take(slow, 1) == [b"m0"]
        await bus.send(topic, b"m10")
    finally:
        await close(slow)
    after = bus.consume(topic, group)
    try:
        assert await take(after, 11) == [b"m%d" % i for i in range(11)]
    finally:
        await close(after)


async def test_too_large(bus: Bus) -> None:
    topic = topic_name()
    await bus.ensure_topic(topic)
    with pytest.raises(TooLarge):
        await bus.send(topic, b"x" * (MAX_MESSAGE_BYTES + 1))
    biggest = b"y" * MAX_MESSAGE_BYTES  # payload limit + overhead still passes
    await bus.send(topic, biggest)
    await bus.send(topic, b"small")
    consumer = bus.consume(topic, group_name())
    try:
        assert await take(consumer, 2) == [biggest, b"small"]
    finally:
        await close(consumer)


async def test_a_message_object_is_read_back_as_what_it_encodes(bus: Bus) -> None:
    """Activation messages and acks are sent as objects: a bus between processes sends their bytes, the in-process
    bus hands over the object itself (below); either way `read` gives an equal message."""
    topic = topic_name()
    await bus.ensure_topic(topic)
    ack = Acknowledgement(["tid", 1], "a" * 32, {"activationId": "a" * 32, "response": {"result": {"n": 1}}})
    await bus.send(topic, ack)
    consumer = bus.consume(topic, group_name())
    try:
        [taken] = await take(consumer, 1)
        assert Acknowledgement.read(taken) == ack
    finally:
        await close(consumer)


async def test_a_message_object_is_held_to_the_size_limit_of_its_bytes(bus: Bus) -> None:
    topic = topic_name()
    await bus.ensure_topic(topic)
    large = Acknowledgement(["tid", 1], "b" * 32, {"activationId": "b" * 32, "result": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(TooLarge):
        await bus.send(topic, large)
    circular: dict[str, object] = {}
    circular["self"] = circular
    with pytest.raises(ValueError):                 # what cannot be encoded is refused, as encoding it first was
        await bus.send(topic, Acknowledgement(["tid", 1], "c" * 32, circular))


async def test_memory_hands_the_consumer_the_very_object_sent() -> None:
    async with MemoryBus() as bus:
        topic = topic_name()
        msg = Acknowledgement(["tid", 1], "d" * 32, None, {"instance": 0})
        await bus.send(topic, msg)
        consumer = bus.consume(topic, group_name())
        try:
            [taken] = await take(consumer, 1)
            assert taken is msg and Acknowledgement.read(taken) is msg      # no copy, no decoding
        finally:
            await close(consumer)


async def test_ping(bus: Bus) -> None:
    await bus.ping()


async def test_many_messages_quickly(bus: Bus, request: pytest.FixtureRequest) -> None:
    """Throughput, reported (not asserted): send n, then consume n in order."""
    n = 10_000
    topic = topic_name()
    await bus.ensure_topic(topic)
    messages = [b'{"activationId":"%032d"}' % i for i in range(n)]
    start = time.perf_counter()
    for m in messages:
        await bus.send(topic, m)
    sent_s = time.perf_counter() - start
    consumer = bus.consume(topic, group_name())
    start = time.perf_counter()
    got = []
    try:
        async with asyncio.timeout(WAIT_S * 3):
            async for m in consumer:
                got.append(m)
                if len(got) == n:
                    break
    finally:
        await close(consumer)
    consumed_s = time.perf_counter() - start
    assert got == messages
    print(f"\n{request.node.callspec.id}: send {n / sent_s:,.0f} msg/s, consume {(n - 1) / consumed_s:,.0f} msg/s")


async def test_memory_close_ends_consumers_and_refuses_sends() -> None:
    bus = MemoryBus()
    consumer = bus.consume("t", "g")
    pending = asyncio.ensure_future(anext(consumer))
    await bus.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, WAIT_S)
    with pytest.raises(BackendUnavailable):
        await bus.send("t", b"m")
    with pytest.raises(BackendUnavailable):
        await bus.ping()


async def test_memory_retention_cap_drops_oldest_for_a_lagging_group() -> None:
    async with MemoryBus(retention=10) as bus:
        consumer = bus.consume("t", "late")     # joined, but reads nothing while 25 messages arrive
        for i in range(25):
            await bus.send("t", b"m%d" % i)
        first = await take(consumer, 1)
        assert first[0] in {b"m%d" % i for i in range(5, 16)}  # between `retention` and twice that are kept
        await close(consumer)


async def test_memory_topic_nobody_joined_keeps_only_the_unread_cap() -> None:
    """`events` without a reader must not pile up to `retention` (100,000)."""
    async with MemoryBus(unread=10) as bus:
        for i in range(25):
            await bus.send("unread", b"m%d" % i)
            await bus.send("kept", b"m%d" % i)
        assert len(bus._topics["unread"].log) < 20
        consumer = bus.consume("unread", "late")
        assert (await take(consumer, 1))[0] in {b"m%d" % i for i in range(5, 16)}
        await close(consumer)
        reader = bus.consume("kept", "early")     # a topic with a group: messages wait for it up to `retention`
        for i in range(25, 60):
            await bus.send("kept", b"m%d" % i)
        assert (await take(reader, 1))[0] in {b"m%d" % i for i in range(5, 16)}   # trimmed before it joined
        await close(reader)


async def test_memory_consumers_of_one_group_share_its_messages() -> None:
    async with MemoryBus() as bus:
        for i in range(4):
            await bus.send("t", b"m%d" % i)
        a, b = bus.consume("t", "g"), bus.consume("t", "g")
        assert await take(a, 1) + await take(b, 1) + await take(a, 1) + await take(b, 1) == [
            b"m0", b"m1", b"m2", b"m3"]
