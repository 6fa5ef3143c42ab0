"""An invoker stopped (SIGTERM) while activations still run past its grace ends each with a record and an ack."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.invoker.test_ack_failures import ID, one_blocking_activation
from whisk.containerpool.job import RunResult
from whisk.entities.document import now_ms
from whisk.messages import Acknowledgement
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore

STOPPED = "The activation was interrupted: the platform stopped before it completed."


class Endless:
    """A pool whose run never ends (an action longer than the stop's grace); `answer` first answers the caller."""

    def __init__(self, answer: bool = False) -> None:
        self.started = asyncio.Event()
        self._answer = answer

    async def run(self, job: Any, on_response: Any = None) -> RunResult:
        if self._answer:
            now = now_ms()
            on_response(RunResult({"statusCode": 0, "result": {"answered": True}}, now, now, None, False, "warmed"))
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_an_activation_cut_short_by_the_stop_is_recorded_and_acknowledged() -> None:
    """The cancelled task stored nothing and sent no ack: in a cluster the controller held the slot and the blocking
    caller until it found the invoker silent (10 s), then recorded that the invoker did not acknowledge it in time,
    where docs/operations.md says what the stop cut short is recorded as interrupted by the stop."""
    async with MemoryBus() as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        pool = Endless()
        async with one_blocking_activation(bus, store, pool) as invoker:
            await asyncio.wait_for(pool.started.wait(), 5)
            await asyncio.wait_for(invoker.drain(0.05), 5)
            ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        assert ack.activation_id == ID and ack.is_completion and ack.is_system_error
        assert ack.response is not None and ack.response["response"]["result"] == {"error": STOPPED}
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"error": STOPPED}, record
        assert record["response"]["statusCode"] == 3
        await acks.aclose()


async def test_an_answered_activation_cut_short_keeps_the_answer_its_caller_got() -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        pool = Endless(answer=True)
        async with one_blocking_activation(bus, store, pool) as invoker:
            await asyncio.wait_for(pool.started.wait(), 5)
            await asyncio.wait_for(invoker.drain(0.05), 5)
            result = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
            assert result.is_result
            completion = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
            assert completion.is_completion and not completion.is_system_error
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"answered": True}, record
        assert any("logs were not collected" in line for line in record["logs"]), record["logs"]
        await acks.aclose()


class Hanging(MemoryStore):
    """A store whose record writes never return."""

    async def put_activation(self, record: Any) -> None:
        await asyncio.Event().wait()


async def test_the_records_of_the_stop_are_bounded_by_a_store_that_hangs() -> None:
    """Storing what the stop cut short must not hold the stop past its bound when the store hangs."""
    async with MemoryBus() as bus, Hanging() as store:
        pool = Endless()
        async with one_blocking_activation(bus, store, pool) as invoker:
            await asyncio.wait_for(pool.started.wait(), 5)
            invoker.stop_records_s = 0.1
            began = asyncio.get_running_loop().time()
            await asyncio.wait_for(invoker.drain(0.05), 5)
            assert asyncio.get_running_loop().time() - began < 1.0


async def test_an_activation_whose_action_is_still_being_fetched_is_recorded_too() -> None:
    class SlowReads(MemoryStore):
        async def get(self, doc_id: str) -> Any:
            await asyncio.Event().wait()

    async with MemoryBus() as bus, SlowReads() as store:
        acks = bus.consume("completed0", "completed0")
        async with one_blocking_activation(bus, store, Endless()) as invoker:
            while not invoker._running:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            await asyncio.wait_for(invoker.drain(0.05), 5)
            ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        assert ack.activation_id == ID and ack.is_completion and ack.is_system_error
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"error": STOPPED}, record
        await acks.aclose()


