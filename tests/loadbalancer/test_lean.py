"""The lean balancer and its in-flight book over the real in-process bus (docs/openwhisk.md §5.3, §5.5)."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
from aiohttp import web

from whisk import roles
from whisk.config import Settings
from whisk.entities.errors import BackendUnavailable
from whisk.loadbalancer.base import BUS_UNAVAILABLE, Forced
from whisk.loadbalancer.lean import LeanBalancer
from whisk.messages import Acknowledgement, ActivationMessage, completed_topic, controller_instance, invoker_topic
from whisk.messaging.memory import MemoryBus
from whisk.roles import BUS


def message(activation_id: str, blocking: bool = True) -> ActivationMessage:
    return ActivationMessage(
        transid=["tid", 1], action={"path": "guest", "name": "a", "version": "0.0.1"}, revision=None,
        user={"subject": "guest", "namespace": {"name": "guest", "uuid": "u1"}, "authkey": {"api_key": "u1:k"}},
        activation_id=activation_id, root_controller=controller_instance(0), blocking=blocking, content={"x": 1})


async def test_result_then_completion_resolves_waiter_and_frees_the_slot() -> None:
    async with MemoryBus() as bus:
        released = []
        async with LeanBalancer(bus, controller=0, on_release=lambda e, o: released.append((e.activation_id, o))) as lb:
            feed = bus.consume(invoker_topic(0), "invoker0").__aiter__()
            waiter = await lb.publish(message("a" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                      concurrency=1, blackbox=False)
            sent = ActivationMessage.read(await asyncio.wait_for(feed.__anext__(), 5))
            assert sent.activation_id == "a" * 32 and sent.content == {"x": 1}
            assert lb.in_flight("u1") == 1 and lb.pending("a" * 32) is not None
            record = {"activationId": "a" * 32, "response": {"statusCode": 0, "result": {"ok": True}}}
            await bus.send(completed_topic(0), Acknowledgement(["tid", 1], "a" * 32, record).to_bytes())
            assert await asyncio.wait_for(waiter, 5) == record
            assert lb.in_flight("u1") == 1          # the result alone does not free the slot
            await bus.send(completed_topic(0), Acknowledgement(["tid", 1], "a" * 32, None, {"instance": 0}).to_bytes())
            for _ in range(500):
                if not released:
                    await asyncio.sleep(0.01)
            assert released == [("a" * 32, "success")] and lb.in_flight("u1") == 0


async def test_completion_without_result_wakes_the_waiter_with_the_id() -> None:
    async with MemoryBus() as bus:
        async with LeanBalancer(bus, controller=0) as lb:
            waiter = await lb.publish(message("b" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                      concurrency=1, blackbox=False)
            ack = Acknowledgement(["tid", 1], "b" * 32, "b" * 32, {"instance": 0}, is_system_error=True)
            await bus.send(completed_topic(0), ack.to_bytes())
            assert await asyncio.wait_for(waiter, 5) == "b" * 32


async def test_forced_completion_after_the_ack_timeout() -> None:
    async with MemoryBus() as bus:
        async with LeanBalancer(bus, controller=0, timeout_factor=0.0, timeout_addon_s=0.05) as lb:
            waiter = await lb.publish(message("c" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                      concurrency=1, blackbox=False)
            with pytest.raises(Forced):
                await asyncio.wait_for(waiter, 5)
            assert lb.in_flight("u1") == 0 and lb.forced_total == 1


async def test_forced_completion_of_an_abandoned_waiter_leaves_no_unretrieved_exception() -> None:
    """A blocking caller that already had its 202 no longer awaits: forcing its entry must not make asyncio log
    "Future exception was never retrieved" (seen in a cluster soak)."""
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        async with MemoryBus() as bus:
            async with LeanBalancer(bus, controller=0, timeout_factor=0.0, timeout_addon_s=0.05) as lb:
                waiter = await lb.publish(message("f" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                          concurrency=1, blackbox=False)
                while lb.forced_total == 0:
                    await asyncio.sleep(0.01)
                del waiter
                gc.collect()
        assert reported == []
    finally:
        loop.set_exception_handler(None)


def test_acks_round_trip_in_openwhisk_shapes() -> None:
    combined = Acknowledgement(["t", 5], "d" * 32, {"activationId": "d" * 32}, {"instance": 0}, False)
    parsed = Acknowledgement.from_bytes(combined.to_bytes())
    assert parsed.is_result and parsed.is_completion and parsed.activation_id == "d" * 32
    completion = Acknowledgement.from_bytes(Acknowledgement(["t", 5], "e" * 32, None, {"instance": 0}).to_bytes())
    assert completion.is_completion and not completion.is_result and completion.activation_id == "e" * 32
    shrunk = Acknowledgement.from_bytes(combined.shrunk().to_bytes())
    assert shrunk.response == "d" * 32


class RefusingBus(MemoryBus):
    """A broker away: every send to an invoker's topic is refused, as KafkaBus says it."""

    async def send(self, topic: str, message: object) -> None:
        if topic.startswith("invoker"):
            raise BackendUnavailable(f"kafka: cannot send to {topic}: NodeNotReadyError('node id 1')")
        await super().send(topic, message)  # type: ignore[arg-type]


async def test_a_send_the_bus_refused_is_a_503_that_names_no_topic_or_client_error() -> None:
    """Seen in a broker restart under load: callers were answered "kafka: cannot send to invoker0:
    NodeNotReadyError(...)", the bus's own detail, where a store's refusal says only "The database is unavailable."
    The detail goes to the log."""
    async with RefusingBus() as bus:
        async with LeanBalancer(bus, controller=0) as lb:
            with pytest.raises(BackendUnavailable) as refused:
                await lb.publish(message("d" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                 concurrency=1, blackbox=False)
            assert str(refused.value) == BUS_UNAVAILABLE
            assert lb.in_flight("u1") == 0


async def test_the_ack_timeout_floor_is_the_configured_standard_action_timeout() -> None:
    """OpenWhisk's completion-ack timeout is `max(action timeout, TimeLimit.STD_DURATION) × factor + add-on`, its
    floor the configured standard timeout (`whisk.time-limit.std`), which whisk's WHISK_LIMIT_STD_ACTION_TIMEOUT
    sets: the balancer took a fixed 60 s instead (here 60 s, not 0.2 s)."""
    settings = Settings.from_env({"WHISK_DATA_DIR": "/nonexistent", "WHISK_LIMIT_STD_ACTION_TIMEOUT": "200",
                                  "WHISK_ACK_TIMEOUT_FACTOR": "1", "WHISK_ACK_TIMEOUT_ADDON_S": "0"})
    async with MemoryBus() as bus:
        app = web.Application()
        app[BUS] = bus
        async with roles._balancer_of(settings, app)(lambda entry, outcome: None) as lb:
            started = time.monotonic()
            waiter = await lb.publish(message("d" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=100,
                                      concurrency=1, blackbox=False)
            with pytest.raises(Forced):
                await asyncio.wait_for(waiter, 5)
            assert 0.15 < time.monotonic() - started < 2
