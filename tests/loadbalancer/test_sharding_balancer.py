"""The sharding balancer over the real in-process bus, memory store and local discovery (docs/openwhisk.md §5.5, §6):
supervision from pings, the health test action and its completion, placement, slots freed by completions, disabled
invokers. The invokers are played by the test, reading their topics and answering as an invoker would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from tests.support import log_lines
from tests.support.waiting import until
from whisk import logs
from whisk.discovery.base import InvokerInfo
from whisk.discovery.local import LocalDiscovery
from whisk.entities.errors import BackendUnavailable, NoInvokers
from whisk.loadbalancer.sharding import action_hash
from whisk.loadbalancer import common, sharding_balancer
from whisk.loadbalancer.sharding_balancer import HEALTH_TID, ShardingBalancer
from whisk.messages import (HEALTH_TOPIC, Acknowledgement, ActivationMessage, PingMessage, completed_topic,
                            controller_instance, invoker_instance, invoker_topic)
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore


class Rig:
    def __init__(self, bus: MemoryBus, store: MemoryStore, discovery: LocalDiscovery, lb: ShardingBalancer,
                 released: list[tuple[str, str]]) -> None:
        self.bus, self.store, self.discovery, self.lb, self.released = bus, store, discovery, lb, released
        self.feeds: dict[int, Any] = {}

    async def ping(self, instance: int, enabled: bool = True, taken: int = 0, has_room: bool = True) -> None:
        ping = PingMessage(invoker_instance(instance, 1024), enabled, taken, has_room)
        await self.bus.send(HEALTH_TOPIC, ping.to_bytes())

    async def next_message(self, instance: int, *, answer_tests: bool = True) -> ActivationMessage:
        """The next message on the invoker's topic; health test actions are answered with a success and skipped
        unless `answer_tests` is false (a Success while Unhealthy asks for one more, docs/openwhisk.md §6.4)."""
        feed = self.feeds.setdefault(instance, self.bus.consume(invoker_topic(instance), f"invoker{instance}")
                                     .__aiter__())
        while True:
            msg = ActivationMessage.read(await asyncio.wait_for(feed.__anext__(), 5))
            if not (answer_tests and msg.transid[0] == HEALTH_TID):
                return msg
            await self.complete(msg, instance)

    async def complete(self, msg: ActivationMessage, instance: int, system_error: bool = False) -> None:
        ack = Acknowledgement(msg.transid, msg.activation_id, None, invoker_instance(instance, 1024),
                              is_system_error=system_error)
        await self.bus.send(completed_topic(0), ack.to_bytes())


@asynccontextmanager
async def rigged(bus: MemoryBus, discovery: LocalDiscovery | None = None, **balancer: Any) -> AsyncIterator[Rig]:
    """A sharding balancer on `bus` (controller 0), with the store and discovery it needs, its releases recorded."""
    released: list[tuple[str, str]] = []
    async with bus, MemoryStore() as store, discovery or LocalDiscovery() as discovery:
        async with ShardingBalancer(bus, store, discovery, controller=0,
                                    on_release=lambda e, o: released.append((e.activation_id, o)), **balancer) as lb:
            yield Rig(bus, store, discovery, lb, released)


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    async with rigged(MemoryBus(), discovery_interval_s=0.05, stall_after_s=0.3) as r:
        yield r


def message(activation_id: str, name: str = "a", blocking: bool = False) -> ActivationMessage:
    return ActivationMessage(
        transid=["tid", 1], action={"path": "guest", "name": name, "version": "0.0.1"}, revision=None,
        user={"subject": "guest", "namespace": {"name": "guest", "uuid": "u1"}, "authkey": {"api_key": "u1:k"}},
        activation_id=activation_id, root_controller=controller_instance(0), blocking=blocking, content={})


async def healthy(rig: Rig, instance: int) -> None:
    """Ping as `instance`, answer its health test action with a success: it is then `up`."""
    await rig.ping(instance)
    test = await rig.next_message(instance, answer_tests=False)
    assert test.transid[0] == HEALTH_TID and test.action["path"] == "whisk.system"
    assert test.action["name"] == "invokerHealthTestAction0" and test.blocking is False
    assert rig.lb.invokers()[f"invoker{instance}"] == "unhealthy"
    await rig.complete(test, instance)
    await until(f"invoker{instance} up", lambda: rig.lb.invokers().get(f"invoker{instance}") == "up")


async def test_the_test_action_is_stored_at_start(rig: Rig) -> None:
    doc = await rig.store.get("whisk.system/invokerHealthTestAction0")
    assert doc is not None and doc["exec"]["kind"] == "nodejs:default" and doc["limits"]["memory"] == 128


async def test_no_invokers_means_503(rig: Rig) -> None:
    with pytest.raises(NoInvokers):
        await rig.lb.publish(message("a" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                             concurrency=1, blackbox=False)
    assert not rig.lb.entries()


async def test_ping_then_test_action_success_makes_an_invoker_up(rig: Rig) -> None:
    await healthy(rig, 0)
    assert rig.released == []                    # the test action went to supervision only


async def test_discovery_lists_invokers_offline_until_they_ping(rig: Rig) -> None:
    await rig.discovery.register_invoker(InvokerInfo(1, 2048), ttl_s=10)
    await until("invoker1 known", lambda: "invoker1" in rig.lb.invokers())
    assert rig.lb.invokers() == {"invoker0": "down", "invoker1": "down"}


async def test_publish_goes_to_the_home_invoker_and_completion_frees_the_slot(rig: Rig) -> None:
    await healthy(rig, 0)
    await healthy(rig, 1)
    name = next(f"a{i}" for i in range(100) if action_hash("guest", f"guest/a{i}") % 2 == 1)
    free = rig.lb.scheduler.free_mb(1)
    await rig.lb.publish(message("b" * 32, name), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                         concurrency=1, blackbox=False)
    assert rig.lb.scheduler.free_mb(1) == free - 256 and rig.lb.in_flight("u1") == 1
    sent = await rig.next_message(1)
    assert sent.activation_id == "b" * 32
    await rig.complete(sent, 1)
    await until("released", lambda: rig.released == [("b" * 32, "success")])
    assert rig.lb.scheduler.free_mb(1) == free and not rig.lb.entries()


@pytest.fixture
def every_line(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    with log_lines.every_line(monkeypatch, common, sharding_balancer) as lines:
        yield lines


async def test_a_publish_says_at_debug_which_invoker_got_the_activation(rig: Rig,
                                                                       every_line: list[dict[str, Any]]) -> None:
    """The controller's half of following one activation into the invoker's log, which holds the rest."""
    await healthy(rig, 1)
    await rig.lb.publish(message("d" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                         concurrency=1, blackbox=False)
    (published,) = [line for line in every_line if line["event"] == "loadbalancer.published"]
    assert published["invoker"] == 1 and published["log_level"] == "debug", published


async def test_an_update_of_the_concurrency_while_activations_run_frees_every_slot(rig: Rig) -> None:
    """An action's concurrency limit changes (an update) while activations of the old definition run: each
    release must find the slots its acquisition took. With one key per action name, a release counted with the
    new limit kept a container equivalent's memory for ever, or failed to find slots another limit had freed."""
    await healthy(rig, 0)
    free = rig.lb.scheduler.free_mb(0)

    def versioned(activation_id: str, version: str) -> ActivationMessage:
        msg = message(activation_id, "conc")
        msg.action["version"] = version
        return msg

    # (old limit, new limit, how many of each, which completes first): c=2 then 5 kept 256 MB for ever; c=3 then
    # 2 found no slots for the old activation's release.
    for first, second, n_new, old_first in ((2, 5, 1, True), (3, 2, 2, False)):
        old = versioned(f"old{first}".ljust(32, "o"), "0.0.1")
        new = [versioned(f"new{second}{i}".ljust(32, "n"), "0.0.2") for i in range(n_new)]
        for msg, concurrency in [(old, first)] + [(m, second) for m in new]:
            await rig.lb.publish(msg, namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                 concurrency=concurrency, blackbox=False)
            assert (await rig.next_message(0)).activation_id == msg.activation_id
        for msg in [old] + new if old_first else new + [old]:
            await rig.complete(msg, 0)
        await until("all released", lambda: not rig.lb.entries())
        assert rig.lb.scheduler.free_mb(0) == free


