"""An invoker stopped gracefully (SIGTERM: its drain) leaves nothing it took to run again after its restart; one that
crashes, nothing it took and ran."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.invoker.pools import OneRun
from whisk.containerpool.job import RunResult
from whisk.invoker.service import Invoker
from whisk.messages import ActivationMessage, invoker_topic
from whisk.messaging.memory import MemoryBus
from whisk.store.memory import MemoryStore


class SlowRun(OneRun):
    """OneRun, each run taking a moment: the invoker's stop comes while it runs."""

    async def run(self, job: Any, on_response: Any = None) -> RunResult:
        await asyncio.sleep(0.3)
        return await super().run(job, on_response)


def invoker(bus: MemoryBus, store: MemoryStore, pool: Any) -> Invoker:
    # One message at a time: the one taken last is still in the feed's hand while it runs.
    return Invoker(instance=0, bus=bus, store=store, pool=pool, image_of=lambda _: "", api_host="",
                   user_memory_mb=1024, max_intake=1, ping_interval_s=None)


async def test_an_activation_finished_during_the_drain_does_not_run_again_after_a_restart() -> None:
    """Seen in a rolling restart under load: the feed counted a message as handled only once the invoker asked for
    the next one, which an invoker with a full intake does not do while its activations run; the drain ran the last
    message it took to the end, closing left it uncommitted, and the restarted invoker ran it again (a second run,
    and a second write of its record)."""
    async with MemoryBus() as bus, MemoryStore() as store:
        await store.put({"_id": "guest/a", "entityType": "action", "namespace": "guest", "name": "a",
                         "exec": {"kind": "python:3", "code": "def main(a): return a"}})
        first = SlowRun()
        async with invoker(bus, store, first) as running:
            await bus.send(invoker_topic(0), ActivationMessage(
                transid=["t", 0], action={"path": "guest", "name": "a"}, revision=None,
                user={"namespace": {"name": "guest"}}, activation_id="a" * 32,
                root_controller={"asString": "0"}, blocking=False))
            for _ in range(100):
                if running.taken:
                    break
                await asyncio.sleep(0.01)
            assert first.ran == []                  # taken, running: the stop comes now
        assert first.ran == ["a" * 32]              # the drain let it finish
        assert await store.get_activation("guest", "a" * 32) is not None
        second = OneRun()
        async with invoker(bus, store, second):
            await asyncio.sleep(0.5)
        assert second.ran == []


async def test_the_feed_commits_what_it_takes_at_once() -> None:
    """A crash (SIGKILL) has no drain: what the invoker took and ran must already be committed, or its successor
    runs it again (on Kafka, up to 99 activations, each run, recorded and acknowledged; tests/messaging/test_kafka.py
    shows the feed)."""
    asked: dict[str, bool] = {}

    class Recording(MemoryBus):
        def consume(self, topic: str, group: str, *, commit_at_once: bool = False) -> Any:
            asked[topic] = commit_at_once
            return super().consume(topic, group, commit_at_once=commit_at_once)

    async with Recording() as bus, MemoryStore() as store:
        async with invoker(bus, store, OneRun()):
            for _ in range(100):
                if asked:
                    break
                await asyncio.sleep(0.01)
    assert asked == {invoker_topic(0): True}
