"""What only the Kafka bus has, on Apache Kafka: topics with partitions and OpenWhisk's retention, a broker that
goes away and comes back with its data, group offsets that outlive the bus object. Each test that stops a broker
runs its own."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.kafka_broker import KafkaBroker, kafka_or_missing
from tests.conftest import missing
from tests.support.processes import free_port, ipv6_loopback
from whisk.config import Settings
from whisk.entities.errors import BackendUnavailable
from whisk.messaging.base import MAX_MESSAGE_BYTES
from whisk.messaging.kafka import SHARED_TOPICS, KafkaBus
from whisk.roles import bus_from_url

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


async def test_topics_get_the_partitions_asked_for(kafka_broker: KafkaBroker) -> None:
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test") as bus:
        three, implicit = unique("t"), unique("t")
        await bus.ensure_topic(three, partitions=3)
        await bus.ensure_topic(three, partitions=3)  # exists already: no error
        await bus.send(implicit, b"m")  # a topic first met in send gets one partition
    assert await partitions_of(kafka_broker.bootstrap, three) == 3
    assert await partitions_of(kafka_broker.bootstrap, implicit) == 1


async def test_group_resumes_with_a_new_bus(kafka_broker: KafkaBroker) -> None:
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


async def topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """The topic-level settings the broker reports for each topic (DescribeConfigs)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _msg, _type, name, entries in response.resources:
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


async def test_topics_are_created_with_openwhisk_retention(kafka_broker: KafkaBroker) -> None:
    """The shared topics exist once a bus has started; each kind of topic gets OpenWhisk's retention, one partition
    and a message limit above the largest message the bus sends."""
    hours = 3_600_000
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test") as bus:
        await bus.ensure_topic("invoker7")
        await bus.ensure_topic("completed7")
    expected = {"invoker7": 48 * hours, "completed7": hours, "health": hours, "cacheInvalidation": 300_000,
                "events": hours}
    assert set(SHARED_TOPICS) == {"health", "cacheInvalidation", "events"}
    configs = await topic_configs(kafka_broker.bootstrap, list(expected))
    for topic, retention_ms in expected.items():
        assert await partitions_of(kafka_broker.bootstrap, topic) == 1, topic
        assert int(configs[topic]["retention.ms"]) == retention_ms, topic
        assert int(configs[topic]["retention.bytes"]) == 1 << 30, topic
        assert int(configs[topic]["segment.bytes"]) == 512 << 20, topic
        assert int(configs[topic]["max.message.bytes"]) > MAX_MESSAGE_BYTES, topic


async def test_largest_message_goes_through(kafka_broker: KafkaBroker) -> None:
    """A message of exactly the bus limit is accepted by the broker and delivered whole; one byte more is TooLarge
    before it leaves."""
    from whisk.entities.errors import TooLarge
    topic = unique("t")
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test") as bus:
        await bus.send(topic, b"x" * MAX_MESSAGE_BYTES)
        consumer = bus.consume(topic, unique("g"))
        assert len(await asyncio.wait_for(anext(consumer), WAIT_S)) == MAX_MESSAGE_BYTES
        with pytest.raises(TooLarge):
            await bus.send(topic, b"x" * (MAX_MESSAGE_BYTES + 1))


async def test_a_record_wakes_a_waiting_fetch(kafka_broker: KafkaBroker) -> None:
    """Kafka answers a waiting fetch when a record arrives, so a long fetch wait costs the message nothing: with a
    5 s wait, a record sent to an idle consumer arrives in well under the wait."""
    topic = unique("t")
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", fetch_max_wait_ms=5000) as bus:
        await bus.send(topic, b"first")
        consumer = bus.consume(topic, unique("g"))
        assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"first"
        took = []
        for i in range(5):
            waiting = asyncio.ensure_future(anext(consumer))
            await asyncio.sleep(0.3)  # the consumer's fetch is now parked on the broker
            sent = time.monotonic()
            await bus.send(topic, b"m%d" % i)
            assert await asyncio.wait_for(waiting, WAIT_S) == b"m%d" % i
            took.append(time.monotonic() - sent)
    assert sorted(took)[2] < 1.0, took


async def test_a_broker_on_ipv6s_loopback() -> None:
    """WHISK_BUS=kafka://[::1]:PORT, as the settings accept it: a message goes through a broker that listens (and
    advertises itself) on ::1 alone."""
    kafka_or_missing()
    if not ipv6_loopback():
        missing("an IPv6 loopback (::1)")
    async with KafkaBroker(host="::1") as broker:
        url = Settings.from_env({"WHISK_BUS": f"kafka://{broker.bootstrap}"}).bus_url
        assert url == f"kafka://[::1]:{broker.port}"
        topic = unique("t")
        async with bus_from_url(url, "whisk-test") as bus:
            await bus.send(topic, b"over ipv6")
            consumer = bus.consume(topic, unique("g"))
            assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"over ipv6"