class Quick:
    """A pool whose run ends at once, with a result; `answer` first answers the caller with it."""

    def __init__(self, answer: bool = False) -> None:
        self._answer = answer

    async def run(self, job: Any, on_response: Any = None) -> RunResult:
        now = now_ms()
        result = RunResult({"statusCode": 0, "result": {"ran": True}}, now, now, None, False, "warmed")
        if self._answer:
            on_response(result)
        return result


async def test_an_activation_the_stop_finds_storing_its_record_still_stores_it_and_acknowledges() -> None:
    """The run was over and its record on its way to a slow store when the grace ended: the stop's cancellation
    ended the store's write and the ack with it (nothing stored, nothing sent: the controller held the slot and the
    blocking caller until it found the invoker silent), where it had only milliseconds of work left, bounded by the
    drain as the interrupted ones' are."""
    class SlowWrites(MemoryStore):
        writing = asyncio.Event()

        async def put_activation(self, record: Any) -> None:
            self.writing.set()
            await asyncio.sleep(0.3)
            await super().put_activation(record)

    async with MemoryBus() as bus, SlowWrites() as store:
        acks = bus.consume("completed0", "completed0")
        async with one_blocking_activation(bus, store, Quick()) as invoker:
            await asyncio.wait_for(store.writing.wait(), 5)
            await asyncio.wait_for(invoker.drain(0.05), 5)
            ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        assert ack.activation_id == ID and ack.is_completion and not ack.is_system_error
        assert ack.response is not None and ack.response["response"]["result"] == {"ran": True}
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"ran": True}, record
        await acks.aclose()


async def test_a_record_the_stop_finds_on_its_way_to_a_store_that_hangs_is_bounded_too() -> None:
    async with MemoryBus() as bus, Hanging() as store:
        async with one_blocking_activation(bus, store, Quick()) as invoker:
            while not invoker._running:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            invoker.stop_records_s = 0.1
            began = asyncio.get_running_loop().time()
            await asyncio.wait_for(invoker.drain(0.05), 5)
            assert asyncio.get_running_loop().time() - began < 1.0


async def test_a_result_ack_the_stop_cuts_goes_with_the_completion() -> None:
    """The run answered its blocking caller and the result ack was still on its way (a slow bus) when the grace
    ended: the cancellation cut the result ack with the task. The completion carries the result (a combined ack)."""
    class SlowAcks(MemoryBus):
        sending = asyncio.Event()

        async def send(self, topic: str, message: Any) -> None:
            if topic.startswith("completed"):
                self.sending.set()
                await asyncio.sleep(0.3)
            await super().send(topic, message)

    async with SlowAcks() as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        async with one_blocking_activation(bus, store, Quick(answer=True)) as invoker:
            await asyncio.wait_for(bus.sending.wait(), 5)
            await asyncio.wait_for(invoker.drain(0.05), 5)
            ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        assert ack.activation_id == ID and ack.is_result and ack.is_completion, ack
        assert ack.response is not None and ack.response["response"]["result"] == {"ran": True}
        record = await store.get_activation("guest", ID)
        assert record is not None and record["response"]["result"] == {"ran": True}, record
        await acks.aclose()


async def test_an_invoker_left_by_an_error_drains_within_its_grace() -> None:
    """A start that fails after the feed took work (Consul refusing the registration, a signal during the start)
    leaves the invoker through `__aexit__`, which waited for its activations however long they took: the process
    that had said its start failed hung for as long as its backlog ran. It drains within the stop's grace."""
    async with MemoryBus() as bus, MemoryStore() as store:
        acks = bus.consume("completed0", "completed0")
        pool = Endless()

        async def failed_start() -> None:
            async with one_blocking_activation(bus, store, pool, exit_grace_s=0.05):
                await asyncio.wait_for(pool.started.wait(), 5)
                raise ConnectionError("consul: registration refused")

        try:
            await asyncio.wait_for(failed_start(), 5)
        except ConnectionError:
            pass
        ack = Acknowledgement.read(await asyncio.wait_for(anext(acks), 5))
        assert ack.activation_id == ID and ack.is_system_error
        await acks.aclose()