async def test_an_action_made_again_with_other_memory_while_activations_run_frees_what_each_took(rig: Rig) -> None:
    """An action deleted and created again is at version 0.0.1 again, with whatever memory it now asks for. Its
    activations and the old definition's must not share concurrency slots: a container equivalent's memory is given
    back with the last release's memory, so 512 MB taken and 256 MB given back lost 256 MB of the invoker for good
    (and the other order made 256 MB up)."""
    await healthy(rig, 0)
    free = rig.lb.scheduler.free_mb(0)
    for old_mb, new_mb in ((512, 256), (256, 512)):
        old, new = message(f"old{old_mb}".ljust(32, "o"), "again"), message(f"new{new_mb}".ljust(32, "n"), "again")
        for msg, memory_mb in ((old, old_mb), (new, new_mb)):
            await rig.lb.publish(msg, namespace_uuid="u1", memory_mb=memory_mb, timeout_ms=1000, concurrency=2,
                                 blackbox=False)
            assert (await rig.next_message(0)).activation_id == msg.activation_id
        for msg in (old, new):
            await rig.complete(msg, 0)
        await until("all released", lambda: not rig.lb.entries())
        assert rig.lb.scheduler.free_mb(0) == free, (old_mb, new_mb)


def overloads(partition: str) -> float:
    return REGISTRY.get_sample_value("whisk_loadbalancer_overloads_total", {"partition": partition}) or 0.0


