"""whisk/stopping.py: what a stop does with the work its grace cut short."""

from __future__ import annotations

import asyncio
import time

from whisk.stopping import cancel_then_settle


async def test_each_task_finishes_what_its_cancellation_starts() -> None:
    stored: list[str] = []

    async def activation(name: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.02)           # the record's write, which the cancellation does not cut
            stored.append(name)
            raise
    tasks = [asyncio.create_task(activation(name)) for name in ("a", "b")]
    await asyncio.sleep(0)
    await cancel_then_settle(tasks, within_s=5)
    assert sorted(stored) == ["a", "b"] and all(task.cancelled() for task in tasks)


async def test_one_held_up_past_the_time_given_is_cancelled_again() -> None:
    cancels = 0

    async def held_up() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 2:
                    raise
    quick = asyncio.create_task(asyncio.Event().wait())
    slow = asyncio.create_task(held_up())
    await asyncio.sleep(0)
    started = time.monotonic()
    await cancel_then_settle([quick, slow], within_s=0.1)
    assert 0.1 <= time.monotonic() - started < 2
    assert cancels == 2 and slow.done() and quick.cancelled()


async def test_nothing_to_settle_returns_at_once() -> None:
    await cancel_then_settle([], within_s=5)
