"""An invoker refuses the activations of blocked and deleted namespaces still on its topic (whisk/invoker/blocklist.py,
OpenWhisk's NamespaceBlacklist): the set it checks, read again on a timer, and what a refused activation ends with."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.invoker.pools import OneRun
from tests.support.waiting import until
from whisk.entities.activation import APPLICATION_ERROR
from whisk.entities.document import now_ms
from whisk.entities.errors import BackendUnavailable
from whisk.invoker.blocklist import ACCEPTED_MARGIN_MS, BLOCKED_MESSAGE, DELETED_MESSAGE, Blocklist, Refusal
from whisk.invoker.service import Invoker
from whisk.messages import Acknowledgement, ActivationMessage, invoker_topic
from whisk.messaging.memory import MemoryBus
from whisk.store.base import NamespaceStates
from whisk.store.memory import MemoryStore


def owner(subject: str, namespace: str, uuid: str, **extra: Any) -> dict[str, Any]:
    return {"_id": subject, "subject": subject, "namespaces": [{"name": namespace, "uuid": uuid}], **extra}


def message(namespace: str, uuid: str, activation_id: str, *, received_ms: int | None = None,
            blocking: bool = False, limits: dict[str, Any] | None = None) -> ActivationMessage:
    return ActivationMessage(
        transid=["t", now_ms() if received_ms is None else received_ms],
        action={"path": namespace, "name": "a"}, revision=None,
        user={"subject": namespace, "namespace": {"name": namespace, "uuid": uuid}, "limits": limits or {}},
        activation_id=activation_id, root_controller={"asString": "0"}, blocking=blocking)


async def test_blocked_subjects_and_limits_of_zero_are_refused_once_read() -> None:
    async with MemoryStore() as store:
        await store.put_subject(owner("alice", "alice", "u-alice"))
        await store.put_subject(owner("bobby", "bob", "u-bob"))
        blocklist = Blocklist(store)
        assert await blocklist.refresh()
        assert blocklist.refusal(message("alice", "u-alice", "1" * 32)) is None
        await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
        await store.put_limits("bob", {"concurrentInvocations": 0})
        assert blocklist.refusal(message("alice", "u-alice", "1" * 32)) is None    # not read yet: no store read here
        assert await blocklist.refresh()
        assert blocklist.refusal(message("alice", "u-alice", "1" * 32)) is Refusal.BLOCKED
        assert blocklist.refusal(message("bob", "u-bob", "2" * 32)) is Refusal.BLOCKED
        await store.put_subject(owner("alice", "alice", "u-alice"))                # unblocked
        await store.delete_limits("bob")
        assert await blocklist.refresh()
        assert blocklist.refusal(message("alice", "u-alice", "1" * 32)) is None
        assert blocklist.refusal(message("bob", "u-bob", "2" * 32)) is None


async def test_a_deleted_namespace_is_refused_only_for_activations_accepted_before_the_read() -> None:
    async with MemoryStore() as store:
        await store.put_subject(owner("alice", "alice", "u-alice2"))     # made again: the old uuid is gone
        blocklist = Blocklist(store)
        assert await blocklist.refresh()
        old = now_ms() - ACCEPTED_MARGIN_MS - 1000
        assert blocklist.refusal(message("alice", "u-alice1", "1" * 32, received_ms=old)) is Refusal.DELETED
        assert blocklist.refusal(message("alice", "u-alice2", "2" * 32, received_ms=old)) is None
        # Accepted after the read began (within the clock margin): a namespace made since, not a deleted one.
        assert blocklist.refusal(message("newer", "u-newer", "3" * 32)) is None
        # The balancers' health test actions carry no uuid.
        assert blocklist.refusal(message("whisk.system", "", "4" * 32, received_ms=old)) is None


async def test_nothing_is_refused_before_a_first_read_and_a_failed_read_keeps_the_last() -> None:
    class Flaky(MemoryStore):
        away = False

        async def namespace_states(self) -> NamespaceStates:
            if self.away:
                raise BackendUnavailable("The database is unavailable.")
            return await super().namespace_states()

    async with Flaky() as store:
        blocklist = Blocklist(store)
        old = now_ms() - ACCEPTED_MARGIN_MS - 1000
        assert blocklist.refusal(message("gone", "u-gone", "1" * 32, received_ms=old)) is None
        await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
        assert await blocklist.refresh()
        store.away = True
        await store.put_subject(owner("alice", "alice", "u-alice"))
        assert not await blocklist.refresh()
        assert blocklist.refusal(message("alice", "u-alice", "1" * 32)) is Refusal.BLOCKED


async def test_the_set_is_read_again_on_its_timer() -> None:
    async with MemoryStore() as store:
        await store.put_subject(owner("alice", "alice", "u-alice"))
        blocklist = Blocklist(store, poll_s=0.05)
        await blocklist.refresh()
        task = asyncio.create_task(blocklist.run())
        try:
            await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
            await until("the block read", lambda: blocklist.refusal(message("alice", "u-alice", "1" * 32)),
                        5.0, ok=lambda refusal: refusal is Refusal.BLOCKED)
        finally:
            task.cancel()


async def test_an_unblocked_namespace_runs_what_is_accepted_after_the_unblock_without_waiting_for_the_timer() -> None:
    """The controllers let an unblocked key in at once: an activation of a namespace the last read found blocked,
    accepted since that read, is checked by a read begun after it (one shared read), not refused for up to poll_s."""
    class Counting(MemoryStore):
        reads = 0

        async def namespace_states(self) -> NamespaceStates:
            self.reads += 1
            return await super().namespace_states()

    async with Counting() as store:
        await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
        blocklist = Blocklist(store, poll_s=3600)
        await blocklist.refresh()
        before = message("alice", "u-alice", "1" * 32, received_ms=now_ms() - 1000)
        assert await blocklist.still_blocked(before) and store.reads == 1     # accepted before the read: no read
        await asyncio.sleep(0.01)
        during = [message("alice", "u-alice", f"{n:032x}") for n in range(5)]
        assert all(await asyncio.gather(*(blocklist.still_blocked(m) for m in during)))
        assert store.reads == 2                                             # one read for all five
        await store.put_subject(owner("alice", "alice", "u-alice"))         # unblocked
        await asyncio.sleep(0.01)
        after = message("alice", "u-alice", "2" * 32)
        assert blocklist.refusal(after) is Refusal.BLOCKED                  # the set still says so
        assert not await blocklist.still_blocked(after)                     # a read since says otherwise
        assert store.reads == 3 and blocklist.refusal(after) is None


async def test_a_read_that_fails_with_a_bug_does_not_end_the_timer() -> None:
    class Buggy(MemoryStore):
        reads = 0

        async def namespace_states(self) -> NamespaceStates:
            self.reads += 1
            if self.reads == 1:
                raise KeyError("a bug")
            return await super().namespace_states()

    async with Buggy() as store:
        await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
        blocklist = Blocklist(store, poll_s=0.02)
        task = asyncio.create_task(blocklist.run())
        try:
            await until("a read after the failed one", lambda: blocklist.refusal(message("alice", "u-alice", "1" * 32)),
                        5.0, ok=lambda refusal: refusal is Refusal.BLOCKED)
        finally:
            task.cancel()


async def test_the_invoker_refuses_a_blocked_or_deleted_namespaces_activations_and_runs_the_others() -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        for namespace in ("alice", "bob", "carol"):
            await store.put({"_id": f"{namespace}/a", "entityType": "action", "namespace": namespace, "name": "a",
                             "exec": {"kind": "python:3", "code": "def main(a): return a"}})
        await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
        await store.put_subject(owner("bobby", "bob", "u-bob"))
        await store.put_subject(owner("carol", "carol", "u-carol"))
        await store.put_limits("carol", {"storeActivations": False, "invocationsPerMinute": 0})
        pool = OneRun()
        acks = bus.consume("completed0", "completed0")
        invoker = Invoker(instance=0, bus=bus, store=store, pool=pool, image_of=lambda _: "", api_host="",
                          user_memory_mb=1024, max_intake=4, ping_interval_s=None, blocklist=Blocklist(store))
        old = now_ms() - ACCEPTED_MARGIN_MS - 1000
        sent = [message("alice", "u-alice", "a" * 32, blocking=True), message("bob", "u-bob", "b" * 32),
                message("gone", "u-gone", "d" * 32, received_ms=old, blocking=True),
                # storeActivations is read from the identity the controller put in the message, as for any record
                message("carol", "u-carol", "c" * 32, limits={"storeActivations": False})]
        async with invoker:
            for msg in sent:
                await bus.send(invoker_topic(0), msg)
            got = {}
            for _ in sent:
                ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
                got[ack.activation_id] = ack
        await acks.aclose()
        assert pool.ran == ["b" * 32]                      # only bob's ran
        for activation_id, error in (("a" * 32, BLOCKED_MESSAGE), ("d" * 32, DELETED_MESSAGE),
                                     ("c" * 32, BLOCKED_MESSAGE)):
            ack = got[activation_id]
            # One combined ack with the record (a blocking caller's answer), not a system error: the invoker is sound.
            assert ack.is_completion and ack.is_result and not ack.is_system_error, ack
            assert ack.response["response"] == {"statusCode": APPLICATION_ERROR, "result": {"error": error}}, ack
            assert {"key": "kind", "value": "unknown"} in ack.response["annotations"]
        record = await store.get_activation("alice", "a" * 32)          # a blocked namespace's record is stored
        assert record is not None and record["response"]["result"] == {"error": BLOCKED_MESSAGE}
        assert record["duration"] == 0
        assert await store.get_activation("gone", "d" * 32) is None     # a deleted one's is not
        assert await store.get_activation("carol", "c" * 32) is None    # storeActivations false is honoured
        bob = await store.get_activation("bob", "b" * 32)
        assert bob is not None and bob["response"]["result"] == {"ok": True}


async def test_the_invoker_runs_what_is_accepted_after_an_unblock_before_its_timer_reads_again() -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        await store.put({"_id": "alice/a", "entityType": "action", "namespace": "alice", "name": "a",
                         "exec": {"kind": "python:3", "code": "def main(a): return a"}})
        await store.put_subject(owner("alice", "alice", "u-alice", blocked=True))
        pool = OneRun()
        acks = bus.consume("completed0", "completed0")
        invoker = Invoker(instance=0, bus=bus, store=store, pool=pool, image_of=lambda _: "", api_host="",
                          user_memory_mb=1024, max_intake=4, ping_interval_s=None,
                          blocklist=Blocklist(store, poll_s=3600))
        async with invoker:                                   # the first read: alice is blocked
            await store.put_subject(owner("alice", "alice", "u-alice"))
            await asyncio.sleep(0.01)
            await bus.send(invoker_topic(0), message("alice", "u-alice", "a" * 32, blocking=True))
            ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        await acks.aclose()
        assert pool.ran == ["a" * 32] and ack.response["response"]["result"] == {"ok": True}, ack
