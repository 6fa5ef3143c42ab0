"""Messages no whisk sent, on each topic a whisk consumes (an old or foreign producer, a hand-made test record, a
Kafka record with no value): each is skipped with one log line, and the consumer goes on with the next message.
A consumer that died on one left a controller without acks (every activation forced at its ack timeout) or
without pings (every invoker down), and again after each restart, since the message was never committed.
Run on both buses: memory in process, and Kafka on Apache Kafka."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.waiting import until
from whisk.loadbalancer.lean import LeanBalancer
from whisk.loadbalancer.sharding_balancer import ShardingBalancer
from whisk.messages import (HEALTH_TOPIC, Acknowledgement, ActivationMessage, PingMessage, completed_topic,
                            controller_instance, invoker_instance)
from whisk.messaging.base import Bus
from whisk.messaging.kafka import KafkaBus
from whisk.messaging.memory import MemoryBus

# What a consumer may find on a topic besides whisk's messages: JSON that is no object, bytes that are no JSON or
# no UTF-8, and objects whose fields have the wrong types.
FOREIGN = [b"[1]", b"null", b'"x"', b"5", b"", b"{", b"\xff\xfe", b'{"transid": 5, "instance": {"instance": 0}}',
           b'{"response": {"activationId": [1]}}', b'{"activationId": {"a": 1}, "instance": {}}',
           b'{"response": 5}', b'{"instance": "invoker0", "activationId": "x"}',
           # Nested past orjson's 1,024 levels and Python's recursion limit (whisk's own stop at 500: MAX_DEPTH)
           b"[" * 5000 + b"]" * 5000, b'{"key": ' + b"[" * 5000 + b"]" * 5000 + b"}"]


def controller_index() -> int:
    """Unique per test: on Kafka the topics outlive a test (the broker lives for the whole session)."""
    return 1000 + uuid.uuid4().int % 1_000_000


async def send_foreign(bus: Bus, topic: str) -> None:
    for data in FOREIGN:
        await bus.send(topic, data)
    if isinstance(bus, KafkaBus):
        assert bus._producer is not None
        await bus._producer.send_and_wait(topic, None, key=b"k")   # a record with no value (a tombstone)


def message(activation_id: str, controller: int) -> ActivationMessage:
    return ActivationMessage(
        transid=["tid", 1], action={"path": "guest", "name": "a", "version": "0.0.1"}, revision=None,
        user={"subject": "guest", "namespace": {"name": "guest", "uuid": "u1"}, "authkey": {"api_key": "u1:k"}},
        activation_id=activation_id, root_controller=controller_instance(controller), blocking=True, content={})


async def test_the_ack_consumer_skips_foreign_messages(bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    controller = controller_index()
    released: list[tuple[str, str]] = []
    async with LeanBalancer(bus, controller=controller, on_release=lambda e, o: released.append((e.activation_id, o))
                            ) as lb:
        waiter = await lb.publish(message("a" * 32, controller), namespace_uuid="u1", memory_mb=256,
                                  timeout_ms=1000, concurrency=1, blackbox=False)
        await send_foreign(bus, completed_topic(controller))
        record = {"activationId": "a" * 32, "response": {"statusCode": 0, "result": {"ok": True}}}
        await bus.send(completed_topic(controller), Acknowledgement(["tid", 1], "a" * 32, record, {"instance": 0}))
        assert await asyncio.wait_for(waiter, 20) == record
        await until("the completion frees the slot", lambda: released == [("a" * 32, "success")], 20)


async def test_the_ping_consumer_skips_foreign_messages() -> None:
    """The health topic (memory only: on Kafka it is shared by every test, and the ack test covers the feed)."""
    from whisk.discovery.local import LocalDiscovery
    from whisk.store.memory import MemoryStore

    async with MemoryBus() as bus, MemoryStore() as store, LocalDiscovery() as discovery:
        async with ShardingBalancer(bus, store, discovery, controller=0) as lb:
            await send_foreign(bus, HEALTH_TOPIC)
            for ping in (b'{"name": [1]}', b'{"name": {"instance": -1}}', b'{"name": {"instance": "0"}}',
                         b'{"name": {"instance": 0, "userMemory": ""}}',
                         b'{"name": {"instance": 0, "userMemory": "1e999 MB"}}',
                         b'{"name": {"instance": 0}, "taken": "x"}'):
                await bus.send(HEALTH_TOPIC, ping)
            await bus.send(HEALTH_TOPIC, PingMessage(invoker_instance(0, 1024)).to_bytes())
            await until("the invoker's ping is taken",
                        lambda: [(h.instance, h.user_memory_mb) for h in lb.pool.snapshot()] == [(0, 1024)], 10)


async def test_the_cache_invalidation_listener_skips_foreign_messages(bus: Bus) -> None:
    """A key whose `mainId` is no string ended the listener: the controller's cache was never invalidated again."""
    from whisk.controller.cache import EntityCache
    from whisk.messages import CACHE_INVALIDATION_TOPIC
    from whisk.store.memory import MemoryStore

    async with MemoryStore() as store, EntityCache(store, bus, instance_id=f"c{uuid.uuid4().hex[:8]}") as cache:
        await store.put({"_id": "guest/x", "entityType": "action", "namespace": "guest", "name": "x"})
        assert await cache.get("guest/x") is not None
        await send_foreign(bus, CACHE_INVALIDATION_TOPIC)
        await bus.send(CACHE_INVALIDATION_TOPIC, b'{"key": {"mainId": ["guest/x"]}}')
        misses = cache.misses
        await bus.send(CACHE_INVALIDATION_TOPIC, b'{"key": {"mainId": "guest/x"}, "instanceId": "another"}')

        async def refetched() -> bool:
            await cache.get("guest/x")
            return cache.misses > misses
        await until("the invalidation after the foreign messages is applied", refetched, 20)


@pytest.mark.parametrize("data", FOREIGN)
def test_each_reader_refuses_foreign_bytes_as_malformed(data: bytes) -> None:
    """ValueError, KeyError or TypeError: what the consumers skip with a log line. Anything else ended them."""
    for reader in (Acknowledgement.from_bytes, ActivationMessage.from_bytes, PingMessage.from_bytes):
        try:
            reader(data)
        except (ValueError, KeyError, TypeError):
            pass


@pytest.mark.parametrize("content", [{}, {"a": 1}, [1, {"b": 2}], [], None])
def test_an_activation_message_whisk_sends_is_read_back(content: object) -> None:
    """Whatever `controller/message.py` puts in `content` reads back: a sequence passes a component's array result
    on as the next one's arguments (`arguments`), which the stricter reader refused as malformed, so on Kafka the
    invoker skipped the activation and its caller waited out the ack timeout."""
    from whisk.controller.message import arguments

    sent = message("b" * 32, 0)
    sent.content = arguments({"p": 1}, content) if content is not None else None
    read = ActivationMessage.from_bytes(sent.to_bytes())
    assert read.content == sent.content and read.to_json() == sent.to_json()