async def test_no_broker_is_backend_unavailable() -> None:
    bus = KafkaBus([f"127.0.0.1:{free_port()}"], client_id="whisk-test", request_timeout_s=2)
    with pytest.raises(BackendUnavailable):
        await bus.__aenter__()


async def test_closing_the_bus_ends_its_consumers(kafka_broker: KafkaBroker) -> None:
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
    """Stop the broker and start it again on the same port with the same log directory: Kafka keeps every topic,
    message and committed group offset. The bus and a consumer that was waiting all along carry on: sends work
    again, the waiting consumer gets what is sent after the restart, and a group that had not read a message sent
    before the stop gets it after the restart."""
    kafka_or_missing()
    async with KafkaBroker() as broker:
        async with KafkaBus([broker.bootstrap], client_id="whisk-test", request_timeout_s=6,
                            session_timeout_s=3) as bus:
            topic, group = unique("t"), unique("g")
            await bus.send(topic, b"before")
            consumer = bus.consume(topic, group)
            assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"before"
            waiting = asyncio.ensure_future(anext(consumer))
            kept = unique("t")
            await bus.send(kept, b"kept")  # nobody reads it before the restart

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
            late = bus.consume(kept, unique("g"))
            assert await asyncio.wait_for(anext(late), WAIT_S) == b"kept"

            other = unique("t")  # a new topic and a new group on the same bus work too
            await bus.send(other, b"fresh")
            fresh = bus.consume(other, unique("g"))
            assert await asyncio.wait_for(anext(fresh), WAIT_S) == b"fresh"
        # "before" was handled before the stop and its offset committed across the restart; "after" was still in
        # hand when the bus closed: a new member of the group starts at "after", never at "before".
        async with KafkaBus([broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
            await bus.send(topic, b"next")
            again = bus.consume(topic, group)
            assert [await asyncio.wait_for(anext(again), WAIT_S) for _ in range(2)] == [b"after", b"next"]


async def test_killed_broker_loses_no_acknowledged_message() -> None:
    """SIGKILL (no controlled shutdown) right after sends that the broker acknowledged: after the restart every one
    of them is there, in order (acks=all on one node: acknowledged means in the log)."""
    kafka_or_missing()
    async with KafkaBroker() as broker:
        topic = unique("t")
        async with KafkaBus([broker.bootstrap], client_id="whisk-test", request_timeout_s=6) as bus:
            for i in range(50):
                await bus.send(topic, b"m%d" % i)
        await broker.kill()
        await broker.start()
        async with KafkaBus([broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
            consumer = bus.consume(topic, unique("g"))
            got = [await asyncio.wait_for(anext(consumer), WAIT_S) for _ in range(50)]
        assert got == [b"m%d" % i for i in range(50)]


async def test_closing_while_the_broker_is_away_does_not_hang() -> None:
    """Handled offsets cannot be committed while the broker is down: closing gives up after the request timeout."""
    kafka_or_missing()
    async with KafkaBroker() as broker:
        bus = await KafkaBus([broker.bootstrap], client_id="whisk-test", request_timeout_s=6,
                             session_timeout_s=3).__aenter__()
        topic = unique("t")
        await bus.send(topic, b"a")
        await bus.send(topic, b"b")
        consumer = bus.consume(topic, unique("g"))
        assert [await asyncio.wait_for(anext(consumer), WAIT_S) for _ in range(2)] == [b"a", b"b"]  # a handled
        await broker.stop()
        await asyncio.wait_for(bus.close(), WAIT_S)


async def test_closing_consumers_that_wait_while_the_broker_is_away_raises_nothing() -> None:
    """aiokafka's consumer.stop() awaits the fetch requests it cancelled: one retrying against the absent broker
    raised CancelledError out of `bus.close()` (a controller SIGTERMed during a broker outage exited with that
    traceback and status 1). Consumers waiting for records, several so that one is caught retrying."""
    kafka_or_missing()
    async with KafkaBroker() as broker:
        for attempt in range(2):
            bus = await KafkaBus([broker.bootstrap], client_id="whisk-test", request_timeout_s=6,
                                 session_timeout_s=3).__aenter__()
            topic = unique("t")
            await bus.send(topic, b"a")
            consumers = [bus.consume(topic, unique("g")) for _ in range(6)]
            for consumer in consumers:
                assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"a"
            waiting = [asyncio.create_task(anext(consumer)) for consumer in consumers]
            await broker.kill()
            await asyncio.sleep(2.0 + attempt)          # the fetchers retry against the absent broker
            await asyncio.wait_for(bus.close(), WAIT_S)
            done = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), WAIT_S)
            assert all(isinstance(end, StopAsyncIteration) for end in done), done
            await broker.start()


async def test_a_deleted_topic_is_made_again_and_consumed_again(kafka_broker: KafkaBroker) -> None:
    """An operator deletes a topic (the broker's auto-creation off): a send to it does not fail as unknown, aiokafka
    waits for it until the request timeout, so every send was a 503 for good. A failed send and `ping` make it
    again, and its consumer reads what is sent after."""
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", request_timeout_s=6) as bus:
        topic = unique("t")
        await bus.send(topic, b"before")
        consumer = bus.consume(topic, unique("g"))
        assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"before"
        waiting = asyncio.create_task(anext(consumer))
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
            await asyncio.sleep(2.0)
            assert topic not in await admin.list_topics()
            try:
                await bus.send(topic, b"lost")      # may still time out: the deletion reaches the producer late
            except BackendUnavailable:
                pass
            await bus.ping()
            assert topic in await admin.list_topics()
        finally:
            await admin.close()
        began = time.monotonic()
        await bus.send(topic, b"after")
        assert time.monotonic() - began < 5.0
        assert await asyncio.wait_for(waiting, 60) in (b"lost", b"after")
        await consumer.aclose()


async def test_a_stalled_consumer_is_found_and_replaced(kafka_broker: KafkaBroker) -> None:
    """The stall check: a consumer caught up is never stalled; one whose position stays behind the partition's end
    across two checks is (a paused partition stands in for aiokafka's stuck fetch), and replacing it loses nothing
    and hands out no handled message again."""
    topic, group = unique("t"), unique("g")
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
        for i in range(3):
            await bus.send(topic, b"m%d" % i)
        consumer = bus.consume(topic, group)
        assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"m0"
        assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"m1"
        inner = consumer._consumer
        assert inner is not None
        (tp,) = inner.assignment()
        await inner.seek_to_end(tp)                          # caught up with the end: nothing to read
        await inner.position(tp)
        assert not await consumer._stalled(inner) and not await consumer._stalled(inner)
        inner.seek(tp, 2)                                    # m2 waits past the position...
        inner.pause(tp)                                      # ...and the fetcher does not move
        assert not await consumer._stalled(inner)            # first sight: it may just be arriving
        assert await consumer._stalled(inner)                # no progress since: stalled
        replaced = await consumer._restart(inner)
        assert replaced is not inner and consumer._consumer is replaced
        # m0 was handled and committed on the restart; asking for the next message hands m1 in, and the replacement
        # goes on from there: m2, nothing handled comes again.
        assert await asyncio.wait_for(anext(consumer), WAIT_S) == b"m2"


async def test_a_feed_that_commits_at_once_hands_nothing_it_took_to_its_successor(kafka_broker: KafkaBroker) -> None:
    """The invoker's feed (`commit_at_once`): what it took is committed at once, not when it is about to wait or at
    the 100th message, so a member that dies with a backlog on its topic (SIGKILL) leaves its successor only what it
    never took, as OpenWhisk's invoker commits what it peeks before running it. Committed every 100, the successor
    ran again up to 99 activations that had run, been recorded and acknowledged."""
    from aiokafka import TopicPartition

    topic, group = unique("t"), unique("g")
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
        for i in range(10):
            await bus.send(topic, b"m%d" % i)
        feed = bus.consume(topic, group, commit_at_once=True)
        for i in range(5):                      # taken while more wait: the feed is never about to wait
            assert await asyncio.wait_for(anext(feed), WAIT_S) == b"m%d" % i
            feed.handled()
        assert feed._consumer is not None
        tp = TopicPartition(topic, 0)
        end = time.monotonic() + 10
        while await feed._consumer.committed(tp) != 5:
            assert time.monotonic() < end, "what the feed took is not committed"
            await asyncio.sleep(0.05)
        # The member dies: it leaves without committing anything more.
        feed._pending.clear()
        await feed._consumer.stop()
    async with KafkaBus([kafka_broker.bootstrap], client_id="whisk-test", session_timeout_s=3) as bus:
        successor = bus.consume(topic, group, commit_at_once=True)
        assert await asyncio.wait_for(anext(successor), WAIT_S) == b"m5"