async def test_placements_forced_under_sustained_overload_are_all_counted_and_a_bounded_number_logged(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster too small under load forces every activation: the metric counts each, the log says so a few
    times, then how many it left out, rather than a warning per activation."""
    monkeypatch.setattr(sharding_balancer, "_OVERLOADS", logs.Bounded(clock=lambda: 0.0), raising=False)
    await healthy(rig, 0)
    before = overloads("managed")
    with capture_logs() as lines:
        for i in range(4 + 100):                 # 4 fill invoker0's 1024 MB; the rest are forced onto it
            await rig.lb.publish(message(f"over{i}".ljust(32, "o")), namespace_uuid="u1", memory_mb=256,
                                 timeout_ms=60_000, concurrency=1, blackbox=False)
    assert overloads("managed") - before == 100
    assert len([line for line in lines if line["event"] == "loadbalancer.overload"]) == 20, len(lines)


async def test_a_placement_forced_as_every_invoker_is_full_is_counted(rig: Rig) -> None:
    """OpenWhisk counts each overload (a random healthy invoker forced to take work no invoker had room for, its
    `loadbalancer_managed_system_overload`): an operator's sign that the cluster is too small. whisk only logged it."""
    await healthy(rig, 0)
    before = overloads("managed"), overloads("blackbox")
    for i in range(1024 // 256):                 # fills invoker0's 1024 MB
        await rig.lb.publish(message(f"fill{i}".ljust(32, "f")), namespace_uuid="u1", memory_mb=256,
                             timeout_ms=1000, concurrency=1, blackbox=False)
    assert (overloads("managed"), overloads("blackbox")) == before
    await rig.lb.publish(message("over".ljust(32, "o")), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                         concurrency=1, blackbox=False)
    await rig.lb.publish(message("overbb".ljust(32, "o")), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                         concurrency=1, blackbox=True)
    assert rig.lb.scheduler.free_mb(0) == -512
    assert (overloads("managed"), overloads("blackbox")) == (before[0] + 1, before[1] + 1)


async def test_system_errors_make_an_invoker_unhealthy(rig: Rig) -> None:
    await healthy(rig, 0)
    outcomes = [False] * 3 + [True] * 4          # past priming (> 3 outcomes), then > 3 system errors in 10
    for i, system_error in enumerate(outcomes):
        assert rig.lb.invokers()["invoker0"] == "up"
        await rig.lb.publish(message(f"{i:032d}"), namespace_uuid="u1", memory_mb=128, timeout_ms=1000,
                             concurrency=1, blackbox=False)
        await rig.complete(await rig.next_message(0), 0, system_error=system_error)
        await until(f"completion {i}", lambda: len(rig.released) == i + 1)
    await until("unhealthy", lambda: rig.lb.invokers()["invoker0"] == "unhealthy")
    test = await rig.next_message(0, answer_tests=False)     # entering Unhealthy sends a test action
    assert test.transid[0] == HEALTH_TID
    assert [o for _, o in rig.released] == ["success"] * 3 + ["system_error"] * 4


async def test_a_disabled_invoker_is_down_and_gets_no_work(rig: Rig) -> None:
    await healthy(rig, 0)
    await rig.ping(0, enabled=False)
    await until("down", lambda: rig.lb.invokers()["invoker0"] == "down")
    with pytest.raises(NoInvokers):
        await rig.lb.publish(message("c" * 32), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                             concurrency=1, blackbox=False)


async def test_invokers_scaled_away_from_the_top_are_forgotten_and_blackbox_actions_run_again() -> None:
    """Scaling invokers down (a StatefulSet removes the highest ordinals) left them known for good, `down`, and the
    blackbox partition is the last invoker(s) by index: every blackbox action was 503 "No invokers available." while
    the others were up, until each controller restarted (OpenWhisk's balancer never forgets an invoker either). The
    highest invokers gone from discovery and silent for a while are forgotten now; one still listed, or below an
    invoker that stays, is kept (down)."""
    async with rigged(MemoryBus(), discovery_interval_s=0.05, ping_timeout_s=0.3, depart_after_s=0.6) as rig:
        alive = {0, 1, 2, 3}

        async def pinging() -> None:
            while True:
                for i in list(alive):
                    await rig.ping(i)
                await asyncio.sleep(0.05)

        pinger = asyncio.create_task(pinging())
        try:
            for i in range(4):
                await rig.discovery.register_invoker(InvokerInfo(i, 1024), ttl_s=10)
                await healthy(rig, i)
            await rig.discovery.deregister_invoker(3)          # scaled away: stops pinging
            await rig.discovery.deregister_invoker(1)          # gone too, but below invoker2
            alive -= {1, 3}
            await until("invoker3 forgotten", lambda: "invoker3" not in rig.lb.invokers(), 5)
            assert rig.lb.invokers() == {"invoker0": "up", "invoker1": "down", "invoker2": "up"}
            assert rig.lb.scheduler.blackbox == [2]
            await rig.lb.publish(message("g" * 32, "image"), namespace_uuid="u1", memory_mb=256, timeout_ms=1000,
                                 concurrency=1, blackbox=True)
            assert (await rig.next_message(2)).activation_id == "g" * 32
            alive.discard(2)                                  # silent, but still listed: kept
            await until("invoker2 down", lambda: rig.lb.invokers()["invoker2"] == "down", 5)
            await asyncio.sleep(1.0)
            assert "invoker2" in rig.lb.invokers()
        finally:
            pinger.cancel()


async def test_an_invoker_that_pings_but_takes_nothing_is_unhealthy(rig: Rig) -> None:
    """Beyond OpenWhisk (its issue #2285): pings say there is room, `taken` never moves, work waits."""
    await healthy(rig, 0)
    await rig.lb.publish(message("d" * 32), namespace_uuid="u1", memory_mb=128, timeout_ms=1000, concurrency=1,
                         blackbox=False)
    end = time.monotonic() + 5
    while rig.lb.invokers()["invoker0"] == "up":
        assert time.monotonic() < end, "a stalled invoker stayed up"
        await rig.ping(0, taken=0, has_room=True)
        await asyncio.sleep(0.05)
    assert rig.lb.invokers()["invoker0"] == "unhealthy" and rig.lb.pool.stalled(0)


async def test_a_busy_invoker_is_not_stalled(rig: Rig) -> None:
    await healthy(rig, 0)
    await rig.lb.publish(message("e" * 32), namespace_uuid="u1", memory_mb=128, timeout_ms=1000, concurrency=1,
                         blackbox=False)
    end = time.monotonic() + 1.0                 # over three times stall_after_s
    while time.monotonic() < end:
        await rig.ping(0, taken=0, has_room=False)
        await asyncio.sleep(0.05)
    assert rig.lb.invokers()["invoker0"] == "up" and not rig.lb.pool.stalled(0)


async def test_an_invoker_cut_off_for_a_while_is_used_again_after_one_test_action() -> None:
    """Its work in flight is forced as "lost" when it goes silent; that does not fill its last ten outcomes with
    timeouts, so once it pings again one successful test action makes it up (not Unresponsive, which would wait a
    minute a test action)."""
    async with rigged(MemoryBus(), ping_timeout_s=0.3) as rig:
        lb, released = rig.lb, rig.released
        await healthy(rig, 0)
        for i in range(8):
            await lb.publish(message(f"{i:032d}"), namespace_uuid="u1", memory_mb=128, timeout_ms=60_000,
                             concurrency=1, blackbox=False)
            await rig.next_message(0)                         # taken, never answered: the invoker is cut off
        await until("down", lambda: lb.invokers()["invoker0"] == "down", 5)
        await until("forced", lambda: len(released) == 8)
        assert {outcome for _, outcome in released} == {"lost"} and lb.in_flight("u1") == 0
        await rig.ping(0)                                     # back
        test = await rig.next_message(0, answer_tests=False)
        assert test.transid[0] == HEALTH_TID and lb.invokers()["invoker0"] == "unhealthy"
        await rig.complete(test, 0)
        await until("up", lambda: lb.invokers()["invoker0"] == "up")


async def test_an_invoker_that_falls_silent_is_an_error_in_the_log_and_one_disabled_is_not(
        every_line: list[dict[str, Any]]) -> None:
    """A lost invoker is what an operator must see at any log level, even with nothing in flight on it (so no
    `loadbalancer.invoker.lost`); the ordinary changes (seen, tested, disabled by its operator) are info."""
    async with rigged(MemoryBus(), ping_timeout_s=0.3) as rig:
        await healthy(rig, 0)
        await rig.ping(0, enabled=False)
        await until("disabled", lambda: rig.lb.invokers()["invoker0"] == "down")
        await rig.ping(0)
        await until("back", lambda: rig.lb.invokers()["invoker0"] != "down")
        await until("silent", lambda: rig.lb.invokers()["invoker0"] == "down", 5)
    changes = [(line["state"], line["log_level"]) for line in every_line
               if line["event"] == "loadbalancer.invoker.state"]
    assert changes[-1] == ("down", "error"), changes
    assert all(level == "info" for _, level in changes[:-1]) and ("down", "info") in changes, changes


class FlakyBus(MemoryBus):
    """An in-process bus whose `ping` fails while `away` (the broker stopped: the balancer's own check fails)."""

    away = False

    async def ping(self) -> None:
        if self.away:
            raise BackendUnavailable("kafka 127.0.0.1:9092 does not answer")
        await super().ping()


async def test_invokers_silent_while_the_bus_is_away_keep_their_work() -> None:
    """With the broker away every invoker falls silent at once, while its activations are in Kafka (or done, their
    acks waiting): they are not forced as lost (their callers would get 500 for work that then runs and succeeds),
    but completed by their acks once the bus is back. An invoker still silent once the bus has answered for a
    whole ping timeout is silent itself: its work is forced then."""
    bus = FlakyBus()
    async with rigged(bus, ping_timeout_s=0.3) as rig:
        lb, released = rig.lb, rig.released
        await healthy(rig, 0)
        taken = []
        for i in range(4):
            await lb.publish(message(f"{i:032d}"), namespace_uuid="u1", memory_mb=128, timeout_ms=60_000,
                             concurrency=1, blackbox=False)
            taken.append(await rig.next_message(0))
        bus.away = True                                      # no pings get through, the check fails
        await until("down", lambda: lb.invokers()["invoker0"] == "down", 5)
        await asyncio.sleep(1.5)
        assert released == [] and lb.in_flight("u1") == 4
        bus.away = False                                     # back: the invoker pings and acks again
        await rig.ping(0)
        for msg in taken[:2]:
            await rig.complete(msg, 0)
        await until("acked", lambda: len(released) == 2)
        assert {outcome for _, outcome in released} == {"success"}
        # The invoker falls silent again, now with the bus answering: what it still holds is lost.
        await until("forced", lambda: len(released) == 4, 5)
        assert [outcome for _, outcome in released[2:]] == ["lost", "lost"] and lb.in_flight("u1") == 0


async def test_ack_timeouts_while_the_bus_is_away_do_not_make_the_invoker_unresponsive() -> None:
    """A broker away for longer than the ack timeout: the invokers' acks wait with them, and the activations in flight
    are forced as timeouts. Those say nothing of the invoker, as its silence then says nothing: counted among its last
    ten outcomes they brought every invoker back Unresponsive, to wait up to seven test actions a minute apart (the
    whole cluster "No invokers available." for minutes after the broker was back)."""
    bus = FlakyBus()
    async with rigged(bus, ping_timeout_s=0.3, timeout_factor=0, timeout_addon_s=0.8) as rig:
        lb, released = rig.lb, rig.released
        await healthy(rig, 0)
        for i in range(4):
            await lb.publish(message(f"{i:032d}"), namespace_uuid="u1", memory_mb=128, timeout_ms=1000,
                             concurrency=1, blackbox=False)
            await rig.next_message(0)                        # taken; its ack will wait for the bus
        bus.away = True                                      # the check fails from now on; no pings get through
        await until("forced", lambda: len(released) == 4, 5)
        assert {outcome for _, outcome in released} == {"timeout"} and lb.in_flight("u1") == 0
        bus.away = False                                     # back: the invoker pings again

        async def pinging() -> None:
            while True:
                await rig.ping(0)
                await asyncio.sleep(0.05)

        pinger = asyncio.create_task(pinging())
        try:
            test = await rig.next_message(0, answer_tests=False)
            await rig.complete(test, 0)
            await until("up", lambda: lb.invokers()["invoker0"] == "up", 2)
        finally:
            pinger.cancel()


class SlowSendBus(MemoryBus):
    """An in-process bus whose sends to invoker topics return only once `returned` is set, after the message is on
    the topic (a producer whose broker's answer is slow, or a send retried after its first try was written)."""

    def __init__(self) -> None:
        super().__init__()
        self.returned = asyncio.Event()
        self.returned.set()

    async def send(self, topic: str, message: Any) -> None:
        await super().send(topic, message)
        if topic.startswith("invoker"):
            await self.returned.wait()


async def test_an_activation_completed_before_its_send_returned_is_not_left_pending() -> None:
    """The invoker took, ran and acknowledged the activation before the controller's send returned: it is done, and
    must not be recorded as waiting on the invoker afterwards, where it stayed for good and, the invoker idle with
    room, made it look stalled (Unhealthy, a test action) a stall timeout later."""
    bus = SlowSendBus()
    async with rigged(bus, stall_after_s=0.3) as rig:
        await healthy(rig, 0)
        bus.returned.clear()
        publish = asyncio.create_task(rig.lb.publish(message("f" * 32), namespace_uuid="u1", memory_mb=128,
                                                     timeout_ms=1000, concurrency=1, blackbox=False))
        sent = await rig.next_message(0)
        await rig.ping(0, taken=1)                          # taken: progress
        await rig.complete(sent, 0)
        await until("released", lambda: rig.released == [("f" * 32, "success")])
        bus.returned.set()
        await publish
        end = time.monotonic() + 1.0                        # over three stall timeouts, idle with room
        while time.monotonic() < end:
            await rig.ping(0, taken=1, has_room=True)
            await asyncio.sleep(0.05)
        assert rig.lb.invokers()["invoker0"] == "up" and not rig.lb.pool.stalled(0)


class StoppedBus(MemoryBus):
    """An in-process bus whose `ping` never answers while `stopped` (a broker SIGSTOPped: no failure, no answer)."""

    stopped = False

    async def ping(self) -> None:
        while self.stopped:
            await asyncio.sleep(0.01)
        await super().ping()


async def test_bus_answers_says_when_the_bus_is_away_and_back() -> None:
    """`bus_answers` (the gauge whisk_bus_up) follows the balancer's own check of the bus: false once a check fails,
    or hangs past its wait; true again at the first answer."""
    bus = FlakyBus()
    async with rigged(bus, ping_timeout_s=0.4) as rig:
        assert rig.lb.bus_answers()
        bus.away = True
        await until("away", lambda: not rig.lb.bus_answers(), 2)
        bus.away = False
        await until("back", rig.lb.bus_answers, 2)
    stopped = StoppedBus()
    async with rigged(stopped, ping_timeout_s=0.4) as rig:
        await asyncio.sleep(0.2)
        assert rig.lb.bus_answers()
        stopped.stopped = True
        await until("silent", lambda: not rig.lb.bus_answers(), 2)
        stopped.stopped = False
        await until("back", rig.lb.bus_answers, 2)


class AwayDiscovery(LocalDiscovery):
    """Local discovery that does not answer while `away` (Consul stopped, or cut off)."""

    away = False

    async def invokers(self) -> list[InvokerInfo]:
        if self.away:
            raise BackendUnavailable("consul: Cannot connect to host")
        return await super().invokers()

    async def controllers(self) -> int:
        if self.away:
            raise BackendUnavailable("consul: Cannot connect to host")
        return await super().controllers()


async def test_discovery_away_keeps_what_it_knew_and_is_logged_at_its_start_and_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An outage of Consul was a warning every `discovery_interval_s` (2 s: 30 a minute, per controller). It is one
    warning at its start and one line at its end now; meanwhile the invokers and the controller count stay."""
    discovery = AwayDiscovery()
    with log_lines.every_line(monkeypatch, sharding_balancer) as lines:
        async with rigged(MemoryBus(), discovery, discovery_interval_s=0.02) as rig:
            await discovery.put_setting("controllers", "2")
            await discovery.register_invoker(InvokerInfo(0, 1024), ttl_s=10)
            await healthy(rig, 0)
            await until("two controllers", lambda: rig.lb.controllers() == 2)
            discovery.away = True
            await asyncio.sleep(0.5)                                  # about 25 failed reads
            assert rig.lb.invokers() == {"invoker0": "up"} and rig.lb.controllers() == 2
            await rig.lb.publish(message("h" * 32), namespace_uuid="u1", memory_mb=128, timeout_ms=1000,
                                 concurrency=1, blackbox=False)
            assert (await rig.next_message(0)).activation_id == "h" * 32
            discovery.away = False
            await until("recovered", lambda: [x for x in lines if x["event"].endswith("discovery.recovered")], 3)
    events = [x for x in lines if x["event"].startswith("loadbalancer.discovery.")]
    assert [x["event"] for x in events] == ["loadbalancer.discovery.failed", "loadbalancer.discovery.recovered"]
    assert events[1]["failed_reads"] >= 5
