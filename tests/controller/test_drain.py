"""The graceful stop: refuses new work at once, and returns when the last work in flight ends, not later."""

from __future__ import annotations

import asyncio
import time

from whisk.controller.drain import Drain


async def test_an_idle_controller_stops_at_once() -> None:
    drain = Drain()
    started = time.monotonic()
    await drain.wait(5.0)
    assert drain.refusing and time.monotonic() - started < 0.5


async def test_the_stop_ends_when_the_last_work_does() -> None:
    drain = Drain()
    drain.enter()                                   # a published activation
    done = asyncio.Event()
    drain.track(asyncio.create_task(done.wait()))   # a composition
    assert drain.in_flight == 2
    stopping = asyncio.create_task(drain.wait(30.0))
    await asyncio.sleep(0.05)
    assert drain.refusing and not stopping.done()
    drain.leave()
    await asyncio.sleep(0.05)
    assert not stopping.done()                      # the composition still runs
    started = time.monotonic()
    done.set()
    await asyncio.wait_for(stopping, 1.0)
    assert time.monotonic() - started < 0.5 and drain.in_flight == 0


async def test_the_stop_gives_up_after_its_grace() -> None:
    drain = Drain()
    drain.enter()
    started = time.monotonic()
    await drain.wait(0.2)
    assert 0.15 < time.monotonic() - started < 2.0 and drain.in_flight == 1
