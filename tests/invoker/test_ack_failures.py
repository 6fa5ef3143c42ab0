"""Every message the invoker takes ends with a stored record, whatever happens to its acks on the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.invoker.pools import OneRun
from whisk.containerpool.job import RunResult
from whisk.entities.errors import BackendUnavailable, TooLarge
from whisk.invoker.service import Invoker
from whisk.messages import Acknowledgement, ActivationMessage, invoker_topic
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore
from whisk.entities.document import now_ms

ID = "a" * 32


@asynccontextmanager
async def one_blocking_activation(bus: MemoryBus, store: MemoryStore, pool: Any,
                                  ack_retry_s: float = 300.0, exit_grace_s: float | None = None
                                  ) -> AsyncIterator[Invoker]:
    """An invoker on `pool`, sent one blocking activation of a stored action; yields while it runs."""
    await store.put({"_id": "guest/a", "entityType": "action", "namespace": "guest", "name": "a",
                     "exec": {"kind": "python:3", "code": "def main(a): return a"}})
    invoker = Invoker(instance=0, bus=bus, store=store, pool=pool, image_of=lambda _: "", api_host="",
                      user_memory_mb=1024, max_intake=1, ping_interval_s=None, ack_retry_s=ack_retry_s,
                      exit_grace_s=exit_grace_s)
    async with invoker:
        await bus.send(invoker_topic(0), ActivationMessage(
            transid=["t", 0], action={"path": "guest", "name": "a"}, revision=None,
            user={"namespace": {"name": "guest"}}, activation_id=ID, root_controller={"asString": "0"},
            blocking=True))
        yield invoker


class AckBus(MemoryBus):
    """Acks are too large for the bus, and the broker is gone by the time the shrunk one is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.ack_sends = 0

    async def send(self, topic: str, message: Any) -> None:
        if topic.startswith("completed"):
            self.ack_sends += 1
            if self.ack_sends % 2:
                raise TooLarge("The message exceeds the bus limit.")
            raise BackendUnavailable("The message bus is not reachable.")
        await super().send(topic, message)


async def test_a_result_ack_that_cannot_be_sent_still_leaves_the_record_stored() -> None:
    async with AckBus() as bus, MemoryStore() as store:
        async with one_blocking_activation(bus, store, OneRun(), ack_retry_s=0) as invoker:
            for _ in range(200):
                if await store.get_activation("guest", ID) is not None and not invoker._running:
                    break
                await asyncio.sleep(0.01)
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"ok": True}, record
        assert bus.ack_sends == 4            # the result ack and the completion ack, each tried shrunk too


class BrokenPool:
    """A pool with a bug: it raises what no container error is."""

    async def run(self, job: Any, on_response: Any = None) -> RunResult:
        raise KeyError("a bug")


async def test_a_run_that_fails_with_a_bug_still_ends_with_a_record_and_its_ack() -> None:
    """The activation's task logged the crash and ended: no record and no ack, so the controller held the slot (and
    a blocking caller) until the ack timeout, minutes later."""
    async with MemoryBus() as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        async with one_blocking_activation(bus, store, BrokenPool()):
            ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
            assert ack.activation_id == ID and ack.is_completion and ack.is_system_error
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["statusCode"] == 3, record
        await acks.aclose()


class AnswersThenBreaks:
    """A pool that answers the caller, then fails with a bug before it returns."""

    async def run(self, job: Any, on_response: Any = None) -> RunResult:
        now = now_ms()
        on_response(RunResult({"statusCode": 0, "result": {"answered": True}}, now, now, None, False, "warmed"))
        await asyncio.sleep(0)
        raise KeyError("a bug")


async def test_a_bug_after_the_answer_stores_the_record_the_caller_got() -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        async with one_blocking_activation(bus, store, AnswersThenBreaks()):
            result = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
            assert result.is_result and result.response["response"]["result"] == {"answered": True}
            completion = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
            assert completion.is_completion
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"answered": True}, record
        await acks.aclose()


class AwayBus(MemoryBus):
    """The broker is away for the first `away` ack sends (each fails as the Kafka bus does after its timeout)."""

    def __init__(self, away: int) -> None:
        super().__init__()
        self.away = away
        self.ack_sends = 0

    async def send(self, topic: str, message: Any) -> None:
        if topic.startswith("completed"):
            self.ack_sends += 1
            if self.ack_sends <= self.away:
                raise BackendUnavailable("kafka: cannot send to completed0: TimeoutError()")
        await super().send(topic, message)


async def test_acks_are_sent_again_until_the_bus_is_back(monkeypatch: Any) -> None:
    """Given up after one send (the bus's 30 s timeout), an ack lost to a broker outage left the controller holding
    the activation's slot until its ack timeout, then counted as the invoker's timeout: both acks arrive, in order,
    once the bus takes them again."""
    monkeypatch.setattr("whisk.invoker.service.ACK_RETRY_PAUSE_S", 0.01)
    async with AwayBus(away=5) as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        async with one_blocking_activation(bus, store, OneRun()):
            result = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
            completion = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        assert result.is_result and result.response["response"]["result"] == {"ok": True}
        assert completion.is_completion and completion.activation_id == ID
        assert bus.ack_sends == 7
        await acks.aclose()
