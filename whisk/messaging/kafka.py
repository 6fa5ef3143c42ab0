"""The Kafka bus (distributed roles, docs/openwhisk.md §5.1): aiokafka, one producer and one admin client per bus, one
consumer per `consume` call. docs/architecture.md ("The Kafka bus") explains each setting.

- Topics are created explicitly, as OpenWhisk's `ensureTopic` does, with one partition and OpenWhisk's retention
  and segment size per topic (`topic_config`): the shared ones (`health`, `cacheInvalidation`, `events`) when the
  bus starts, `invoker<N>` and `completed<N>` by their owners when they start. `send` and `consume` on a topic
  this bus has not seen yet create it first (a no-op when it exists).
- Each message is at most `max_message_bytes` (payload limit + 6068 B, docs/openwhisk.md §5.1); topics are created
  with `max.message.bytes` to match, since Kafka's default is a little under that. Over it, `send` raises TooLarge.
- At least once: the producer waits for every in-sync replica (`acks=all`) and is not idempotent (aiokafka's
  idempotent producer never gives up on a send while the broker is away, so a controller could not answer 503;
  a send retried after a lost answer may be written twice, which at-least-once delivery allows); consumers
  commit manually, after handling. A message counts as handled once the caller asks for the next one or says so
  (`handled`); the handled offsets are committed (in the background, so that a commit the broker does not take
  never delays the next message) when the consumer has nothing buffered (it is about to
  wait), every `commit_every` messages under steady load, and on `aclose`. A consumer that stops without `aclose`
  (a crash) hands out at most that many handled messages again: delivery is at least once. A feed made with
  `commit_at_once` (the invoker's) commits each as it is handled, as OpenWhisk's feeds commit what they peek before
  handing it on (at most once, but for what was handled in the last commit's round trip).
- A consumer takes one record per request from the caller (`getmany(max_records=1)`); aiokafka's fetcher reads
  ahead at most one fetch per partition into memory, nothing of which is committed until handed out and handled.
- Latency: the producer sends at once (`linger_ms=0`), and a consumer's fetch that finds nothing waits on the
  broker, which answers it as soon as a record arrives, so the fetch wait only bounds how often an idle consumer
  asks; it is not on the path of a message.
- Broker restarts: aiokafka reconnects its producer, admin client and consumers by itself. While the broker is
  away, `send`, `ensure_topic` and `ping` raise BackendUnavailable after `request_timeout_s`; a consumer keeps
  waiting, keeps its pending commits and retries them, and carries on once the broker is back (Kafka keeps the
  topics, messages and group offsets on disk).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from whisk.entities.errors import BackendUnavailable, TooLarge
from whisk.messages import CACHE_INVALIDATION_TOPIC, EVENTS_TOPIC, HEALTH_TOPIC
from whisk.messaging.base import MAX_MESSAGE_BYTES, Message, encoded

log = structlog.get_logger(__name__)

# Room for Kafka's record and batch headers around the largest message we accept.
_FRAME_OVERHEAD = 64 * 1024
# OpenWhisk's max-poll-interval: an invoker may hold a message while its pool is full without leaving the group.
_MAX_POLL_INTERVAL_MS = 30 * 60 * 1000
_POLL_MS = 1000
_RETRY_S = 0.5
# A consumer that has waited this long for a record checks that the broker has none for it (see `_stalled`).
_STALL_CHECK_S = 10.0
# How often a consumer reads the topics' metadata again (aiokafka's default: 5 min): a topic deleted and made again
# is consumed again only once its consumer has seen it come back.
_METADATA_MAX_AGE_MS = 10_000
# Closing commits what was handled, but waits no longer than this for a broker that does not take it.
_CLOSE_COMMIT_S = 3.0

_MIN_MS, _HOUR_MS = 60_000, 3_600_000
_SEGMENT_BYTES = 512 * 1024 * 1024
_RETENTION_BYTES = 1024 * 1024 * 1024
# Retention per topic as OpenWhisk sets it (whisk.kafka.topics): a message nobody read in this time is dropped.
_RETENTION_MS = {"invoker": 48 * _HOUR_MS, "completed": _HOUR_MS, HEALTH_TOPIC: _HOUR_MS,
                 CACHE_INVALIDATION_TOPIC: 5 * _MIN_MS, EVENTS_TOPIC: _HOUR_MS}
# Created by every bus when it starts; `invoker<N>` and `completed<N>` by the invoker and controller they belong to.
SHARED_TOPICS = (HEALTH_TOPIC, CACHE_INVALIDATION_TOPIC, EVENTS_TOPIC)


def topic_config(topic: str, max_message_bytes: int) -> dict[str, str]:
    """The topic-level settings a topic is created with: OpenWhisk's retention (time and size) and segment size for
    its kind (`invoker3` is an invoker topic), and a message limit that fits the largest message the bus sends.
    A topic of another name (tests) gets the invoker topics' retention."""
    kind = topic.rstrip("0123456789") if topic.startswith(("invoker", "completed")) else topic
    return {"retention.ms": str(_RETENTION_MS.get(kind, _RETENTION_MS["invoker"])),
            "retention.bytes": str(_RETENTION_BYTES), "segment.bytes": str(_SEGMENT_BYTES),
            "max.message.bytes": str(max_message_bytes)}


