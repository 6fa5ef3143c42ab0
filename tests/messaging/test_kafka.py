"""What only the Kafka bus has: topics with partitions, a broker that goes away and comes back, group offsets
that outlive the bus object. Each test that stops a broker runs its own."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.kafka_broker import TansuBroker, tansu_binary_or_missing
from tests.support.processes import free_port
from whisk.entities.errors import BackendUnavailable
from whisk.messaging.kafka import KafkaBus

pytestmark = pytest.mark.kafka

WAIT_S = 30.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def partitions_of(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(described["partitions"])


async def test_topics_get_the_partitions_asked_for(kafka_broker: TansuBroker) -> None:
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test") as bus:
        three, implicit = unique("t"), unique("t")
        await bus.ensure_topic(three, partitions=3)
        await bus.ensure_topic(three, partitions=3)  # exists already: no error
        await bus.send(implicit, b"m")  # a topic first met in send gets one partition
    assert await partitions_of(kafka_broker.bootstrap, three) == 3
    assert await partitions_of(kafka_broker.bootstrap, implicit) == 1


async def test_group_resumes_with_a_new_bus(kafka_broker: TansuBroker) -> None:
    """Group offsets live in the broker: a new bus (a restarted process) resumes after the last commit."""
    topic, group = unique("t"), unique("g")
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
        for i in range(5):
            await bus.send(topic, b"m%d" % i)
        consumer = bus.consume(topic, group)
        assert [await asyncio.wait_for(anext(consumer), WAIT_S) for _ in range(3)] == [b"m0", b"m1", b"m2"]
    # Leaving the bus closed the consumer: m0 and m1 are committed, m2 was in hand.
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
        consumer = bus.consume(topic, group)
        assert [await asyncio.wait_for(anext(consumer), WAIT_S) for _ in range(3)] == [b"m2", b"m3", b"m4"]


async def test_background_consumers_ask_a_polling_broker_less_often(kafka_broker: TansuBroker) -> None:
    """The activation path keeps the bus's fetch wait; a background consumer (health, cache invalidation) waits
    at least 100 ms per fetch, so on Tansu, which reads again on a timer set by the wait, it costs a tenth of the
    fetches. Both still get every message."""
    topic = unique("t")
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", fetch_max_wait_ms=10) as fast, \
            KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", fetch_max_wait_ms=500) as slow:
        await fast.send(topic, b"m")
        consumers = {(fast, False): 10, (fast, True): 100, (slow, False): 500, (slow, True): 500}
        for (bus, background), wait_ms in consumers.items():
            consumer = bus.consume(topic, unique("g"), background=background)
            assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"m"
            # What the broker is told: aiokafka's own setting for each fetch it sends.
            assert consumer._consumer is not None
            assert consumer._consumer._fetcher._fetch_max_wait_ms == wait_ms, (background, wait_ms)


async def test_no_broker_is_backend_unavailable() -> None:
    bus = KafkaBus([f"127.0.0.1:{free_port()}"], client_id="whisk-test", request_timeout_s=2)
    with pytest.raises(BackendUnavailable):
        await bus.__aenter__()


async def test_closing_the_bus_ends_its_consumers(kafka_broker: TansuBroker) -> None:
    topic = unique("t")
    bus = await KafkaBus([kafka_broker.bootstrap], client_id="whisk-test").__aenter__()
    try:
        await bus.send(topic, b"only")
        consumer = bus.consume(topic, unique("g"))
        assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"only"
        waiting = asyncio.ensure_future(anext(consumer))
    finally:
        await bus.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, WAIT_S)
    with pytest.raises(BackendUnavailable):
        await bus.send(topic, b"late")


async def send_when_back(bus: KafkaBus, topic: str, message: bytes) -> None:
    """Retry `send` until the broker answers again, with a deadline."""
    end = time.monotonic() + WAIT_S
    while True:
        try:
            await bus.send(topic, message)
            return
        except BackendUnavailable:
            if time.monotonic() > end:
                raise


async def test_broker_restart(tmp_path: object) -> None:
    """Stop the broker and start it again on the same port. Tansu here keeps no data, so the restarted broker has
    lost every topic, message and group offset (Kafka keeps them); the bus and a consumer that was waiting all
    along carry on: sends work again and the waiting consumer gets what is sent after the restart."""
    async with TansuBroker(tansu_binary_or_missing()) as broker:
        async with KafkaBus([broker.bootstrap], client_id="whisk-test", request_timeout_s=6,
                            session_timeout_s=3) as bus:
            topic, group = unique("t"), unique("g")
            await bus.send(topic, b"before")
            consumer = bus.consume(topic, group)
            assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"before"
            waiting = asyncio.ensure_future(anext(consumer))

            await broker.stop()
            with pytest.raises(BackendUnavailable):
                await bus.send(topic, b"lost")
            with pytest.raises(BackendUnavailable):
                await bus.ping()
            assert not waiting.done()

            await broker.start()
            await send_when_back(bus, topic, b"after")
            await bus.ping()
            assert await asyncio.wait_for(waiting, WAIT_S) == b"after"

            other = unique("t")  # a new topic and a new group on the same bus work too
            await bus.send(other, b"fresh")
            fresh = bus.consume(other, unique("g"))
            assert await asyncio.wait_for(anext(fresh), WAIT_S) == b"fresh"


async def test_closing_while_the_broker_is_away_does_not_hang() -> None:
    """Handled offsets cannot be committed while the broker is down: closing gives up after the request timeout."""
    async with TansuBroker(tansu_binary_or_missing()) as broker:
        bus = await KafkaBus([broker.bootstrap], client_id="whisk-test", request_timeout_s=6,
                             session_timeout_s=3).__aenter__()
        topic = unique("t")
        await bus.send(topic, b"a")
        await bus.send(topic, b"b")
        consumer = bus.consume(topic, unique("g"))
        assert [await asyncio.wait_for(anext(consumer), WAIT_S) for _ in range(2)] == [b"a", b"b"]  # a handled
        await broker.stop()
        await asyncio.wait_for(bus.close(), WAIT_S)
