"""The invoker's health pings (docs/openwhisk.md §6.4): every interval, and at once on /disable and /enable; none at all
for an invoker no controller supervises (standalone's lean balancer), whose pings would only pile up on the bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.waiting import until
from whisk.entities.errors import BackendUnavailable
from whisk.invoker.service import Invoker
from whisk.messages import HEALTH_TOPIC, PingMessage, invoker_topic
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore


def invoker(bus: MemoryBus, store: MemoryStore, interval_s: float | None) -> Invoker:
    return Invoker(instance=0, bus=bus, store=store, pool=None, image_of=lambda _: "", api_host="",  # type: ignore[arg-type]
                   user_memory_mb=1024, max_intake=1, ping_interval_s=interval_s)


async def test_a_supervised_invoker_pings_and_reports_disable() -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        pings = bus.consume(HEALTH_TOPIC, "health0")
        async with invoker(bus, store, 0.05) as inv:
            first = PingMessage.from_bytes(await asyncio.wait_for(anext(pings), 5))
            assert first.is_enabled
            await inv.disable()
            while PingMessage.from_bytes(await asyncio.wait_for(anext(pings), 5)).is_enabled:
                pass                                  # pings sent before the disable
        await pings.aclose()


async def test_an_unsupervised_invoker_sends_no_pings() -> None:
    async with MemoryBus() as bus, MemoryStore() as store:
        async with invoker(bus, store, None) as inv:
            await asyncio.sleep(0.3)
            await inv.disable()
            await inv.enable()
        assert bus._topics[HEALTH_TOPIC].log == []


async def test_a_disabled_invoker_still_takes_what_was_sent_to_it() -> None:
    """As OpenWhisk's: /disable tells the controllers (they send nothing new), and what a controller sent before it
    knew still runs; left on the topic, it would be forced to an error by the ack timeout and run late after
    /enable."""
    async with MemoryBus() as bus, MemoryStore() as store:
        async with invoker(bus, store, 0.05) as inv:
            await inv.disable()
            await bus.send(invoker_topic(0), b'{"not": "an activation"}')
            for _ in range(100):
                if inv.taken:
                    break
                await asyncio.sleep(0.02)
            assert inv.taken == 1 and not inv.enabled


class BrokerBus(MemoryBus):
    """Sends fail while `state` is "gone" (the Kafka bus's BackendUnavailable) and hang while it is "stopped" (a send
    to a broker that takes no request waits for the bus's timeout)."""

    state = "up"

    async def send(self, topic: str, message: Any) -> None:
        if self.state == "gone":
            raise BackendUnavailable("kafka: cannot send to health: KafkaConnectionError()")
        while self.state == "stopped":
            await asyncio.sleep(0.01)
        await super().send(topic, message)


async def test_bus_answers_follows_the_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bus_answers` (the gauge whisk_bus_up): false once a ping fails, or none has gone through for a while (a send
    that hangs); true again once one goes through."""
    monkeypatch.setattr("whisk.invoker.service.BUS_SILENT_S", 0.2)
    async with BrokerBus() as bus, MemoryStore() as store:
        async with invoker(bus, store, 0.05) as inv:
            assert inv.bus_answers()
            bus.state = "gone"
            await until("away", lambda: not inv.bus_answers(), 2)
            bus.state = "up"
            await until("back", inv.bus_answers, 2)
            bus.state = "stopped"
            await until("silent", lambda: not inv.bus_answers(), 2)
            bus.state = "up"
            await until("back again", inv.bus_answers, 2)