class KafkaBus:
    """The Bus port on Kafka; an async context manager (enter connects, exit closes every consumer it made)."""

    def __init__(self, bootstrap_servers: list[str], *, client_id: str, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 replication_factor: int = 1, request_timeout_s: float = 30.0, session_timeout_s: float = 10.0,
                 commit_every: int = 100, fetch_max_wait_ms: int = 500) -> None:
        self._servers = list(bootstrap_servers)
        self._client_id = client_id
        self._max = max_message_bytes
        self._frame = max_message_bytes + _FRAME_OVERHEAD
        self._replication = replication_factor
        self._timeout_ms = int(request_timeout_s * 1000)
        # How soon the group notices a member that vanished without leaving (a crash) and hands its partitions on.
        self._session_ms = int(session_timeout_s * 1000)
        self._commit_every = commit_every
        # How long the broker may hold a fetch that finds nothing; it answers as soon as a record arrives, so this
        # only sets how often an idle consumer asks again.
        self._fetch_wait_ms = fetch_max_wait_ms
        self._topics: set[str] = set()  # topics this bus has made sure exist
        self._consumers: set[KafkaConsumer] = set()
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._closed = False
        self._checking: asyncio.Task[None] | None = None   # a background `_recreate_missing`

    async def __aenter__(self) -> KafkaBus:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._servers, client_id=self._client_id, max_request_size=self._frame,
            request_timeout_ms=self._timeout_ms, linger_ms=0, acks="all")
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self._servers, client_id=self._client_id, request_timeout_ms=self._timeout_ms)
        try:
            await self._producer.start()
            await self._admin.start()
        except (KafkaError, OSError) as exc:
            await self.close()
            raise BackendUnavailable(f"kafka {','.join(self._servers)}: {exc}") from exc
        try:
            await self._create_topics(SHARED_TOPICS, 1)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)
        # All at once: each may wait up to _CLOSE_COMMIT_S for a broker that does not take its last commit.
        await asyncio.gather(*(consumer.aclose() for consumer in list(self._consumers)))
        try:
            if self._producer is not None:
                await self._producer.stop()
        finally:
            if self._admin is not None:
                await self._admin.close()

    async def ensure_topic(self, topic: str, *, partitions: int = 1) -> None:
        await self._create_topics((topic,), partitions)

    async def _create_topics(self, topics: tuple[str, ...], partitions: int) -> None:
        admin = self._admin
        if admin is None or self._closed:
            raise BackendUnavailable("The message bus is closed.")
        new = [NewTopic(topic, partitions, self._replication, topic_configs=topic_config(topic, self._frame))
               for topic in topics]
        try:
            response = await admin.create_topics(new)
        except KafkaError as exc:
            raise BackendUnavailable(f"kafka: cannot create topic {', '.join(topics)}: {exc}") from exc
        for entry in response.topic_errors:
            topic, code = entry[0], entry[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                detail = entry[2] if len(entry) > 2 and entry[2] else for_code(code).__name__
                raise BackendUnavailable(f"kafka: cannot create topic {topic}: {detail}")
        self._topics.update(topics)

    async def send(self, topic: str, message: bytes | Message) -> None:
        message = encoded(message)
        producer = self._producer
        if producer is None or self._closed:
            raise BackendUnavailable("The message bus is closed.")
        if len(message) > self._max:
            raise TooLarge(f"The message of {len(message)} bytes exceeds the bus limit of {self._max} bytes.")
        if topic not in self._topics:
            await self.ensure_topic(topic)
        try:
            # aiokafka bounds each request, not a send: one caught in a broker restart was seen never to end, which
            # held an invoker's pool slot (its ack) for good. Past the request timeout the caller is told the bus
            # is unavailable; the record may still be written later (at least once, never lost).
            async with asyncio.timeout(self._timeout_ms / 1000):
                try:
                    await producer.send_and_wait(topic, message)
                except UnknownTopicOrPartitionError:
                    # Deleted under us: create it again, once.
                    self._topics.discard(topic)
                    await self.ensure_topic(topic)
                    await producer.send_and_wait(topic, message)
        except (MessageSizeTooLargeError, RecordTooLargeError) as exc:
            raise TooLarge(f"The message of {len(message)} bytes is too large for the bus: {exc}") from exc
        except (KafkaError, TimeoutError) as exc:
            self._check_topics_soon()
            raise BackendUnavailable(f"kafka: cannot send to {topic}: {exc!r}") from exc

    def consume(self, topic: str, group: str, *, commit_at_once: bool = False) -> KafkaConsumer:
        if self._producer is None or self._closed:
            raise BackendUnavailable("The message bus is closed.")
        consumer = KafkaConsumer(self, topic, group, self._fetch_wait_ms, commit_at_once=commit_at_once)
        self._consumers.add(consumer)
        return consumer

    async def ping(self) -> None:
        producer = self._producer
        if producer is None or self._closed:
            raise BackendUnavailable("The message bus is closed.")
        try:
            async with asyncio.timeout(self._timeout_ms / 1000):
                metadata = await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError) as exc:
            raise BackendUnavailable(f"kafka {','.join(self._servers)} does not answer: {exc}") from exc
        await self._recreate_missing(metadata)

    def _check_topics_soon(self) -> None:
        """`_recreate_missing` in the background, one at a time: the caller of a failed send is answered at once."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._recreate_missing(), name="kafka-topics-check")

    async def _recreate_missing(self, metadata: ClusterMetadata | None = None) -> None:
        """Create again the topics this bus made that the broker no longer has (deleted by an operator, or lost
        with its log). A send to such a topic does not fail as unknown: aiokafka waits for it to appear until the
        request timeout, so without this every send to it was a 503 after 30 s, for good, with the broker's
        auto-creation off. Asked after a failed send (in the background) and on `ping` (the sharding balancer pings
        every second); a broker that does not answer the metadata request is left alone."""
        producer = self._producer
        if producer is None or self._closed or not self._topics:
            return
        try:
            async with asyncio.timeout(self._timeout_ms / 1000):
                if metadata is None:
                    metadata = await producer.client.fetch_all_metadata()
                missing = tuple(sorted(self._topics - metadata.topics()))
                if missing:
                    log.warning("bus.topics_recreated", topics=",".join(missing))
                    await self._create_topics(missing, 1)
        except (KafkaError, TimeoutError, BackendUnavailable) as exc:
            log.debug("bus.topics_check_failed", error=str(exc) or repr(exc))   # the broker is away: said elsewhere

    def _new_consumer(self, topic: str, group: str, fetch_wait_ms: int) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic, bootstrap_servers=self._servers, client_id=self._client_id, group_id=group,
            enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=self._frame,
            max_poll_interval_ms=_MAX_POLL_INTERVAL_MS, request_timeout_ms=self._timeout_ms,
            fetch_max_wait_ms=fetch_wait_ms, metadata_max_age_ms=_METADATA_MAX_AGE_MS,
            session_timeout_ms=self._session_ms, heartbeat_interval_ms=max(100, self._session_ms // 3))


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """`consumer.stop()`, which in aiokafka 0.14 cancels the fetch requests in flight and then awaits them: one caught
    retrying while the broker is away raises CancelledError into the caller, though nothing cancelled it (a SIGTERM
    then ended the process with that traceback and status 1, and a stalled consumer's restart killed its feed). Only
    a cancellation of the caller itself goes on."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


class KafkaConsumer:
    """One group member on one topic: `async for message in consumer`; `aclose()` commits what was handled and
    leaves the group."""

    def __init__(self, bus: KafkaBus, topic: str, group: str, fetch_wait_ms: int, *,
                 commit_at_once: bool = False) -> None:
        self._bus = bus
        # Commit each handled message right away, one commit in flight at a time (the next carries what was handled
        # meanwhile): the invoker's feed, whose successor must not run again what it took.
        self._commit_every = 1 if commit_at_once else bus._commit_every
        self._topic = topic
        self._group = group
        self._fetch_wait_ms = fetch_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._held: tuple[TopicPartition, int] | None = None  # handed out, not yet handled
        self._pending: dict[TopicPartition, int] = {}  # handled, not yet committed: next offset per partition
        self._handled = 0  # since the last commit
        self._committing: asyncio.Task[None] | None = None
        self._behind: dict[TopicPartition, int] = {}  # positions seen behind the partition's end at the last check
        self._closed = False

    def __aiter__(self) -> KafkaConsumer:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        consumer = self._consumer or await self._start()
        self.handled()  # the caller asks for the next message: the one it holds is handled
        waited_s = 0.0
        while not self._closed:
            try:
                batch = await consumer.getmany(timeout_ms=0, max_records=1)
                if not batch:
                    self._commit_soon()  # about to wait: a good time to record what was handled
                    batch = await consumer.getmany(timeout_ms=_POLL_MS, max_records=1)
                    waited_s += _POLL_MS / 1000
                if not batch and waited_s >= _STALL_CHECK_S:
                    waited_s = 0.0
                    if await self._stalled(consumer):
                        consumer = await self._restart(consumer)
            except ConsumerStoppedError:
                break
            except KafkaError as exc:
                log.warning("bus.fetch_failed", topic=self._topic, group=self._group, error=str(exc))
                await asyncio.sleep(_RETRY_S)  # the broker is away: try again shortly
                continue
            for tp, records in batch.items():
                self._held = (tp, records[0].offset)
                # A record with no value (a tombstone another producer wrote) reads as empty bytes: malformed to
                # every reader, so skipped with a log line, where None ended the consumer.
                value = records[0].value
                return b"" if value is None else value
        raise StopAsyncIteration

    def handled(self) -> None:
        """The message in hand is handled: committed with the next commit (at the latest on `aclose`)."""
        if self._held is not None:
            tp, offset = self._held
            self._pending[tp] = offset + 1
            self._held = None
            self._handled += 1
            if self._handled >= self._commit_every:
                self._commit_soon()

    async def aclose(self) -> None:
        """Commit the handled messages (not the one in hand) and leave the group."""
        if self._closed:
            return
        self._closed = True
        self._bus._consumers.discard(self)
        if self._committing is not None:
            self._committing.cancel()
            await asyncio.gather(self._committing, return_exceptions=True)
        if self._consumer is not None:
            try:
                await self._commit(_CLOSE_COMMIT_S)
            finally:
                await _stop(self._consumer)

    async def _start(self) -> AIOKafkaConsumer:
        if self._topic not in self._bus._topics:
            await self._bus.ensure_topic(self._topic)
        consumer = self._bus._new_consumer(self._topic, self._group, self._fetch_wait_ms)
        try:
            await consumer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            raise BackendUnavailable(f"kafka: cannot consume {self._topic}: {exc}") from exc
        self._consumer = consumer
        return consumer

    async def _stalled(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether the consumer's fetcher is stuck: records wait past its position and the position has not moved
        since the last check. Seen with aiokafka 0.14 after a broker restart under load: a consumer keeps a fetch
        "in flight" that never ends and gets nothing more while the broker has records for it. A consumer that
        simply has nothing to read is never stalled."""
        try:
            assigned = list(consumer.assignment())
            if not assigned:
                return False
            async with asyncio.timeout(self._bus._timeout_ms / 1000):
                ends = await consumer.end_offsets(assigned)
                positions = {tp: await consumer.position(tp) for tp in assigned}
        except (KafkaError, TimeoutError, AssertionError, IllegalStateError):
            return False  # the broker is away, or the group is rebalancing: not the fetcher's fault
        behind = {tp: pos for tp, pos in positions.items() if ends.get(tp, 0) > pos}
        stalled = any(self._behind.get(tp) == pos for tp, pos in behind.items())
        self._behind = behind
        return stalled

    async def _restart(self, consumer: AIOKafkaConsumer) -> AIOKafkaConsumer:
        """Replace a stalled aiokafka consumer: commit what was handled, leave the group, join it again from the
        committed offsets (at least once: nothing handed out but unhandled is skipped)."""
        log.warning("bus.consumer_restarted", topic=self._topic, group=self._group, behind=str(self._behind))
        self._behind = {}
        if self._committing is not None:
            self._committing.cancel()
            await asyncio.gather(self._committing, return_exceptions=True)
        await self._commit(_CLOSE_COMMIT_S)
        try:
            async with asyncio.timeout(_CLOSE_COMMIT_S):
                await _stop(consumer)
        except TimeoutError:
            log.warning("bus.consumer_stop_slow", topic=self._topic, group=self._group)
        self._consumer = None
        while True:
            try:
                return await self._start()
            except BackendUnavailable as exc:  # the broker went away meanwhile: the caller still waits for a record
                log.warning("bus.consumer_restart_failed", topic=self._topic, group=self._group, error=str(exc))
                await asyncio.sleep(_RETRY_S)

    def _commit_soon(self) -> None:
        """Commit in the background, one commit at a time: a commit the broker does not take (it is away, and
        aiokafka retries until our timeout) must not hold up the messages behind it."""
        if self._pending and (self._committing is None or self._committing.done()):
            self._committing = asyncio.create_task(self._commit_handled(), name=f"commit-{self._topic}")

    async def _commit_handled(self) -> None:
        """One commit; committing at once, then another for what was handled meanwhile, until none is left or the
        broker does not take one (the next `handled` tries again)."""
        while await self._commit() and self._commit_every == 1 and self._pending:
            pass

    async def _commit(self, timeout_s: float | None = None) -> bool:
        """Commit what was handled; False when the broker did not take it (the offsets are kept)."""
        if not self._pending or self._consumer is None:
            return False
        offsets = dict(self._pending)
        try:
            # aiokafka retries a commit until the coordinator answers: bound it, so that closing never hangs.
            async with asyncio.timeout(timeout_s or self._bus._timeout_ms / 1000):
                await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved the partition elsewhere: its new owner starts from the last commit.
            log.warning("bus.commit_dropped", topic=self._topic, group=self._group, error=str(exc))
        except (KafkaError, TimeoutError) as exc:
            # The broker is away: keep the offsets, the next commit carries them.
            log.warning("bus.commit_failed", topic=self._topic, group=self._group, error=str(exc))
            return False
        for tp, offset in offsets.items():
            if self._pending.get(tp) == offset:
                del self._pending[tp]
        self._handled = 0
        return True
